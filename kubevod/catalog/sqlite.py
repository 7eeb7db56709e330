"""SqliteCatalog: the Catalog backend on one SQLite file (the embedded default).

Each video is stored as the JSON of its pydantic model, next to indexed
columns for sorting and searching. The database runs in WAL mode so readers
never wait for the writer; each thread gets its own connection, writes are
serialised by a lock in this process and by ``BEGIN IMMEDIATE`` (with a busy
timeout) across processes.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from kubevod.catalog.base import SCHEMA_VERSION, Fence, SortKey, superseded
from kubevod.catalog.common import (
    aggregate_qoe,
    apply_update,
    check_page,
    clamp_progress,
    from_ms,
    lease_end,
    normalize,
    sort_field,
    to_ms,
    utc_ms,
    want_times,
)
from kubevod.errors import Conflict, NotFound, Superseded, Unavailable
from kubevod.models import (
    ChunkWant,
    QoeBeacon,
    QoeStats,
    Segment,
    Video,
    VideoPage,
    VideoState,
    now,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS videos (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,              -- Video.model_dump_json()
    schema_version INTEGER NOT NULL,
    title_key TEXT NOT NULL,        -- casefolded title, for search and sort
    tags TEXT NOT NULL,             -- JSON array, for the exact tag filter
    tags_key TEXT NOT NULL,         -- JSON array of casefolded tags, for search
    state TEXT NOT NULL,
    content_hash TEXT,
    duration REAL NOT NULL,
    created_at INTEGER NOT NULL     -- milliseconds since the epoch, UTC
);
CREATE INDEX IF NOT EXISTS videos_created ON videos (created_at, id);
CREATE INDEX IF NOT EXISTS videos_title ON videos (title_key, id);
CREATE INDEX IF NOT EXISTS videos_duration ON videos (duration, id);
CREATE INDEX IF NOT EXISTS videos_state ON videos (state);
CREATE INDEX IF NOT EXISTS videos_hash ON videos (content_hash);
CREATE TABLE IF NOT EXISTS segments (
    video_id TEXT NOT NULL,
    rendition TEXT NOT NULL,
    seq INTEGER NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (video_id, rendition, seq)
);
CREATE TABLE IF NOT EXISTS qoe (
    video_id TEXT NOT NULL,
    session TEXT NOT NULL,
    doc TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (video_id, session)
);
CREATE TABLE IF NOT EXISTS chunk_wants (
    video_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    asked_at INTEGER NOT NULL,      -- milliseconds since the epoch, UTC
    holder TEXT NOT NULL DEFAULT '',
    lease_until INTEGER,            -- milliseconds since the epoch, UTC; NULL: no lease
    PRIMARY KEY (video_id, generation, chunk)
);
CREATE INDEX IF NOT EXISTS chunk_wants_video_asked ON chunk_wants (video_id, asked_at DESC);
CREATE INDEX IF NOT EXISTS chunk_wants_asked ON chunk_wants (asked_at DESC);
"""
_WANT_COLUMNS = "video_id, generation, chunk, asked_at, holder, lease_until"
#: The order ``take_chunk`` hands wants out in: the newest asked first.
_FREE_ORDER = " ORDER BY asked_at DESC, chunk ASC LIMIT 1"

_COLUMNS = {"created_at": "created_at", "title": "title_key", "duration": "duration"}


class SqliteCatalog:
    """A Catalog in one SQLite file; safe across threads and processes."""

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self._timeout = busy_timeout_s
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._conn()
            conn.execute("PRAGMA journal_mode=WAL")
            with self._write_lock:
                conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise Unavailable(f"cannot open catalog {self.path}: {exc}") from exc

    def __repr__(self) -> str:
        return f"SqliteCatalog({str(self.path)!r})"

    # -- connections -------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise Unavailable("catalog is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._conn()
        except sqlite3.Error as exc:
            raise Unavailable(f"catalog read failed: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise Unavailable(f"catalog is busy: {exc}") from exc
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise Unavailable(f"catalog write failed: {exc}") from exc

    # -- videos ------------------------------------------------------------

    def create(self, video: Video) -> Video:
        """Insert a new video; raises Conflict when the id exists."""
        video = normalize(video)
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO videos (id, doc, schema_version, title_key, tags, tags_key,"
                    " state, content_hash, duration, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (video.id, *self._columns(video)),
                )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"video {video.id!r} already exists") from exc
        return video

    @staticmethod
    def _columns(video: Video) -> tuple[Any, ...]:
        return (
            video.model_dump_json(),
            SCHEMA_VERSION,
            video.title.casefold(),
            json.dumps(video.tags),
            json.dumps([t.casefold() for t in video.tags]),
            video.state.value,
            video.content_hash,
            video.duration,
            int(utc_ms(video.created_at).timestamp() * 1000),
        )

    def _save(self, conn: sqlite3.Connection, video: Video) -> None:
        conn.execute(
            "UPDATE videos SET doc=?, schema_version=?, title_key=?, tags=?, tags_key=?,"
            " state=?, content_hash=?, duration=?, created_at=? WHERE id=?",
            (*self._columns(video), video.id),
        )

    @staticmethod
    def _load(conn: sqlite3.Connection, video_id: str) -> Video:
        row = conn.execute("SELECT doc FROM videos WHERE id=?", (video_id,)).fetchone()
        if row is None:
            raise NotFound(f"no video {video_id!r}")
        return Video.model_validate_json(row[0])

    def get(self, video_id: str) -> Video:
        """The video with this id; raises NotFound."""
        with self._read() as conn:
            return self._load(conn, video_id)

    def find_by_hash(self, content_hash: str) -> Video | None:
        """The oldest video made from the same source bytes, if any."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT doc FROM videos WHERE content_hash=? ORDER BY created_at, id LIMIT 1",
                (content_hash,),
            ).fetchone()
        return None if row is None else Video.model_validate_json(row[0])

    def list(
        self,
        *,
        query: str | None = None,
        tag: str | None = None,
        state: VideoState | None = None,
        sort: SortKey = "-created",
        offset: int = 0,
        limit: int = 50,
    ) -> VideoPage:
        """A page of videos; ``query`` matches title (case-insensitive substring) or a tag."""
        check_page(offset, limit)
        field, desc = sort_field(sort)
        where: list[str] = []
        args: list[Any] = []
        if query:
            where.append(
                "(instr(title_key, ?) > 0"
                " OR EXISTS (SELECT 1 FROM json_each(videos.tags_key) WHERE value = ?))"
            )
            args += [query.casefold(), query.casefold()]
        if tag is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(videos.tags) WHERE value = ?)")
            args.append(tag)
        if state is not None:
            where.append("state = ?")
            args.append(VideoState(state).value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        order = f"{_COLUMNS[field]} {'DESC' if desc else 'ASC'}, id ASC"
        with self._read() as conn:
            total = conn.execute(f"SELECT count(*) FROM videos{clause}", args).fetchone()[0]
            rows = conn.execute(
                f"SELECT doc FROM videos{clause} ORDER BY {order} LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        items = [Video.model_validate_json(r[0]) for r in rows]
        return VideoPage(items=items, total=total, offset=offset, limit=limit)

    @classmethod
    def _fenced(cls, conn: sqlite3.Connection, video_id: str, fence: Fence | None) -> Video:
        """The stored video, inside the caller's write transaction, if ``fence`` holds."""
        video = cls._load(conn, video_id)
        if fence is not None and not fence.holds(video.generation, video.prefix):
            raise Superseded(superseded(video_id, video.generation, video.prefix, fence))
        return video

    def update(self, video_id: str, *, fence: Fence | None = None, **fields: Any) -> Video:
        """Set the given top-level fields (and ``updated_at``); NotFound, Superseded."""
        with self._write() as conn:
            video = apply_update(self._fenced(conn, video_id, fence), fields)
            self._save(conn, video)
        return video

    def set_progress(
        self, video_id: str, progress: float, *, speed: float | None = None,
        fence: Fence | None = None,
    ) -> None:  # fmt: skip
        """Record transcode progress (percent, clamped to 0..100); NotFound, Superseded."""
        fields: dict[str, Any] = {"progress": clamp_progress(progress)}
        if speed is not None:
            fields["speed"] = speed
        self.update(video_id, fence=fence, **fields)

    def add_chunk(self, video_id: str, index: int, *, fence: Fence | None = None) -> Video:
        """One more chunk in ``chunks_done``, read and written in one transaction."""
        with self._write() as conn:
            video = self._fenced(conn, video_id, fence)
            done = sorted({*video.chunks_done, int(index)})
            video = apply_update(video, {"chunks_done": done})
            self._save(conn, video)
        return video

    # -- segments ----------------------------------------------------------

    def add_segment(self, video_id: str, segment: Segment, *, fence: Fence | None = None) -> None:
        """Record one uploaded segment (idempotent on (video, rendition, seq); last wins).

        The fence is checked in the same transaction as the write.
        """
        with self._write() as conn:
            if fence is not None:
                self._fenced(conn, video_id, fence)
            elif conn.execute("SELECT 1 FROM videos WHERE id=?", (video_id,)).fetchone() is None:
                raise NotFound(f"no video {video_id!r}")
            conn.execute(
                "INSERT INTO segments (video_id, rendition, seq, doc) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (video_id, rendition, seq) DO UPDATE SET doc=excluded.doc",
                (video_id, segment.rendition, segment.seq, segment.model_dump_json()),
            )

    def segments(self, video_id: str, rendition: str | None = None) -> builtins.list[Segment]:
        """Recorded segments, ordered by rendition then seq."""
        sql = "SELECT doc FROM segments WHERE video_id=?"
        args: list[Any] = [video_id]
        if rendition is not None:
            sql += " AND rendition=?"
            args.append(rendition)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY rendition, seq", args).fetchall()
        return [Segment.model_validate_json(r[0]) for r in rows]

    def clear_segments(self, video_id: str, *, prefix: str | None = None) -> None:
        """Forget the recorded segments of a video (with ``prefix``: those under it)."""
        sql = "DELETE FROM segments WHERE video_id=?"
        args: list[Any] = [video_id]
        if prefix is not None:
            under = prefix.rstrip("/") + "/"
            sql += " AND substr(json_extract(doc, '$.key'), 1, ?) = ?"
            args += [len(under), under]
        with self._write() as conn:
            conn.execute(sql, args)

    def delete(self, video_id: str) -> None:
        """Remove the video, its segments, its QoE data and its chunk wants; no error if
        absent."""
        tables = (("segments", "video_id"), ("qoe", "video_id"), ("chunk_wants", "video_id"))
        with self._write() as conn:
            for table, column in (*tables, ("videos", "id")):
                conn.execute(f"DELETE FROM {table} WHERE {column}=?", (video_id,))

    # -- chunk wants -------------------------------------------------------

    def want_chunks(
        self, video_id: str, generation: int, chunks: Sequence[int], *, background: bool = False
    ) -> None:
        """Ask for these chunks, the first the most wanted (upserts in one transaction).

        A want asked again moves its ``asked_at`` forward only and keeps its holder
        and lease.
        """
        rows = [
            (video_id, int(generation), chunk, to_ms(asked_at))
            for chunk, asked_at in want_times(chunks, background)
        ]
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO chunk_wants (video_id, generation, chunk, asked_at)"
                " VALUES (?, ?, ?, ?)"
                " ON CONFLICT (video_id, generation, chunk)"
                " DO UPDATE SET asked_at=max(asked_at, excluded.asked_at)",
                rows,
            )

    def take_chunk(
        self, holder: str, lease_seconds: float, *, video_id: str | None = None
    ) -> ChunkWant | None:
        """Lease the newest-asked free want to ``holder``; the want after, or None.

        The pick and the lease share one write transaction (``BEGIN IMMEDIATE``),
        so no other thread or process takes the same want.
        """
        start, until = lease_end(lease_seconds)
        sql, args = self._free_wants(start, video_id)
        with self._write() as conn:
            row = conn.execute(sql + _FREE_ORDER, args).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE chunk_wants SET holder=?, lease_until=?"
                " WHERE video_id=? AND generation=? AND chunk=?",
                (holder, to_ms(until), row[0], row[1], row[2]),
            )
        return self._want((*row[:4], holder, to_ms(until)))

    @staticmethod
    def _free_wants(start: datetime, video_id: str | None) -> tuple[str, builtins.list[Any]]:
        sql = (
            f"SELECT {_WANT_COLUMNS} FROM chunk_wants"
            " WHERE (lease_until IS NULL OR lease_until < ?)"
        )
        args: list[Any] = [to_ms(start)]
        if video_id is not None:
            sql += " AND video_id=?"
            args.append(video_id)
        return sql, args

    def peek_chunk(self, *, video_id: str | None = None) -> ChunkWant | None:
        """The newest-asked free want, not taken."""
        sql, args = self._free_wants(lease_end(0)[0], video_id)
        with self._read() as conn:
            row = conn.execute(sql + _FREE_ORDER, args).fetchone()
        return None if row is None else self._want(row)

    def renew_chunk(self, want: ChunkWant, lease_seconds: float) -> bool:
        """Move the lease's end (one UPDATE, on the holder too); 0 frees it."""
        _, until = lease_end(lease_seconds)
        holder, lease = (want.holder, to_ms(until)) if lease_seconds > 0 else ("", None)
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE chunk_wants SET holder=?, lease_until=?"
                " WHERE video_id=? AND generation=? AND chunk=? AND holder=? AND holder!=''",
                (holder, lease, want.video_id, want.generation, want.chunk, want.holder),
            )
        return cur.rowcount == 1

    def drop_chunk_wants(self, video_id: str, chunks: Sequence[int] | None = None) -> None:
        """Forget those chunks' wants of the video (any generation); None: all of them."""
        sql = "DELETE FROM chunk_wants WHERE video_id=?"
        args: list[Any] = [video_id]
        if chunks is not None:
            wanted = sorted({int(c) for c in chunks})
            if not wanted:
                return
            sql += f" AND chunk IN ({', '.join('?' * len(wanted))})"
            args += wanted
        with self._write() as conn:
            conn.execute(sql, args)

    def chunk_wants(self, video_id: str) -> builtins.list[ChunkWant]:
        """The video's wants, newest ``asked_at`` first."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_WANT_COLUMNS} FROM chunk_wants WHERE video_id=?"
                " ORDER BY asked_at DESC, chunk ASC",
                (video_id,),
            ).fetchall()
        return [self._want(r) for r in rows]

    @staticmethod
    def _want(row: Sequence[Any]) -> ChunkWant:
        video_id, generation, chunk, asked_at, holder, lease_until = row
        return ChunkWant(
            video_id=video_id,
            generation=generation,
            chunk=chunk,
            asked_at=from_ms(asked_at),
            holder=holder,
            lease_until=None if lease_until is None else from_ms(lease_until),
        )

    # -- QoE ---------------------------------------------------------------

    def record_qoe(self, beacon: QoeBeacon) -> QoeBeacon | None:
        """Store one player beacon as its session's latest; return the one it replaced.

        The read and the upsert share one write transaction (``BEGIN IMMEDIATE``),
        so no other thread or process records a beacon between them.
        """
        received = int(now().timestamp() * 1000)
        with self._write() as conn:
            row = conn.execute(
                "SELECT doc FROM qoe WHERE video_id=? AND session=?",
                (beacon.video_id, beacon.session),
            ).fetchone()
            conn.execute(
                "INSERT INTO qoe (video_id, session, doc, received_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (video_id, session)"
                " DO UPDATE SET doc=excluded.doc, received_at=excluded.received_at",
                (beacon.video_id, beacon.session, beacon.model_dump_json(), received),
            )
        return None if row is None else QoeBeacon.model_validate_json(row[0])

    def qoe_stats(self, video_id: str) -> QoeStats:
        """Aggregate of the beacons for one video."""
        with self._read() as conn:
            rows = conn.execute("SELECT doc FROM qoe WHERE video_id=?", (video_id,)).fetchall()
        return aggregate_qoe(QoeBeacon.model_validate_json(r[0]) for r in rows)

    # -- lifecycle ---------------------------------------------------------

    def ping(self) -> None:
        """Raise Unavailable when the database cannot be read."""
        with self._read() as conn:
            conn.execute("SELECT 1 FROM videos LIMIT 1").fetchall()

    def close(self) -> None:
        """Close every thread's connection; later calls raise Unavailable."""
        self._closed = True
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
