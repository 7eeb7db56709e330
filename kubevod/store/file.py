"""FileStore: the ObjectStore backend on a local folder (the embedded default).

Layout under ``root``: the object bytes live at ``root/<key>`` (so the folder
is browsable), their metadata (content type, cache control, etag, size) in a
JSON sidecar at ``root/.kubevod/meta/<key>`` (the same tree shape, so
keys that can coexist as files can coexist as sidecars), and uploads are staged in
``root/.kubevod/tmp/`` then renamed into place, so a reader never sees half a
file: it sees the old object, or the new one, or none.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import mimetypes
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from kubevod.errors import Conflict, InvalidInput, NotFound, Unavailable
from kubevod.store.base import ObjectInfo, check_key

#: Top-level folder that holds sidecars and staged uploads; no key may start with it.
INTERNAL_DIR = ".kubevod"
_COPY_CHUNK = 1024 * 1024


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a safe key prefix (``""`` allowed), else raise InvalidInput."""
    if prefix:
        stem = prefix[:-1] if prefix.endswith("/") else prefix
        check_key(stem)
    return prefix


class FileStore:
    """An ObjectStore on a folder; safe across threads and processes on one host."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self._meta = self.root / INTERNAL_DIR / "meta"
        self._tmp = self.root / INTERNAL_DIR / "tmp"
        try:
            self._meta.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot use store folder {self.root}: {exc.strerror}") from exc

    def __repr__(self) -> str:
        return f"FileStore({str(self.root)!r})"

    # -- paths -------------------------------------------------------------

    def _paths(self, key: str) -> tuple[Path, Path]:
        check_key(key)
        if key.split("/", 1)[0] == INTERNAL_DIR:
            raise InvalidInput(f"invalid object key: {key!r} (reserved prefix)")
        return self.root / key, self._meta / key

    # -- writes ------------------------------------------------------------

    def put_file(
        self, key: str, path: Path, *, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        """Copy a complete local file into the store (atomically)."""
        try:
            src = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError as exc:
            raise NotFound(f"no such file to upload: {path}") from exc
        with src:
            return self._put(key, src, content_type, cache_control)

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        """Store ``data`` under ``key`` (atomically)."""
        return self._put(key, _BytesReader(data), content_type, cache_control)

    def _put(
        self, key: str, src: IO[bytes] | _BytesReader, content_type: str, cache_control: str | None
    ) -> ObjectInfo:
        data_path, meta_path = self._paths(key)
        md5 = hashlib.md5(usedforsecurity=False)
        size = 0
        try:
            fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
            try:
                with os.fdopen(fd, "wb") as out:
                    while block := src.read(_COPY_CHUNK):
                        md5.update(block)
                        out.write(block)
                        size += len(block)
                meta = {
                    "content_type": content_type,
                    "cache_control": cache_control,
                    "etag": md5.hexdigest(),
                    "size": size,
                }
                data_path.parent.mkdir(parents=True, exist_ok=True)
                # Metadata first: a sidecar whose size disagrees with the data is
                # ignored by stat(), so a crash between the two renames is harmless.
                _write_atomic(meta_path, json.dumps(meta).encode(), self._tmp)
                os.replace(tmp_name, data_path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
                raise
        except (NotADirectoryError, FileExistsError, IsADirectoryError) as exc:
            raise Conflict(f"object key {key!r} clashes with an existing key") from exc
        except OSError as exc:
            raise Unavailable(f"cannot write {key!r} to the store: {exc.strerror}") from exc
        return self._info(key, data_path.stat(), meta)

    # -- reads -------------------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        """Metadata of ``key``; raises NotFound."""
        data_path, meta_path = self._paths(key)
        try:
            st = data_path.stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(f"no object {key!r}") from exc
        if not data_path.is_file():
            raise NotFound(f"no object {key!r}")
        meta = _read_meta(meta_path)
        if meta.get("size") != st.st_size:
            # Placed by hand or torn by a crash: derive what we can.
            meta = {
                "content_type": mimetypes.guess_type(key)[0] or "application/octet-stream",
                "cache_control": None,
                "etag": _md5_file(data_path),
            }
        return self._info(key, st, meta)

    def get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``start..end`` (inclusive) of ``key``; raises NotFound."""
        return b"".join(self.iter_range(key, start, end))

    def iter_range(
        self, key: str, start: int = 0, end: int | None = None, chunk: int = 256 * 1024
    ) -> Iterator[bytes]:
        """Stream bytes ``start..end`` (inclusive); opens eagerly so NotFound raises here."""
        _check_range(start, end)
        data_path, _ = self._paths(key)
        try:
            fh = open(data_path, "rb")  # noqa: SIM115 - closed by the generator
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound(f"no object {key!r}") from exc
        return _read_chunks(fh, start, end, chunk)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""
        check_prefix(prefix)
        for key in self._keys(prefix):
            with contextlib.suppress(NotFound):  # deleted while listing
                yield self.stat(key)

    def _keys(self, prefix: str) -> builtins.list[str]:
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return []
        keys: builtins.list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            if rel_dir == ".":
                dirnames[:] = [d for d in dirnames if d != INTERNAL_DIR]
                rel_dir = ""
            for name in filenames:
                key = f"{rel_dir}/{name}" if rel_dir else name
                if key.startswith(prefix):
                    keys.append(key)
        keys.sort()
        return keys

    # -- deletes -----------------------------------------------------------

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (which must not be empty); returns the count."""
        if not prefix:
            raise InvalidInput("refusing to delete every object (empty prefix)")
        check_prefix(prefix)
        count = 0
        for key in self._keys(prefix):
            data_path, meta_path = self._paths(key)
            with contextlib.suppress(FileNotFoundError):
                data_path.unlink()
                count += 1
            with contextlib.suppress(FileNotFoundError):
                meta_path.unlink()
            self._prune(data_path.parent, self.root)
            self._prune(meta_path.parent, self._meta)
        if prefix.endswith("/"):
            # Sidecars whose data vanished by hand go too.
            stale = self._meta / prefix
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
                self._prune(stale.parent, self._meta)
        return count

    @staticmethod
    def _prune(folder: Path, stop: Path) -> None:
        """Remove now-empty folders from ``folder`` up to (not including) ``stop``."""
        while folder != stop and stop in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def ping(self) -> None:
        """Raise Unavailable when the folder is gone or not writable."""
        if not self._tmp.is_dir() or not os.access(self._tmp, os.W_OK):
            raise Unavailable(f"store folder {self.root} is missing or read-only")

    @staticmethod
    def _info(key: str, st: os.stat_result, meta: dict[str, Any]) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=str(meta["etag"]),
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
            content_type=str(meta.get("content_type") or "application/octet-stream"),
            cache_control=meta.get("cache_control"),
        )


class _BytesReader:
    """A minimal reader over bytes without copying them into a BytesIO."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def read(self, n: int) -> bytes:
        block = bytes(self._view[self._pos : self._pos + n])
        self._pos += len(block)
        return block


def _check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise InvalidInput(f"invalid byte range {start}-{'' if end is None else end}")


def _read_chunks(fh: IO[bytes], start: int, end: int | None, chunk: int) -> Iterator[bytes]:
    with fh:
        fh.seek(start)
        left = None if end is None else end - start + 1
        while left is None or left > 0:
            block = fh.read(chunk if left is None else min(chunk, left))
            if not block:
                return
            if left is not None:
                left -= len(block)
            yield block


def _read_meta(meta_path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(meta_path.read_bytes())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _md5_file(path: Path) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(_COPY_CHUNK):
            md5.update(block)
    return md5.hexdigest()


def _write_atomic(path: Path, data: bytes, tmp_dir: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="meta-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
