"""Open a job's source as a local file: a path, an http(s) URL, or ``s3://bucket/key``.

- Local paths are used in place (no copy).
- http(s) is streamed to the scratch folder with a size limit, connect/read
  timeouts and a capped number of redirects; every other scheme (``file:``,
  ``ftp:``, ``gopher:``...) is refused, also as a redirect target.
- ``s3://bucket/key`` is read through the worker's object store (the bucket
  is the store's own; the key is looked up there).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from kubevod.worker.errors import FetchError

from kubevod.errors import KubevodError, NotFound
from kubevod.store.base import ObjectStore

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class LocalSource:
    """The source as a file ffmpeg can read."""

    path: Path
    downloaded: bool  # True when it lives in scratch and may be deleted afterwards


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def fetch_http(
    url: str, dest: Path, *, max_bytes: int, timeout: float = 30.0, max_redirects: int = 5
) -> Path:
    """Stream ``url`` to ``dest``.

    Raises:
        FetchError: refused scheme, too many redirects, HTTP error status, a body
            over ``max_bytes``, or a network failure/timeout.
    """
    current = url
    limits = httpx.Timeout(timeout, connect=min(timeout, 10.0))
    with httpx.Client(follow_redirects=False, timeout=limits) as client:
        for _ in range(max_redirects + 1):
            scheme = urlsplit(current).scheme.lower()
            if scheme not in ("http", "https"):
                raise FetchError(
                    f"refusing to fetch a {scheme or 'schemeless'}: URL (only http and https)"
                )
            try:
                with client.stream("GET", current) as response:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise FetchError(
                                f"HTTP {response.status_code} without a Location header"
                            )
                        current = urljoin(current, location)
                        continue
                    if response.status_code >= 400:
                        raise FetchError(f"the source URL answered HTTP {response.status_code}")
                    length = response.headers.get("content-length")
                    if length and length.isdigit() and int(length) > max_bytes:
                        size, limit = _human(int(length)), _human(max_bytes)
                        raise FetchError(f"the source is {size}, over the limit of {limit}")
                    received = 0
                    with dest.open("wb") as out:
                        for chunk in response.iter_bytes(_CHUNK):
                            received += len(chunk)
                            if received > max_bytes:
                                raise FetchError(
                                    f"the source is over the limit of {_human(max_bytes)}"
                                )
                            out.write(chunk)
                    return dest
            except httpx.TimeoutException as exc:
                raise FetchError(f"the source URL timed out ({type(exc).__name__})") from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"cannot fetch the source URL: {exc}") from exc
            except FetchError:
                dest.unlink(missing_ok=True)
                raise
    raise FetchError(f"too many redirects (more than {max_redirects})")


def fetch_s3(source: str, dest: Path, store: ObjectStore, *, max_bytes: int) -> Path:
    """Copy ``s3://bucket/key`` from the worker's object store to ``dest``."""
    parts = urlsplit(source)
    key = unquote(parts.path.lstrip("/"))
    if not parts.netloc or not key:
        raise FetchError(f"malformed S3 source {source!r} (want s3://bucket/key)")
    try:
        info = store.stat(key)
        if info.size > max_bytes:
            raise FetchError(
                f"the source is {_human(info.size)}, over the limit of {_human(max_bytes)}"
            )
        with dest.open("wb") as out:
            for chunk in store.iter_range(key, 0, None):
                out.write(chunk)
    except NotFound as exc:
        raise FetchError(f"no object {key!r} in the store") from exc
    except FetchError:
        raise
    except KubevodError:
        dest.unlink(missing_ok=True)
        raise
    return dest


def open_source(
    source: str,
    scratch: Path,
    *,
    store: ObjectStore | None = None,
    max_bytes: int = 200 * 1024**3,
    timeout: float = 30.0,
    max_redirects: int = 5,
) -> LocalSource:
    """Make ``source`` available as a local file.

    Args:
        source: a local path (absolute, relative, or ``file``-less), ``http(s)://`` URL
            or ``s3://bucket/key``.
        scratch: folder for downloads.
        store: the object store used for ``s3://`` sources.
        max_bytes, timeout, max_redirects: limits of http(s) and s3 fetches.

    Returns:
        The local file and whether it was downloaded.

    Raises:
        FetchError: the source cannot be fetched (a ``SourceError``: permanent).
    """
    scheme = urlsplit(source).scheme.lower()
    suffix = Path(urlsplit(source).path).suffix[:10]
    if scheme in ("http", "https"):
        dest = scratch / f"source{suffix}"
        return LocalSource(
            fetch_http(
                source, dest, max_bytes=max_bytes, timeout=timeout, max_redirects=max_redirects
            ),
            True,
        )
    if scheme == "s3":
        if store is None:
            raise FetchError("an s3:// source needs an object store")
        return LocalSource(
            fetch_s3(source, scratch / f"source{suffix}", store, max_bytes=max_bytes), True
        )
    if scheme and len(scheme) > 1:  # "c:" is a Windows drive, anything longer is a URL scheme
        raise FetchError(
            f"refusing to fetch a {scheme}: URL (only http, https, s3 and local paths)"
        )
    path = Path(source).expanduser()
    if not path.is_file():
        raise FetchError(f"the source file {source!r} does not exist")
    return LocalSource(path, False)
