"""Open a job's source as a local file: a path, an http(s) URL, or ``s3://bucket/key``.

- Local paths are used in place (no copy).
- http(s) goes through the fetch guard (``kubevod.fetchguard``): every hop
  resolved, checked against the policy and connected to the checked address;
  a size limit, connect/read timeouts, an overall deadline and a capped number
  of redirects; every other scheme is refused, also as a redirect target.
- ``s3://bucket/key`` is read with the worker's store credentials from the
  store's own bucket or from a bucket the ``s3_source_buckets`` setting allows;
  any other bucket is refused (the named bucket is never silently replaced).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kubevod.worker.errors import FetchError

from kubevod.errors import KubevodError, NotFound, SourceError
from kubevod.fetchguard import FetchLimits, FetchPolicy, GuardedFetch, human_size
from kubevod.store.base import ObjectStore
from kubevod.store.s3 import S3Store


@dataclass(frozen=True)
class LocalSource:
    """The source as a file ffmpeg can read."""

    path: Path
    downloaded: bool  # True when it lives in scratch and may be deleted afterwards


def fetch_http(url: str, dest: Path, *, policy: FetchPolicy, limits: FetchLimits) -> Path:
    """Stream ``url`` to ``dest`` through the fetch guard.

    Raises:
        FetchError: a refused scheme or address, too many redirects, an HTTP error
            status, a body over the size limit, the deadline passed, a network failure.
    """
    try:
        return GuardedFetch(policy, limits).download(url, dest)
    except FetchError:
        raise
    except SourceError as exc:
        raise FetchError(str(exc)) from exc


def source_store(store: ObjectStore, bucket: str, allowed: tuple[str, ...]) -> ObjectStore:
    """The store an ``s3://bucket/...`` source is read from.

    Raises:
        FetchError: the worker's store is not S3, or the bucket is neither the store's own
            nor allowed by the ``s3_source_buckets`` setting.
    """
    if not isinstance(store, S3Store):
        raise FetchError("s3:// sources need an S3 object store (this worker stores in a folder)")
    if bucket == store.bucket:
        return store
    if bucket not in allowed:
        raise FetchError(
            f"the bucket {bucket!r} is not one sources may be read from "
            "(allow it with the s3_source_buckets setting)"
        )
    return store.with_bucket(bucket)


def fetch_s3(
    source: str, dest: Path, store: ObjectStore, *, max_bytes: int, buckets: tuple[str, ...] = ()
) -> Path:
    """Copy ``s3://bucket/key`` to ``dest`` (the bucket: the store's own or an allowed one)."""
    parts = urlsplit(source)
    key = unquote(parts.path.lstrip("/"))
    if not parts.netloc or not key:
        raise FetchError(f"malformed S3 source {source!r} (want s3://bucket/key)")
    store = source_store(store, parts.netloc, buckets)
    try:
        info = store.stat(key)
        if info.size > max_bytes:
            raise FetchError(
                f"the source is {human_size(info.size)}, over the limit of {human_size(max_bytes)}"
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
    policy: FetchPolicy | None = None,
    limits: FetchLimits | None = None,
    s3_buckets: tuple[str, ...] = (),
) -> LocalSource:
    """Make ``source`` available as a local file.

    Args:
        source: a local path (absolute, relative, or ``file``-less), ``http(s)://`` URL
            or ``s3://bucket/key``.
        scratch: folder for downloads.
        store: the object store used for ``s3://`` sources.
        policy: where http(s) may go (default: public addresses only).
        limits: size, time and redirect limits of http(s) and s3 fetches.
        s3_buckets: buckets ``s3://`` sources may name besides the store's own.

    Returns:
        The local file and whether it was downloaded.

    Raises:
        FetchError: the source cannot be fetched (a ``SourceError``: permanent).
    """
    policy = policy or FetchPolicy()
    limits = limits or FetchLimits()
    scheme = urlsplit(source).scheme.lower()
    # The name ffmpeg sees says nothing: the demuxer allowlist decides (worker/policy.py).
    dest = scratch / "source.bin"
    if scheme in ("http", "https"):
        return LocalSource(fetch_http(source, dest, policy=policy, limits=limits), True)
    if scheme == "s3":
        if store is None:
            raise FetchError("an s3:// source needs an object store")
        fetched = fetch_s3(source, dest, store, max_bytes=limits.max_bytes, buckets=s3_buckets)
        return LocalSource(fetched, True)
    if scheme and len(scheme) > 1:  # "c:" is a Windows drive, anything longer is a URL scheme
        raise FetchError(
            f"refusing to fetch a {scheme}: URL (only http, https, s3 and local paths)"
        )
    path = Path(source).expanduser()
    if not path.is_file():
        raise FetchError(f"the source file {source!r} does not exist")
    return LocalSource(path, False)
