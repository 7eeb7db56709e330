"""The Catalog port (docs/architecture.md §4): video metadata, segments, progress, QoE.

Backends: ``MongoCatalog`` (pymongo) and ``SqliteCatalog`` (the embedded
default). One contract test suite (tests/integration/test_catalog_contract.py)
runs unchanged against both. Every method is blocking and thread-safe.
"""

from __future__ import annotations

import builtins
from typing import Any, Literal, Protocol, runtime_checkable

from kubevod.models import QoeBeacon, QoeStats, Segment, Video, VideoPage, VideoState

#: Bump when the stored document shape changes; stored with every video.
SCHEMA_VERSION = 1

SortKey = Literal["created", "-created", "title", "-title", "duration", "-duration"]


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

    def update(self, video_id: str, **fields: Any) -> Video:
        """Set the given top-level fields (and ``updated_at``); raises NotFound."""
        ...

    def set_progress(self, video_id: str, progress: float, *, speed: float | None = None) -> None:
        """Record transcode progress (percent, clamped to 0..100)."""
        ...

    def add_segment(self, video_id: str, segment: Segment) -> None:
        """Record one uploaded segment (idempotent on (video, rendition, seq))."""
        ...

    def segments(self, video_id: str, rendition: str | None = None) -> builtins.list[Segment]:
        """Recorded segments, ordered by rendition then seq."""
        ...

    def clear_segments(self, video_id: str) -> None:
        """Forget every recorded segment of a video (a transcode starting over)."""
        ...

    def delete(self, video_id: str) -> None:
        """Remove the video, its segments and its QoE data; no error if absent."""
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
