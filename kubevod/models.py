"""The domain model shared by the worker, the API, the operator and local mode.

Everything here is plain data (pydantic models) with no I/O. The catalog stores
these, the manifest renderers read them, the operator mirrors them into
``VideoAsset.status``.
"""

from __future__ import annotations

import itertools
import re
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from kubevod import keys
from kubevod.timeline import Chunk, Timeline, frame_at, plan_chunks

#: Video ids are short, URL-safe and safe as object-store prefixes and k8s names.
VIDEO_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_VIDEO_ID_RE = re.compile(VIDEO_ID_PATTERN)
#: Rendition names such as ``1080p``, ``720p60`` or ``audio``.
RENDITION_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
_RENDITION_RE = re.compile(RENDITION_PATTERN)

#: Cache-Control for content-addressed, never-rewritten objects (docs/architecture.md §4).
IMMUTABLE = "public, max-age=31536000, immutable"


def now() -> datetime:
    """The current time, timezone-aware UTC (the only clock the models use)."""
    return datetime.now(UTC)


def new_video_id() -> str:
    """A fresh random video id (12 lowercase hex characters)."""
    return secrets.token_hex(6)


def is_valid_video_id(value: str) -> bool:
    """True when ``value`` is a well-formed video id."""
    return bool(_VIDEO_ID_RE.match(value))


def is_valid_rendition(value: str) -> bool:
    """True when ``value`` is a well-formed rendition name."""
    return bool(_RENDITION_RE.match(value))


class VideoState(StrEnum):
    """Lifecycle of a video in the catalog."""

    QUEUED = "queued"
    TRANSCODING = "transcoding"
    READY = "ready"
    FAILED = "failed"


class TrackKind(StrEnum):
    VIDEO = "video"
    AUDIO = "audio"


class Rendition(BaseModel):
    """One rung of the ladder (or the single audio track), as the manifests need it."""

    name: str  # "1080p", "audio"
    kind: TrackKind = TrackKind.VIDEO
    width: int = 0
    height: int = 0
    frame_rate: float = 0.0
    bandwidth: int  # peak bits/s, HLS BANDWIDTH / DASH @bandwidth
    average_bandwidth: int = 0  # bits/s, HLS AVERAGE-BANDWIDTH
    codecs: str  # RFC 6381, e.g. "avc1.640028" or "mp4a.40.2"
    timescale: int = 90000  # of the fMP4 track (DASH SegmentTimeline)
    language: str | None = None
    channels: int | None = None
    sample_rate: int | None = None


class Segment(BaseModel):
    """One uploaded CMAF media segment of one rendition."""

    rendition: str
    seq: int  # 0-based, contiguous per rendition
    duration: float  # seconds
    start: float = 0.0  # presentation start, seconds
    size: int = 0  # bytes
    key: str  # object-store key


class Subtitle(BaseModel):
    """A text track exported as WebVTT."""

    name: str
    language: str = "und"
    key: str  # object-store key of the .vtt file
    default: bool = False


class Trickplay(BaseModel):
    """Seek-bar thumbnails: sprite sheets indexed by a WebVTT file."""

    vtt_key: str
    interval: float  # seconds between thumbnails
    width: int
    height: int
    columns: int
    rows: int
    sheets: int


class TranscodePolicy(StrEnum):
    """When a video's chunks are encoded."""

    EAGER = "eager"  # all of them, front to back, at registration
    ON_DEMAND = "onDemand"  # the first at registration; the others when watched


class MediaPlan(BaseModel):
    """A generation's segment and chunk plan (``kubevod.timeline``), fixed once probed.

    Manifests list every planned segment from it before the segment exists; the
    worker cuts and encodes by it. Segment ``j`` starts on the first frame of the
    ``fps`` grid at or after the timeline's cut, so times are frame-exact.
    """

    first: float = Field(gt=0)  # the first segment's length, s
    every: float = Field(gt=0)  # the other segments' length, s
    fps: float = Field(gt=0)  # the output frame rate
    duration: float = Field(gt=0)  # the video's length, s
    chunk_seconds: float = Field(gt=0)  # least length of a chunk, s
    #: Least length of the first chunk, s (None: ``chunk_seconds``).
    first_chunk_seconds: float | None = Field(default=None, gt=0)
    #: The video renditions the plan cuts (known before the first one is recorded).
    rungs: list[str] = Field(default_factory=list)
    #: Where the video's first frame lies on the output timeline, s (segment start times).
    offset: float = Field(default=0.0, ge=0)
    #: The encode the plan was made for, which every later chunk job repeats
    #: (``kubevod.jobs.chunk_job``): the ladder (a preset name or explicit rungs),
    #: the codec and the accelerator asked for.
    ladder: str | list[dict[str, Any]] = "default"
    codec: str = "h264"
    accelerator: str = "auto"

    def timeline(self) -> Timeline:
        return Timeline.regular(self.first, self.every)

    def chunks(self) -> tuple[Chunk, ...]:
        return plan_chunks(
            self.timeline(), self.duration, self.fps, self.chunk_seconds,
            self.first_chunk_seconds,
        )  # fmt: skip

    def segments(self) -> list[tuple[float, float]]:
        """``(start, duration)`` of every planned video segment, s (starts from ``offset``)."""
        timeline = self.timeline()
        edges = [0.0]
        for cut in timeline.cuts_before(self.duration):
            at = frame_at(cut, self.fps) / self.fps
            if at < self.duration - 1e-6:
                edges.append(at)
        edges.append(self.duration)
        return [(round(self.offset + a, 6), round(b - a, 6)) for a, b in itertools.pairwise(edges)]


class SourceSummary(BaseModel):
    """What the operator shows in ``status.source``."""

    codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    bitrate: int | None = None
    size: int | None = None
    audio_tracks: int = 0
    subtitle_tracks: int = 0


class Video(BaseModel):
    """A catalog entry: everything known about one video."""

    id: str = Field(default_factory=new_video_id, pattern=VIDEO_ID_PATTERN)
    title: str = ""
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    source: str = ""  # where it came from: a path, URL or s3://bucket/key
    content_hash: str | None = None  # sha256 of the source bytes, for de-duplication
    state: VideoState = VideoState.QUEUED
    progress: float = 0.0  # percent, 0..100
    playable: bool = False  # true once the first segment of every rendition exists
    message: str = ""  # human-readable reason for the current state
    duration: float = 0.0  # seconds
    segment_seconds: float = 4.0
    #: The longest segment the transcode's timeline plans (longer than ``segment_seconds``
    #: when segments are cut on a passed-through source's keyframes); None: as planned.
    longest_segment: float | None = None
    generation: int = 1  # spec generation; new generations use a new media prefix
    prefix: str = ""  # object-store prefix of this generation's media, e.g. videos/<id>/g1
    renditions: list[Rendition] = Field(default_factory=list)
    subtitles: list[Subtitle] = Field(default_factory=list)
    trickplay: Trickplay | None = None
    poster_key: str | None = None
    source_info: SourceSummary = Field(default_factory=SourceSummary)
    #: eager: every chunk at registration; onDemand: the rest when watched (``plan``).
    policy: TranscodePolicy = TranscodePolicy.EAGER
    #: The segment and chunk plan of an on-demand video (None: segments as recorded).
    plan: MediaPlan | None = None
    #: Indices of the plan's chunks encoded so far (ascending).
    chunks_done: list[int] = Field(default_factory=list)
    accelerator: str | None = None  # encoder family actually used: "software", "nvidia", ...
    speed: float | None = None  # encode speed, x realtime
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)

    @property
    def complete(self) -> bool:
        """Every planned chunk is encoded (always, for a video without a plan)."""
        return self.plan is None or len(self.chunks_done) >= len(self.plan.chunks())

    def media_prefix(self) -> str:
        """The object-store prefix of this video's current generation."""
        return self.prefix or keys.media_prefix(self.id, self.generation)


class ChunkWant(BaseModel):
    """A chunk of an on-demand video that a viewer is waiting for (``Catalog.want_chunks``).

    One record per (video, generation, chunk). The worker takes the newest-asked
    one whose lease is free (``Catalog.take_chunk``) and encodes it; a taken
    want is not handed out again before its lease ends.
    """

    video_id: str
    generation: int
    chunk: int
    asked_at: datetime  # the latest time it was asked for
    holder: str = ""  # who took it ("" = nobody)
    lease_until: datetime | None = None  # a taken want is not handed out again before this


class VideoPatch(BaseModel):
    """Fields a user may change after creation (API PATCH, CLI)."""

    title: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=10_000)
    tags: list[str] | None = Field(default=None, max_length=64)


class VideoPage(BaseModel):
    """One page of a catalog listing."""

    items: list[Video]
    total: int
    offset: int
    limit: int


class QoeBeacon(BaseModel):
    """A player's quality-of-experience report for one playback session."""

    video_id: str = Field(pattern=VIDEO_ID_PATTERN)
    session: str = Field(min_length=1, max_length=64)
    startup_ms: float | None = Field(default=None, ge=0, le=600_000)
    rebuffer_count: int = Field(default=0, ge=0, le=100_000)
    rebuffer_ms: float = Field(default=0, ge=0, le=86_400_000)
    watch_ms: float = Field(default=0, ge=0, le=86_400_000)
    switches: int = Field(default=0, ge=0, le=100_000)
    errors: list[str] = Field(default_factory=list, max_length=20)
    rendition: str | None = Field(default=None, max_length=32)


class QoeStats(BaseModel):
    """Per-video aggregate of QoE beacons."""

    sessions: int = 0
    startup_ms_avg: float | None = None
    rebuffer_ratio: float = 0.0
    switches: int = 0
    errors: int = 0
