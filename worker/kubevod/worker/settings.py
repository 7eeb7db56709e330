"""Worker settings (pydantic-settings, environment prefix ``KUBEVOD_``).

Grouped by concern; every field says its unit and why its default is what it is.
Other ``KUBEVOD_*`` variables (``KUBEVOD_JOB``, ``KUBEVOD_CATALOG_URL``...) are
ignored here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from kubevod.worker.policy import SourceLimits
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kubevod.fetchguard import FetchLimits, FetchPolicy
from kubevod.lists import split_list

X264Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower"
]


class WorkerSettings(BaseSettings):
    """Everything the worker can be told from its environment."""

    model_config = SettingsConfigDict(env_prefix="KUBEVOD_", extra="ignore")

    # --- tools
    ffmpeg: str = Field(default="ffmpeg", description="ffmpeg binary (name on PATH or path)")
    ffprobe: str = Field(default="ffprobe", description="ffprobe binary (name on PATH or path)")

    # --- encoding
    x264_preset: X264Preset = Field(
        default="veryfast",
        description="libx264 preset; veryfast is what PeerTube and Jellyfin default to on "
        "small machines. Tests use ultrafast to stay quick.",
    )
    x265_preset: X264Preset = Field(
        default="faster",
        description="libx265 preset (HEVC jobs); faster keeps a 1080p ladder near real time "
        "on a few cores. Tests use ultrafast.",
    )
    svtav1_preset: int = Field(
        default=10,
        ge=0,
        le=13,
        description="SVT-AV1 preset (AV1 jobs; 0 slowest .. 13 fastest): 10 is the fastest "
        "that still beats HEVC on size at small core counts; tests use 12.",
    )
    crf: int = Field(
        default=23,
        ge=0,
        le=51,
        description="quality target of capped CRF on "
        "x264's scale (HEVC adds 5, AV1 adds 12: kubevod.worker.encoders.CRF_OFFSET)",
    )
    x264_threads: int = Field(
        default=0,
        ge=0,
        le=64,
        description="threads of every x264 encoder (0: sized to the CPUs by "
        "kubevod.worker.ffmpeg.thread_plan; on 2 CPUs the top rung gets 2, the others 1)",
    )
    cpus: float = Field(
        default=0.0,
        ge=0.0,
        le=1024.0,
        description="CPUs the encode may use (0: this process's affinity, capped by its "
        "cgroup CPU quota, e.g. the Job pod's limit)",
    )
    audio_bitrate: int = Field(default=128_000, ge=32_000, le=512_000, description="bits/s")
    first_segment_seconds: float = Field(
        default=0.5,
        ge=0.5,
        le=30.0,
        description="length of the first segment (s): short so the video is playable "
        "about a second after the encode starts (ffmpeg hands the first segment over "
        "once each encoder has passed the next keyframe, its lookahead after it); later "
        "ones are segmentSeconds",
    )
    chunk_seconds: float = Field(
        default=0.0,
        ge=0.0,
        le=3600.0,
        description="encode the video in chunks of at least this many seconds, each by its "
        "own ffmpeg, audio once for the whole source (0: one ffmpeg for everything); a "
        "passed-through top rung or software AV1 keeps one ffmpeg",
    )
    spread_chunk_seconds: float = Field(
        default=20.0,
        ge=1.0,
        le=3600.0,
        description="least length of a chunk when a video is spread over several pods (s): "
        "the unit a pod takes; longer chunks cost less per encoded minute (each starts an "
        "ffmpeg and decodes a little before its first frame), shorter ones balance the pods",
    )
    spread_first_chunk_seconds: float = Field(
        default=4.0,
        ge=1.0,
        le=600.0,
        description="least length of a spread video's first chunk (s): the registering pod "
        "encodes it first, and the video is playable, and the other pods join, once it is done",
    )
    spread_join_poll_seconds: float = Field(
        default=1.0,
        gt=0.0,
        le=60.0,
        description="how often a pod of a spread video asks the catalog whether the "
        "registering pod has recorded the plan and the first chunk (s)",
    )
    on_demand_chunk_seconds: float = Field(
        default=8.0,
        ge=1.0,
        le=600.0,
        description="least length of a chunk of an on-demand video (s): what a viewer's "
        "seek waits for is about its first segment; shorter chunks start sooner, longer "
        "ones cost less per encoded minute",
    )
    on_demand_first_chunk_seconds: float = Field(
        default=3.0,
        ge=1.0,
        le=600.0,
        description="least length of an on-demand video's first chunk (s), which its "
        "registration encodes: short, so the registration ends and viewers' chunks start soon",
    )
    on_demand_segment_seconds: float = Field(
        default=2.0,
        ge=1.0,
        le=30.0,
        description="segment length of an on-demand video (s), when shorter than the job's: "
        "a seek waits for the first segment where it lands to be encoded, so short segments "
        "answer it sooner",
    )
    max_audio_tracks: int = Field(default=4, ge=1, le=16, description="audio tracks kept")
    passthrough: Literal["auto", "never"] = Field(
        default="auto",
        description="auto: a source whose H.264 video players already decode becomes the "
        "top rung as it is (remuxed, not re-encoded) and its AAC-LC audio is copied; never: "
        "always encode (a job's own passthrough: never wins too)",
    )
    passthrough_longest_segment: float = Field(
        default=10.0, ge=2.0, le=30.0,
        description="passthrough cuts segments on the source's keyframes; a source whose "
        "keyframes would make a segment longer than this (s) is encoded instead",
    )  # fmt: skip

    # --- fetching sources (the fetch guard: kubevod/fetchguard.py, docs/security.md)
    max_source_bytes: int = Field(
        default=200 * 1024**3,
        ge=1,
        description="largest source fetched over http(s) or s3 (bytes); the chart sets it "
        "below the scratch volume's size, so a download cannot fill the node's disk",
    )
    http_timeout: float = Field(default=30.0, gt=0, description="connect/read timeout (s)")
    fetch_deadline: float = Field(
        default=3600.0,
        gt=0,
        description="seconds a whole download may take (redirects included): a server that "
        "trickles bytes just fast enough for the read timeout cannot hold a worker; an hour "
        "fetches 200 GiB at 60 MB/s",
    )
    max_redirects: int = Field(default=5, ge=0, le=20, description="http redirects followed")
    fetch_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs and host names a source URL may reach although they are not "
        "public (loopback, private, link-local are refused by default): a NAS on the home "
        "network, e.g. 192.168.1.20/32 or nas.lan. Comma list.",
    )
    fetch_deny: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs never fetched from, whatever fetch_allow says: the cluster's Pod "
        "and Service ranges (the chart sets k3s's 10.42.0.0/16 and 10.43.0.0/16). Comma list.",
    )
    s3_source_buckets: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="buckets an s3:// source may name besides the store's own (read with the "
        "worker's store credentials); any other bucket is refused. Comma list.",
    )

    # --- what the worker agrees to decode (kubevod/worker/policy.py)
    max_pixels: int = Field(
        default=7680 * 4320,
        ge=16 * 16,
        description="largest frame (width x height) decoded; default 8K UHD. A 64k x 64k "
        "frame would need gigabytes per decoded picture",
    )
    max_fps: float = Field(default=240.0, gt=0, description="highest source frame rate (1/s)")
    max_duration: float = Field(
        default=24 * 3600.0, gt=0, description="longest source (s); default a day"
    )
    max_streams: int = Field(
        default=64, ge=1, description="most streams a source may hold (video+audio+subtitles)"
    )
    transcode_timeout: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="seconds one transcode may run before it is stopped and failed: local "
        "mode's counterpart of the Job's activeDeadlineSeconds",
    )

    # --- running
    scratch_dir: Path | None = Field(
        default=None, description="where the encode writes (default: a temp dir)"
    )
    poll_interval: float = Field(
        default=0.05, gt=0, le=5, description="how often finished segments are looked for (s)"
    )
    progress_interval: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="least time between two progress writes to the catalog (s): progress bars "
        "move smoothly without a catalog write per ffmpeg report",
    )
    hwaccel_trial_timeout: float = Field(
        default=20.0, gt=0, description="limit of a one-frame trial encode (s)"
    )
    stall_timeout: float = Field(
        default=600.0,
        gt=0,
        description="fail the transcode when ffmpeg reports no progress and writes no "
        "segment for this long (s): a source on a hung mount, a wedged GPU",
    )
    kill_grace: float = Field(
        default=3.0, gt=0, description="seconds between SIGTERM and SIGKILL of ffmpeg on cancel"
    )

    @field_validator("fetch_allow", "fetch_deny", "s3_source_buckets", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> list[str]:
        if isinstance(value, str) and value.strip().startswith("["):
            value = json.loads(value)
        return split_list(value)

    @field_validator("fetch_allow", mode="after")
    @classmethod
    def _valid_allow(cls, value: list[str]) -> list[str]:
        FetchPolicy.parse(allow=value)  # a typo fails at start, not at the first fetch
        return value

    @field_validator("fetch_deny", mode="after")
    @classmethod
    def _valid_deny(cls, value: list[str]) -> list[str]:
        FetchPolicy.parse(deny=value)
        return value

    def fetch_policy(self) -> FetchPolicy:
        """The fetch guard's policy from ``fetch_allow`` and ``fetch_deny``."""
        return FetchPolicy.parse(self.fetch_allow, self.fetch_deny)

    def source_limits(self) -> SourceLimits:
        """What ``policy.check_source`` refuses before any frame is decoded."""
        return SourceLimits(
            max_pixels=self.max_pixels, max_fps=self.max_fps, max_duration=self.max_duration,
            max_streams=self.max_streams,
        )  # fmt: skip

    def fetch_limits(self) -> FetchLimits:
        """The fetch guard's limits."""
        return FetchLimits(
            max_bytes=self.max_source_bytes, timeout=self.http_timeout,
            deadline=self.fetch_deadline, max_redirects=self.max_redirects,
        )  # fmt: skip
