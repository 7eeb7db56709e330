"""The Catalog port (docs/architecture.md §4): video metadata, segments, progress, QoE,
and the queue of chunk wants of on-demand videos.

Backends: ``MongoCatalog`` (pymongo) and ``SqliteCatalog`` (the embedded
default). One contract test suite (tests/integration/test_catalog_contract.py)
runs unchanged against both. Every method is blocking and thread-safe.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from kubevod.models import (
    ChunkWant,
    QoeBeacon,
    QoeStats,
    Segment,
    Video,
    VideoPage,
    VideoState,
)

#: Bump when the stored document shape changes; stored with every video.
SCHEMA_VERSION = 1

SortKey = Literal["created", "-created", "title", "-title", "duration", "-duration"]


@dataclass(frozen=True)
class Fence:
    """The state a write is meant for; the catalog refuses it (``Superseded``) otherwise.

    Checked and written in one step (a filtered update in MongoDB, one
    transaction in SQLite), so of two writers only the one whose fence holds
    lands. ``kubevod.lifecycle`` sets every fence; nothing else writes fenced.

    Attributes:
        generation: the stored generation must be this one.
        prefix: the stored media prefix (one attempt's) must be this one.
        older_than: the stored generation must be lower than this (a new generation
            moving an entry forward, never back).
    """

    generation: int | None = None
    prefix: str | None = None
    older_than: int | None = None

    def holds(self, generation: int, prefix: str) -> bool:
        """Whether an entry at ``generation`` with media ``prefix`` passes this fence."""
        return (
            (self.generation is None or generation == self.generation)
            and (self.prefix is None or prefix == self.prefix)
            and (self.older_than is None or generation < self.older_than)
        )

    def describe(self) -> str:
        """The fence in words, for the Superseded message."""
        parts = []
        if self.generation is not None:
            parts.append(f"generation {self.generation}")
        if self.prefix is not None:
            parts.append(f"attempt {self.prefix}")
        if self.older_than is not None:
            parts.append(f"a generation below {self.older_than}")
        return " and ".join(parts) or "anything"


def superseded(video_id: str, generation: int, prefix: str, fence: Fence) -> str:
    """The message of a write refused by ``fence``."""
    return (
        f"video {video_id} has moved on (generation {generation}, media {prefix or 'none'}); "
        f"the write was for {fence.describe()}"
    )


@runtime_checkable
class Catalog(Protocol):
    def create(self, video: Video) -> Video:
        """Insert a new video; raises Conflict when the id exists."""
        ...

    def get(self, video_id: str) -> Video:
        """The video with this id; raises NotFound."""
        ...

    def find_by_hash(self, content_hash: str) -> Video | None:
        """The video made from the same source bytes, if any."""
        ...

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
        ...

    def update(self, video_id: str, *, fence: Fence | None = None, **fields: Any) -> Video:
        """Set the given top-level fields (and ``updated_at``).

        Only ``kubevod.lifecycle`` calls this (tests/unit/test_lifecycle_owner.py
        holds the code to it). Raises NotFound, or Superseded when ``fence`` fails.
        """
        ...

    def set_progress(
        self, video_id: str, progress: float, *, speed: float | None = None,
        fence: Fence | None = None,
    ) -> None:  # fmt: skip
        """Record transcode progress (percent, clamped to 0..100); NotFound, Superseded."""
        ...

    def add_chunk(self, video_id: str, index: int, *, fence: Fence | None = None) -> Video:
        """Add ``index`` to the video's ``chunks_done`` (a set) in one step, so writers
        of one video in parallel (pods of a spread transcode) lose none of each
        other's; returns the entry as it is after. Raises NotFound, Superseded.
        """
        ...

    def add_segment(self, video_id: str, segment: Segment, *, fence: Fence | None = None) -> None:
        """Record one uploaded segment (idempotent on (video, rendition, seq)).

        With a fence, the segment lands only while the fence holds, and a record of
        another attempt in the same slot is replaced; raises NotFound, Superseded.
        """
        ...

    def segments(self, video_id: str, rendition: str | None = None) -> builtins.list[Segment]:
        """Recorded segments, ordered by rendition then seq."""
        ...

    def clear_segments(self, video_id: str, *, prefix: str | None = None) -> None:
        """Forget the recorded segments of a video; with ``prefix``, only those whose
        key lies under it (one attempt's)."""
        ...

    def delete(self, video_id: str) -> None:
        """Remove the video, its segments, its QoE data and its chunk wants; no error if
        absent."""
        ...

    def want_chunks(
        self, video_id: str, generation: int, chunks: Sequence[int], *, background: bool = False
    ) -> None:
        """Ask for these chunks of the video's ``generation``, the first the most wanted.

        The API server asks when a player reaches a chunk not encoded yet; the
        worker takes them with ``take_chunk``. Each (video, generation, chunk) is one
        record: asking again moves its ``asked_at`` forward (never back) and never
        duplicates it, nor frees a want that is taken (its holder and lease stay).
        ``chunks[i]`` is asked ``i`` milliseconds before now, so the first sorts as
        the newest. ``background``: asked long before any viewer's want
        (``common.BACKGROUND_ASKED``), so those are taken after every viewer's: the
        rest of a popular video.
        """
        ...

    def take_chunk(
        self, holder: str, lease_seconds: float, *, video_id: str | None = None
    ) -> ChunkWant | None:
        """Hand out the newest-asked want whose lease is free, and lease it to ``holder``.

        A want is free when it has no lease or its ``lease_until`` has passed; the
        one with the largest ``asked_at`` (of ``video_id`` only, when given) is
        marked taken (``holder``, ``lease_until`` = now + ``lease_seconds``) in the
        same step that finds it, so of two takers only one gets it (not on FerretDB
        1.x: see ``MongoCatalog.take_chunk``). Wants asked at the same millisecond
        come out lowest chunk first.

        Returns:
            The want as it is after, or None when no free want is left.
        """
        ...

    def peek_chunk(self, *, video_id: str | None = None) -> ChunkWant | None:
        """The want ``take_chunk`` would hand out now, left as it is (a look, not a take)."""
        ...

    def renew_chunk(self, want: ChunkWant, lease_seconds: float) -> bool:
        """Extend the lease of ``want`` (as taken: the same video, generation, chunk and
        ``holder``) to now + ``lease_seconds``; 0 frees it for the next taker at once.

        A worker renews the chunk it encodes well before its lease ends, so a chunk
        that takes longer than one lease is not handed to a second worker.

        Returns:
            False when the want is gone or another holder has it now (this one's
            lease ran out and it was taken again): the caller no longer owns it.
        """
        ...

    def drop_chunk_wants(self, video_id: str, chunks: Sequence[int] | None = None) -> None:
        """Forget the wants of these chunks of the video (any generation); None: all of
        the video's wants. No error when absent."""
        ...

    def chunk_wants(self, video_id: str) -> builtins.list[ChunkWant]:
        """The video's wants (every generation, taken or not), newest ``asked_at`` first."""
        ...

    def record_qoe(self, beacon: QoeBeacon) -> QoeBeacon | None:
        """Store one player beacon as its session's latest; return the one it replaced.

        The catalog, shared by every API replica, is the one owner of a session's
        previous beacon: storing and reading it back is one atomic step, so the
        beacons of a session form one chain whichever replicas receive them (each
        one's previous is the beacon stored just before it), and the QoE metrics
        taken as differences along that chain count the session once over all
        replicas.

        Returns:
            The session's previous beacon, or None for the session's first one.
        """
        ...

    def qoe_stats(self, video_id: str) -> QoeStats:
        """Aggregate of the beacons for one video."""
        ...

    def ping(self) -> None:
        """Raise Unavailable when the catalog cannot be reached."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
