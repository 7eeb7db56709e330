"""What the manifest routes remember between requests, and how they know it is still true.

A manifest is a pure function of catalog data (the video entry and, for media
playlists and the MPD, its recorded segments), so the API keeps, per app:

- the catalog entries of videos it served lately, and
- the rendered bytes (and ETag) of manifests it served lately,

each stamped with the **catalog version** seen before it was read. The
catalog is shared (by several API replicas in the cluster, by the transcode
pool's threads in local mode), so nothing here is trusted on its own: a request
first reads the current version, and only entries stamped with that same
version are used. A catalog that can tell its version cheaply makes the
common request cost no catalog read at all; a new segment, a state change or
any other write changes the version, so the next request reads again and an
EVENT playlist lists a segment the moment the catalog has it.

- ``SqliteCatalog``: ``PRAGMA data_version`` on a connection of our own that
  never writes. SQLite changes that number whenever another connection, in
  this process or another, commits to the file; it costs a few microseconds and
  no disk read, so it is asked on the event loop.
- Other catalogs (MongoDB): no cheap version, so every request reads the entry
  (in the threadpool). A ready video's rendered bytes are still reused: they
  are keyed by the entry's generation and ``updated_at``, and a ready video's
  segments never change without its entry changing. An EVENT playlist is then
  rendered from a fresh segment read on every request.

Everything here is touched from the event loop only, so it needs no lock.
"""

from __future__ import annotations

import gzip
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar

from kubevod.api.http_semantics import http_date

from kubevod.catalog.base import Catalog
from kubevod.models import Video

NO_CACHE = b"no-cache"
#: What ``kubevod.api.app.TextGZip`` compresses: bodies of at least this many bytes, at this level.
GZIP_MINIMUM_SIZE = 500
GZIP_LEVEL = 6
_VARY = (b"vary", b"Accept-Encoding")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: A catalog's current version (None: unknown just now, so read the catalog).
VersionProbe = Callable[[], Hashable | None]


class Lru(Generic[K, V]):
    """A bounded least-recently-used mapping."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: K, item: V) -> None:
        self._items[key] = item
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class SqliteDataVersion:
    """The version of one SQLite file: ``PRAGMA data_version`` on a read-only connection.

    The number changes whenever another connection commits; this connection never
    writes (``query_only``), so every commit counts. Any SQLite error gives None
    (read the catalog, which reports the error itself) and reopens next time.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def __call__(self) -> int | None:
        try:
            if self._conn is None:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA query_only=1")
                self._conn = conn
            row = self._conn.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            self.close()
            return None
        return int(row[0])

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def version_probe(catalog: Catalog) -> SqliteDataVersion | None:
    """The cheap version of ``catalog``, when its backend has one (see the module docstring)."""
    from kubevod.catalog.sqlite import SqliteCatalog

    if isinstance(catalog, SqliteCatalog) and catalog.path.exists():
        return SqliteDataVersion(catalog.path)
    return None


RawHeaders = tuple[tuple[bytes, bytes], ...]


@dataclass
class Answer:
    """A rendered manifest with its response headers, built once and served many times.

    Attributes:
        body: the manifest bytes.
        etag: its strong ETag, quoted.
        headers: the headers of a 200 (ETag, Cache-Control, Last-Modified for a
            ready video, Content-Length, Content-Type).
        not_modified_headers: the headers of a 304 (the validators and Cache-Control).
    """

    body: bytes
    etag: str
    headers: RawHeaders
    not_modified_headers: RawHeaders
    _encoded: dict[bool, tuple[bytes, RawHeaders]] = field(default_factory=dict, repr=False)

    def encoded(self, gzipped: bool) -> tuple[bytes, RawHeaders]:
        """Body and 200 headers as ``kubevod.api.app.TextGZip`` would send them, the
        compressed body made once: what the route's answer becomes after that middleware
        (``Vary`` on bodies it would compress; ``Content-Encoding`` when it did)."""
        done = self._encoded.get(gzipped)
        if done is None:
            if len(self.body) < GZIP_MINIMUM_SIZE:
                done = self.body, self.headers
            elif not gzipped:
                done = self.body, (*self.headers, _VARY)
            else:
                body = gzip.compress(self.body, compresslevel=GZIP_LEVEL, mtime=0)
                length = (b"content-length", str(len(body)).encode())
                headers = tuple(
                    length if k == b"content-length" else (k, v) for k, v in self.headers
                )
                done = body, (*headers, (b"content-encoding", b"gzip"), _VARY)
            self._encoded[gzipped] = done
        return done


def build_answer(
    body: bytes, etag: str, media_type: str, last_modified: datetime | None, max_age_s: int
) -> Answer:
    """The answer for a rendered manifest (pure).

    Args:
        body: the manifest bytes.
        etag: their quoted ETag.
        media_type: the Content-Type.
        last_modified: the ready video's ``updated_at``; None while it transcodes:
            a growing EVENT playlist has no meaningful date, is ``no-cache``, and
            its ETag is enough.
        max_age_s: how long a ready video's manifest may be cached.
    """
    validators: list[tuple[bytes, bytes]] = [(b"etag", etag.encode("latin-1"))]
    if last_modified is not None:
        validators.append((b"cache-control", f"public, max-age={max_age_s}".encode()))
        validators.append((b"last-modified", http_date(last_modified).encode()))
    else:
        validators.append((b"cache-control", NO_CACHE))
    headers = (
        *validators,
        (b"content-length", str(len(body)).encode()),
        (b"content-type", media_type.encode("latin-1")),
    )
    return Answer(body, etag, headers, tuple(validators))


class ManifestCache:
    """Catalog entries and rendered manifests, each stamped with the catalog version.

    Args:
        probe: reads the catalog's current version; None when it has no cheap one.
        size: how many entries and how many manifests to keep (each an LRU).
    """

    def __init__(self, probe: VersionProbe | None = None, size: int = 512) -> None:
        self.probe = probe
        self._videos: Lru[str, tuple[Hashable, Video]] = Lru(size)
        self._manifests: Lru[Hashable, tuple[Hashable, Answer]] = Lru(size)

    def version(self) -> Hashable | None:
        """The catalog's version now, or None (no probe, or it failed): read the catalog."""
        return self.probe() if self.probe is not None else None

    def video(self, video_id: str, version: Hashable | None) -> Video | None:
        """The entry read at ``version``, or None (not kept, read at another version)."""
        if version is None:
            return None
        item = self._videos.get(video_id)
        return item[1] if item is not None and item[0] == version else None

    def put_video(self, video: Video, version: Hashable | None) -> None:
        """Keep an entry read from the catalog after ``version`` was seen."""
        if version is not None:
            self._videos.put(video.id, (version, video))

    def get(self, key: Hashable, version: Hashable | None) -> Answer | None:
        """The manifest rendered at ``version`` (None: any version, for keys that
        already name everything the manifest depends on)."""
        item = self._manifests.get(key)
        if item is None or (version is not None and item[0] != version):
            return None
        return item[1]

    def put(self, key: Hashable, rendered: Answer, version: Hashable | None = None) -> None:
        """Keep a manifest rendered from catalog data read after ``version`` was seen."""
        self._manifests.put(key, (version, rendered))

    def close(self) -> None:
        close = getattr(self.probe, "close", None)
        if close is not None:
            close()
