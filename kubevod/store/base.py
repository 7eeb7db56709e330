"""The ObjectStore port (docs/architecture.md §4): where media objects live.

Backends: ``S3Store`` (MinIO or any S3) and ``FileStore`` (a folder, the
embedded default). Keys are ``/``-separated relative paths such as
``videos/<id>/g1/720p/3.m4s``; they never start with ``/`` and never hold ``..``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from kubevod.errors import InvalidInput


@dataclass(frozen=True)
class ObjectInfo:
    """Metadata of one stored object."""

    key: str
    size: int
    etag: str  # quoted-less strong validator
    last_modified: datetime
    content_type: str = "application/octet-stream"
    cache_control: str | None = None


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe object key, else raise InvalidInput.

    Args:
        key: a relative, ``/``-separated key.

    Returns:
        The same key.
    """
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or any(part in ("", ".", "..") for part in key.split("/"))
        or len(key) > 1024
    ):
        raise InvalidInput(f"invalid object key: {key!r}")
    return key


@runtime_checkable
class ObjectStore(Protocol):
    """Stores immutable media objects; every method blocks (use a thread from async code)."""

    def put_file(
        self, key: str, path: Path, *, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        """Upload a complete local file. Retries transient errors; raises Unavailable after that."""
        ...

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        """Store ``data`` under ``key``."""
        ...

    def stat(self, key: str) -> ObjectInfo:
        """Metadata of ``key``; raises NotFound."""
        ...

    def get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``start..end`` (inclusive, like HTTP ranges) of ``key``; raises NotFound."""
        ...

    def iter_range(
        self, key: str, start: int = 0, end: int | None = None, chunk: int = 256 * 1024
    ) -> Iterator[bytes]:
        """Stream bytes ``start..end`` (inclusive) of ``key`` in chunks; raises NotFound."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many were deleted."""
        ...

    def ping(self) -> None:
        """Raise Unavailable when the store cannot be reached."""
        ...
