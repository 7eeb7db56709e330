"""What a transcode is asked to do: the contract between whoever schedules a
transcode (the operator's Job, local mode's pool, the API in local mode) and
``kubevod.worker.pipeline.run``.

In a Kubernetes Job the whole job travels as JSON in one environment
variable; catalog and store URLs travel separately from Secrets (the names:
``kubevod.contract``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from kubevod import contract
from kubevod.models import VIDEO_ID_PATTERN, TranscodePolicy, Video

JOB_ENV = contract.JOB

Codec = Literal["h264", "hevc", "av1"]
Accelerator = Literal["auto", "none", "nvidia", "vaapi", "qsv"]


class LadderRung(BaseModel):
    """One explicit rung of a custom ladder."""

    height: int = Field(ge=144, le=4320)
    bitrate: int = Field(ge=50_000, le=100_000_000, description="video bits/s at 30 fps")
    name: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")


class TranscodeJob(BaseModel):
    """One transcode of one generation of one video."""

    video_id: str = Field(pattern=VIDEO_ID_PATTERN)
    source: str = Field(min_length=1, description="local path, http(s) URL or s3://bucket/key")
    generation: int = Field(default=1, ge=1)
    segment_seconds: float = Field(default=4.0, ge=1.0, le=30.0)
    ladder: str | list[LadderRung] = "default"
    codec: Codec = "h264"
    accelerator: Accelerator = "auto"
    #: auto: the source's own H.264/AAC as the top rung when players decode it as it is.
    passthrough: Literal["auto", "never"] = "auto"
    #: eager: the whole ladder now; onDemand: probe, poster, audio and the first chunk now.
    policy: TranscodePolicy = TranscodePolicy.EAGER
    #: Chunks of an on-demand video to encode (its registration made the plan and the
    #: attempt these join); None: a registration or a whole transcode.
    chunks: list[int] | None = Field(default=None, max_length=100_000)
    #: Pods one generation is spread over (an Indexed Job's completions, each pod told
    #: its index by ``contract.POD_INDEX``): the first registers the plan and chunk 0,
    #: then every pod encodes its share (``kubevod.timeline.spread``). 1: one pod.
    pods: int = Field(default=1, ge=1, le=64)
    title: str = ""

    def to_env(self) -> dict[str, str]:
        """The environment variables that carry this job into a worker process."""
        return {JOB_ENV: self.model_dump_json()}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TranscodeJob:
        """Read a job back from ``to_env``'s variables; raises ValueError when absent or bad."""
        raw = env.get(JOB_ENV)
        if not raw:
            raise ValueError(f"{JOB_ENV} is not set")
        return cls.model_validate(json.loads(raw))


def job_for(video: Video) -> TranscodeJob:
    """The transcode job that (re)makes ``video`` from its recorded source."""
    return TranscodeJob(
        video_id=video.id,
        source=video.source,
        generation=video.generation,
        segment_seconds=video.segment_seconds,
        policy=video.policy,
        title=video.title,
    )


def chunk_job(video: Video, chunks: list[int] | None = None) -> TranscodeJob:
    """The job that encodes more chunks of an on-demand video: ``chunks`` first, then
    whichever its scheduler hands it (``kubevod.worker.pipeline.run``'s ``demand``).

    It repeats the encode its plan was made for (``MediaPlan.ladder``, codec,
    accelerator), so every chunk has the registration's rungs and init segments.
    """
    job = job_for(video)
    if video.plan is None:
        return job.model_copy(update={"chunks": list(chunks or [])})
    plan = video.plan
    return TranscodeJob.model_validate(
        {
            **job.model_dump(),
            "ladder": plan.ladder,
            "codec": plan.codec,
            "accelerator": plan.accelerator,
            "chunks": list(chunks or []),
        }
    )


class Runner(Protocol):
    """Where transcodes run: ``LocalPool`` (local mode) or Kubernetes Jobs (operator)."""

    def submit(self, job: TranscodeJob) -> None:
        """Queue a transcode; returns at once."""
        ...

    def cancel(self, video_id: str) -> None:
        """Stop a queued or running transcode of this video, if any."""
        ...


class IngestRequest(BaseModel):
    """A request to add a video (local mode's ``kubevod add`` and ``POST /api/videos``)."""

    source: str = Field(min_length=1, max_length=4096)
    title: str = Field(default="", max_length=500)
    tags: list[str] = Field(default_factory=list, max_length=64)
    policy: TranscodePolicy | None = Field(
        default=None,
        description=(
            "eager: encode the whole video now; onDemand: register it now (probe, poster,"
            " the first seconds) and encode the rest when it is watched."
            " None: the server's default (kubevod serve --on-demand, KUBEVOD_DEFAULT_POLICY)."
        ),
    )


class Ingestor(Protocol):
    """Turns an IngestRequest into a catalog entry plus a queued transcode (local mode)."""

    def ingest(self, request: IngestRequest) -> Video:
        """Register the video (de-duplicated by content hash) and queue its transcode.

        Raises SourceError when the source is unusable.
        """
        ...

    def cancel(self, video_id: str) -> None:
        """Stop any transcode of this video (before it is deleted)."""
        ...
