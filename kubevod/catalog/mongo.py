"""MongoCatalog: the Catalog backend on MongoDB (or a MongoDB-wire server such as FerretDB).

Collections: ``videos`` (``_id`` = video id, the model's fields, plus
``schema_version`` and casefolded ``title_key``/``tags_key`` for search and
sort), ``segments`` (unique on video, rendition, seq), ``qoe`` (unique on
video, session) and ``chunk_wants`` (``_id`` = ``<video>:<generation>:<chunk>``).
Indexes are created at start. Server selection and connect
timeouts are short, so a dead catalog raises ``Unavailable`` within seconds.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.errors import ConfigurationError, ConnectionFailure, DuplicateKeyError, PyMongoError

from kubevod.catalog.base import SCHEMA_VERSION, Fence, SortKey, superseded
from kubevod.catalog.common import (
    aggregate_qoe,
    apply_update,
    check_page,
    clamp_progress,
    lease_end,
    normalize,
    sort_field,
    want_times,
)
from kubevod.errors import (
    Conflict,
    InvalidInput,
    KubevodError,
    NotFound,
    Superseded,
    Unavailable,
)
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

#: Client options used unless the URI sets them (milliseconds).
CLIENT_DEFAULTS = {
    "serverSelectionTimeoutMS": 3000,
    "connectTimeoutMS": 3000,
    "socketTimeoutMS": 15000,
}
_INTERNAL = ("_id", "schema_version", "title_key", "tags_key")
_QOE_INTERNAL = ("_id", "schema_version", "received_at")
_COLUMNS = {"created_at": "created_at", "title": "title_key", "duration": "duration"}
_REGEX_SPECIAL = frozenset("\\.^$|?*+()[]{}")


def _literal_regex(text: str) -> str:
    """``text`` as a regex matching itself, escaped portably for PCRE and Go's RE2."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in text)


def _fence_filter(video_id: str, fence: Fence | None) -> dict[str, Any]:
    """The ``videos`` filter that matches the entry only while ``fence`` holds."""
    flt: dict[str, Any] = {"_id": video_id}
    if fence is None:
        return flt
    bounds: dict[str, int] = {}
    if fence.generation is not None:
        bounds["$eq"] = fence.generation
    if fence.older_than is not None:
        bounds["$lt"] = fence.older_than
    if bounds:
        flt["generation"] = bounds
    if fence.prefix is not None:
        flt["prefix"] = fence.prefix
    return flt


def _under(prefix: str) -> dict[str, str]:
    """A filter on ``key`` for the keys under one attempt's prefix."""
    return {"$regex": "^" + _literal_regex(prefix.rstrip("/") + "/")}


#: The order ``take_chunk`` hands wants out in: the newest asked first.
_FREE_ORDER = [("asked_at", DESCENDING), ("chunk", ASCENDING)]


def _free_wants(start: datetime, video_id: str | None) -> dict[str, Any]:
    """The filter of wants whose lease is free at ``start`` (of ``video_id`` only)."""
    flt: dict[str, Any] = {"$or": [{"lease_until": None}, {"lease_until": {"$lt": start}}]}
    if video_id is not None:
        flt["video_id"] = video_id
    return flt


class MongoCatalog:
    """A Catalog on one MongoDB database; pymongo's pool makes it thread-safe."""

    def __init__(self, uri: str, *, database: str = "kubevod") -> None:
        from kubevod.backends import redact_url  # here: backends imports this package

        self._safe_uri = redact_url(uri)
        self.database = database
        given = {k.lower() for k in parse_qs(urlsplit(uri).query)}
        options: dict[str, Any] = {
            k: v for k, v in CLIENT_DEFAULTS.items() if k.lower() not in given
        }
        try:
            self._client: MongoClient[dict[str, Any]] = MongoClient(
                uri, tz_aware=True, tzinfo=UTC, appname="kubevod", **options
            )
        except ConfigurationError as exc:
            raise InvalidInput(f"bad MongoDB url {self._safe_uri}: {exc}") from exc
        db = self._client[database]
        self._videos = db["videos"]
        self._segments = db["segments"]
        self._qoe = db["qoe"]
        self._wants = db["chunk_wants"]
        with self._guard():
            self._ensure_indexes()

    def __repr__(self) -> str:
        return f"MongoCatalog({self._safe_uri!r}, database={self.database!r})"

    def _ensure_indexes(self) -> None:
        self._videos.create_index([("created_at", DESCENDING), ("_id", ASCENDING)])
        self._videos.create_index([("title_key", ASCENDING), ("_id", ASCENDING)])
        self._videos.create_index([("duration", ASCENDING), ("_id", ASCENDING)])
        self._videos.create_index([("tags", ASCENDING)])
        self._videos.create_index([("tags_key", ASCENDING)])
        self._videos.create_index([("content_hash", ASCENDING)])
        self._videos.create_index([("state", ASCENDING)])
        self._segments.create_index(
            [("video_id", ASCENDING), ("rendition", ASCENDING), ("seq", ASCENDING)],
            unique=True,
            name="video_rendition_seq",
        )
        self._qoe.create_index(
            [("video_id", ASCENDING), ("session", ASCENDING)], unique=True, name="video_session"
        )
        self._wants.create_index([("video_id", ASCENDING), ("asked_at", DESCENDING)])
        self._wants.create_index([("asked_at", DESCENDING)])

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Map a lost or unreachable server to Unavailable."""
        try:
            yield
        except ConnectionFailure as exc:  # includes ServerSelectionTimeout and AutoReconnect
            raise Unavailable(
                f"catalog {self._safe_uri} unavailable: {type(exc).__name__}"
            ) from exc

    # -- documents ---------------------------------------------------------

    @staticmethod
    def _doc(video: Video) -> dict[str, Any]:
        doc = video.model_dump(mode="json", exclude={"id"})
        doc.update(
            _id=video.id,
            created_at=video.created_at,
            updated_at=video.updated_at,
            schema_version=SCHEMA_VERSION,
            title_key=video.title.casefold(),
            tags_key=[t.casefold() for t in video.tags],
        )
        return doc

    @staticmethod
    def _video(doc: dict[str, Any]) -> Video:
        data = {k: v for k, v in doc.items() if k not in _INTERNAL}
        data["id"] = doc["_id"]
        return Video.model_validate(data)

    # -- videos ------------------------------------------------------------

    def create(self, video: Video) -> Video:
        """Insert a new video; raises Conflict when the id exists."""
        video = normalize(video)
        with self._guard():
            try:
                self._videos.insert_one(self._doc(video))
            except DuplicateKeyError as exc:
                raise Conflict(f"video {video.id!r} already exists") from exc
        return video

    def get(self, video_id: str) -> Video:
        """The video with this id; raises NotFound."""
        with self._guard():
            doc = self._videos.find_one({"_id": video_id})
        if doc is None:
            raise NotFound(f"no video {video_id!r}")
        return self._video(doc)

    def find_by_hash(self, content_hash: str) -> Video | None:
        """The oldest video made from the same source bytes, if any."""
        with self._guard():
            docs = list(
                self._videos.find({"content_hash": content_hash})
                .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
                .limit(1)
            )
        return self._video(docs[0]) if docs else None

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
        clauses: builtins.list[dict[str, Any]] = []
        if query:
            key = query.casefold()
            clauses.append(
                {"$or": [{"title_key": {"$regex": _literal_regex(key)}}, {"tags_key": key}]}
            )
        if tag is not None:
            clauses.append({"tags": tag})
        if state is not None:
            clauses.append({"state": VideoState(state).value})
        flt: dict[str, Any] = {"$and": clauses} if clauses else {}
        order = [(_COLUMNS[field], DESCENDING if desc else ASCENDING), ("_id", ASCENDING)]
        with self._guard():
            total = self._videos.count_documents(flt)
            docs = (
                list(self._videos.find(flt).sort(order).skip(offset).limit(limit)) if limit else []
            )
        items = [self._video(d) for d in docs]
        return VideoPage(items=items, total=total, offset=offset, limit=limit)

    def _refused(self, video_id: str, fence: Fence | None) -> KubevodError:
        """Why a filtered write matched nothing: the entry is gone, or the fence failed."""
        try:
            video = self.get(video_id)
        except NotFound as exc:
            return exc
        assert fence is not None
        return Superseded(superseded(video_id, video.generation, video.prefix, fence))

    def _check(self, video_id: str, fence: Fence | None) -> None:
        """Raise NotFound or Superseded unless the entry exists and ``fence`` holds."""
        if self._videos.count_documents(_fence_filter(video_id, fence), limit=1) == 0:
            raise self._refused(video_id, fence)

    def update(self, video_id: str, *, fence: Fence | None = None, **fields: Any) -> Video:
        """Set the given top-level fields (and ``updated_at``); NotFound, Superseded.

        Only those fields are written (``$set``), so concurrent updates of other
        fields (e.g. progress from the worker) are not lost; the fence is part of
        the update's filter, so it is checked and written in one step.
        """
        video = apply_update(self.get(video_id), fields)
        doc = self._doc(video)
        names = {*fields, "updated_at"}
        if "title" in names:
            names.add("title_key")
        if "tags" in names:
            names.add("tags_key")
        with self._guard():
            result = self._videos.update_one(
                _fence_filter(video_id, fence), {"$set": {n: doc[n] for n in names if n != "id"}}
            )
            if result.matched_count == 0:
                raise self._refused(video_id, fence)
        return video

    def set_progress(
        self, video_id: str, progress: float, *, speed: float | None = None,
        fence: Fence | None = None,
    ) -> None:  # fmt: skip
        """Record transcode progress (percent, clamped to 0..100); NotFound, Superseded."""
        changes: dict[str, Any] = {"progress": clamp_progress(progress), "updated_at": now()}
        if speed is not None:
            changes["speed"] = float(speed)
        with self._guard():
            result = self._videos.update_one(_fence_filter(video_id, fence), {"$set": changes})
            if result.matched_count == 0:
                raise self._refused(video_id, fence)

    def add_chunk(self, video_id: str, index: int, *, fence: Fence | None = None) -> Video:
        """``$addToSet`` on ``chunks_done``, fenced in the same filter; the entry after it."""
        with self._guard():
            result = self._videos.update_one(
                _fence_filter(video_id, fence),
                {"$addToSet": {"chunks_done": int(index)}, "$set": {"updated_at": now()}},
            )
            if result.matched_count == 0:
                raise self._refused(video_id, fence)
        return self.get(video_id)

    # -- segments ----------------------------------------------------------

    def add_segment(self, video_id: str, segment: Segment, *, fence: Fence | None = None) -> None:
        """Record one uploaded segment (idempotent on (video, rendition, seq); last wins).

        With a fence there is no transaction to lean on (FerretDB has none), so the
        write is bracketed: check the fence, write a record that names this
        segment's own key, check again. A writer that finds it has been superseded
        removes exactly its own record; one that is current replaces a record of
        another attempt in its slot by that record's exact key. So an old attempt
        can never overwrite or delete the current attempt's record.
        """
        flt = {"video_id": video_id, "rendition": segment.rendition, "seq": segment.seq}
        doc = {**segment.model_dump(mode="json"), **flt, "schema_version": SCHEMA_VERSION}
        with self._guard():
            self._check(video_id, fence)
            if fence is None:
                try:
                    self._segments.replace_one(flt, doc, upsert=True)
                except DuplicateKeyError:  # a concurrent upsert of the same segment won
                    self._segments.replace_one(flt, doc, upsert=True)
                return
            mine = {**flt, "key": segment.key}
            for _ in range(5):
                try:
                    self._segments.replace_one(mine, doc, upsert=True)
                    break
                except DuplicateKeyError:  # the slot holds another attempt's record
                    self._check(video_id, fence)
                    other = self._segments.find_one(flt, {"key": 1})
                    if other is not None and other.get("key") != segment.key:
                        self._segments.delete_one({**flt, "key": other.get("key")})
            try:
                self._check(video_id, fence)
            except KubevodError:
                self._segments.delete_one(mine)
                raise

    def segments(self, video_id: str, rendition: str | None = None) -> builtins.list[Segment]:
        """Recorded segments, ordered by rendition then seq."""
        flt: dict[str, Any] = {"video_id": video_id}
        if rendition is not None:
            flt["rendition"] = rendition
        with self._guard():
            docs = list(
                self._segments.find(flt, {"_id": 0, "video_id": 0, "schema_version": 0}).sort(
                    [("rendition", ASCENDING), ("seq", ASCENDING)]
                )
            )
        return [Segment.model_validate(d) for d in docs]

    def clear_segments(self, video_id: str, *, prefix: str | None = None) -> None:
        """Forget the recorded segments of a video (with ``prefix``: those under it)."""
        flt: dict[str, Any] = {"video_id": video_id}
        if prefix is not None:
            flt["key"] = _under(prefix)
        with self._guard():
            self._segments.delete_many(flt)

    def delete(self, video_id: str) -> None:
        """Remove the video, its segments, its QoE data and its chunk wants; no error if
        absent."""
        with self._guard():
            self._segments.delete_many({"video_id": video_id})
            self._qoe.delete_many({"video_id": video_id})
            self._wants.delete_many({"video_id": video_id})
            self._videos.delete_one({"_id": video_id})

    # -- chunk wants -------------------------------------------------------

    def want_chunks(
        self, video_id: str, generation: int, chunks: Sequence[int], *, background: bool = False
    ) -> None:
        """Ask for these chunks, the first the most wanted (one upsert per chunk).

        ``$max`` moves ``asked_at`` forward only (a background ask leaves a viewer's
        want where it is); ``$setOnInsert`` gives a new want no holder, so asking
        again for a taken want keeps its lease.
        """
        with self._guard():
            for chunk, asked_at in want_times(chunks, background):
                flt = {"_id": f"{video_id}:{int(generation)}:{chunk}"}
                change = {
                    "$set": {"video_id": video_id, "generation": int(generation), "chunk": chunk},
                    "$max": {"asked_at": asked_at},
                    "$setOnInsert": {"holder": "", "lease_until": None},
                }
                try:
                    self._wants.update_one(flt, change, upsert=True)
                except DuplicateKeyError:  # a concurrent first ask of the same chunk won
                    self._wants.update_one(flt, change, upsert=True)

    def take_chunk(
        self, holder: str, lease_seconds: float, *, video_id: str | None = None
    ) -> ChunkWant | None:
        """Lease the newest-asked free want to ``holder``; the want after, or None.

        One ``findAndModify`` (filtered on a free lease, sorted on ``asked_at``
        descending, the document as it is after), so on MongoDB finding and taking
        are atomic and of two takers only one gets a want. FerretDB 1.x on SQLite
        runs that command's query and write outside one transaction
        (FerretDB/FerretDB#3040): there two takers at the same instant can both get
        the same want.
        """
        start, until = lease_end(lease_seconds)
        with self._guard():
            # no projection: FerretDB does not implement findAndModify's ``fields``
            doc = self._wants.find_one_and_update(
                _free_wants(start, video_id),
                {"$set": {"holder": holder, "lease_until": until}},
                sort=_FREE_ORDER,
                return_document=ReturnDocument.AFTER,
            )
        return None if doc is None else self._want(doc)

    def peek_chunk(self, *, video_id: str | None = None) -> ChunkWant | None:
        """The newest-asked free want, not taken."""
        with self._guard():
            doc = self._wants.find_one(_free_wants(lease_end(0)[0], video_id), sort=_FREE_ORDER)
        return None if doc is None else self._want(doc)

    def renew_chunk(self, want: ChunkWant, lease_seconds: float) -> bool:
        """Move the lease's end (one update, filtered on the holder too); 0 frees it."""
        if not want.holder:
            return False  # nobody's: nothing to renew
        _, until = lease_end(lease_seconds)
        lease: dict[str, Any] = (
            {"holder": want.holder, "lease_until": until}
            if lease_seconds > 0
            else {"holder": "", "lease_until": None}
        )
        flt = {
            "video_id": want.video_id, "generation": want.generation, "chunk": want.chunk,
            "holder": want.holder,
        }  # fmt: skip
        with self._guard():
            result = self._wants.update_one(flt, {"$set": lease})
        return result.matched_count == 1

    def drop_chunk_wants(self, video_id: str, chunks: Sequence[int] | None = None) -> None:
        """Forget those chunks' wants of the video (any generation); None: all of them."""
        flt: dict[str, Any] = {"video_id": video_id}
        if chunks is not None:
            flt["chunk"] = {"$in": sorted({int(c) for c in chunks})}
        with self._guard():
            self._wants.delete_many(flt)

    def chunk_wants(self, video_id: str) -> builtins.list[ChunkWant]:
        """The video's wants, newest ``asked_at`` first."""
        with self._guard():
            docs = list(
                self._wants.find({"video_id": video_id}).sort(
                    [("asked_at", DESCENDING), ("chunk", ASCENDING)]
                )
            )
        return [self._want(d) for d in docs]

    @staticmethod
    def _want(doc: dict[str, Any]) -> ChunkWant:
        return ChunkWant.model_validate({k: v for k, v in doc.items() if k != "_id"})

    # -- QoE ---------------------------------------------------------------

    def record_qoe(self, beacon: QoeBeacon) -> QoeBeacon | None:
        """Store one player beacon as its session's latest; return the one it replaced.

        One ``findAndModify`` (replace, upsert, the document as it was before), so
        the read and the write are atomic on the server whichever replica calls.
        FerretDB 1.x on SQLite runs that command's query and write outside one
        transaction (FerretDB/FerretDB#3040): there two beacons of one session
        arriving at the same instant can get the same previous beacon back.
        """
        flt = {"video_id": beacon.video_id, "session": beacon.session}
        doc = {**beacon.model_dump(mode="json"), "received_at": now()}
        doc["schema_version"] = SCHEMA_VERSION
        with self._guard():
            try:
                before = self._replace_qoe(flt, doc)
            except DuplicateKeyError:
                # two first beacons of a session raced to insert it: the other one won,
                # so this one replaces it and gets it back as the previous beacon
                before = self._replace_qoe(flt, doc)
        if before is None:
            return None
        return QoeBeacon.model_validate({k: v for k, v in before.items() if k not in _QOE_INTERNAL})

    def _replace_qoe(self, flt: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any] | None:
        # no projection: FerretDB does not implement findAndModify's ``fields``
        return self._qoe.find_one_and_replace(
            flt, doc, upsert=True, return_document=ReturnDocument.BEFORE
        )

    def qoe_stats(self, video_id: str) -> QoeStats:
        """Aggregate of the beacons for one video."""
        with self._guard():
            docs = list(self._qoe.find({"video_id": video_id}, {"_id": 0}))
        return aggregate_qoe(QoeBeacon.model_validate(d) for d in docs)

    # -- lifecycle ---------------------------------------------------------

    def ping(self) -> None:
        """Raise Unavailable when the server cannot be reached."""
        with self._guard():
            try:
                self._client.admin.command("ping")
            except PyMongoError as exc:
                if isinstance(exc, ConnectionFailure):
                    raise
                raise Unavailable(f"catalog {self._safe_uri} unhealthy: {exc}") from exc

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()
