"""Worker settings (pydantic-settings, environment prefix ``KUBEVOD_``).

Grouped by concern; every field says its unit and why its default is what it is.
Other ``KUBEVOD_*`` variables (``KUBEVOD_JOB``, ``KUBEVOD_CATALOG_URL``...) are
ignored here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
        default=1.0,
        ge=0.5,
        le=30.0,
        description="length of the first segment (s): short so the video is playable "
        "about one second after the encode starts (issue 3); later ones are segmentSeconds",
    )
    max_audio_tracks: int = Field(default=4, ge=1, le=16, description="audio tracks kept")

    # --- fetching sources
    max_source_bytes: int = Field(
        default=200 * 1024**3, ge=1, description="largest source fetched over http(s) (bytes)"
    )
    http_timeout: float = Field(default=30.0, gt=0, description="connect/read timeout (s)")
    max_redirects: int = Field(default=5, ge=0, le=20, description="http redirects followed")

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
