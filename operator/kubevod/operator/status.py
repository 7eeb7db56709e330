"""``VideoAsset.status`` from the Job's state and the catalog entry (pure).

The operator is the only writer of status. Each function here returns the
whole desired status; ``transitions`` compares it with the current one and
says which Kubernetes Events to post. No clock: callers pass ``now``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubevod.operator.resource import Asset, Phase

from kubevod.models import TrackKind, Video, VideoState

#: Job condition reasons (set by the Job controller) → our failure reasons.
_JOB_REASONS = {
    "PodFailurePolicy": "SourceError",
    "BackoffLimitExceeded": "TranscodeFailed",
    "DeadlineExceeded": "DeadlineExceeded",
}


@dataclass(frozen=True)
class JobView:
    """What the operator needs to know of one transcode Job."""

    namespace: str
    name: str
    uid: str = ""
    generation: int = 0  # the VideoAsset generation it transcodes (label)
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    complete: bool = False
    failed_terminal: bool = False
    reason: str = ""
    message: str = ""
    started: str = ""  # status.startTime (RFC 3339)
    ended: str = ""  # completionTime, or when the Failed condition was set

    @property
    def finished(self) -> bool:
        return self.complete or self.failed_terminal

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> JobView:
        """Read a ``batch/v1`` Job object as the API server returns it."""
        meta = body.get("metadata", {})
        status = body.get("status") or {}
        complete = failed = False
        reason = message = ""
        ended = str(status.get("completionTime") or "")
        for cond in status.get("conditions") or []:
            if cond.get("status") != "True":
                continue
            if cond.get("type") == "Complete":
                complete = True
            elif cond.get("type") == "Failed":
                failed = True
                reason = str(cond.get("reason") or "")
                message = str(cond.get("message") or "")
                ended = ended or str(cond.get("lastTransitionTime") or "")
        labels = meta.get("labels") or {}
        try:
            generation = int(labels.get("kubevod.io/generation", 0))
        except ValueError:
            generation = 0
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
            generation=generation,
            active=int(status.get("active") or 0),
            succeeded=int(status.get("succeeded") or 0),
            failed=int(status.get("failed") or 0),
            complete=complete,
            failed_terminal=failed,
            reason=reason,
            message=message,
            started=str(status.get("startTime") or ""),
            ended=ended,
        )

    def wall_seconds(self) -> float | None:
        """Seconds from the Job's start to its end, when both are known."""
        try:
            start = datetime.fromisoformat(self.started.replace("Z", "+00:00"))
            end = datetime.fromisoformat(self.ended.replace("Z", "+00:00"))
        except ValueError:
            return None
        return max(0.0, (end - start).total_seconds())


@dataclass(frozen=True)
class PodScheduling:
    """A pod the scheduler could not place: since when, and why (its own words)."""

    pod: str
    since: str  # lastTransitionTime of PodScheduled=False (RFC 3339)
    message: str

    @classmethod
    def from_pod(cls, body: Mapping[str, Any]) -> PodScheduling | None:
        """Read a pod object; None unless its PodScheduled condition is False/Unschedulable."""
        status = body.get("status") or {}
        for cond in status.get("conditions") or []:
            if (
                cond.get("type") == "PodScheduled"
                and cond.get("status") == "False"
                and cond.get("reason") == "Unschedulable"
            ):
                return cls(
                    pod=str((body.get("metadata") or {}).get("name", "")),
                    since=str(cond.get("lastTransitionTime") or ""),
                    message=str(cond.get("message") or "no node fits the pod"),
                )
        return None

    def seconds(self, now: str) -> float:
        """How long it has been unschedulable at ``now`` (0 when the time is unknown)."""
        try:
            since = datetime.fromisoformat(self.since.replace("Z", "+00:00"))
            at = datetime.fromisoformat(now.replace("Z", "+00:00"))
        except ValueError:
            return 0.0
        return max(0.0, (at - since).total_seconds())


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the VideoAsset."""

    type: str  # "Normal" or "Warning"
    reason: str
    message: str


def _condition(type_: str, ok: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "type": type_,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def _stamp(conditions: list[dict[str, Any]], old: Sequence[Any], now: str) -> list[dict[str, Any]]:
    """Keep ``lastTransitionTime`` of conditions whose status did not change."""
    before = {c.get("type"): c for c in old if isinstance(c, Mapping)}
    for cond in conditions:
        prev = before.get(cond["type"])
        same = prev is not None and prev.get("status") == cond["status"]
        cond["lastTransitionTime"] = (
            prev.get("lastTransitionTime", now) if same and prev is not None else now
        )
    return conditions


def playback(video: Video, public_url: str) -> dict[str, str]:
    """Viewer URLs: HLS and DASH from the API, the poster straight from the media tier."""
    urls = {
        "hls": f"{public_url}/v/{video.id}/master.m3u8",
        "dash": f"{public_url}/v/{video.id}/manifest.mpd",
    }
    if video.poster_key:
        urls["poster"] = f"{public_url}/media/{video.poster_key.removeprefix('videos/')}"
    return urls


def _media_fields(video: Video | None, public_url: str) -> dict[str, Any]:
    if video is None:
        return {}
    fields: dict[str, Any] = {
        "progress": round(max(0.0, min(100.0, video.progress)), 1),
        "playable": video.playable,
    }
    if video.duration:
        fields["duration"] = round(video.duration, 2)
    if video.plan is not None:
        total = len(video.plan.chunks())
        fields["chunks"] = {"done": min(total, len(set(video.chunks_done))), "total": total}
    if video.renditions:
        fields["renditions"] = [
            {
                "name": r.name,
                "kind": r.kind.value,
                **({"width": r.width, "height": r.height} if r.kind == TrackKind.VIDEO else {}),
                "bandwidth": r.bandwidth,
                "codecs": r.codecs,
            }
            for r in video.renditions
        ]
    info = video.source_info.model_dump(exclude_none=True, exclude_defaults=True)
    if info:
        fields["source"] = {
            k: v
            for k, v in info.items()
            if k in ("codec", "width", "height", "fps", "bitrate", "size")
        }
    if video.accelerator:
        fields["accelerator"] = video.accelerator
    if video.playable:
        fields["playback"] = playback(video, public_url)
    return fields


def _base(asset: Asset, phase: Phase, message: str, old: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "phase": phase.value,
        "message": message,
        "observedGeneration": asset.generation,
        "specHash": asset.spec.fingerprint(),
        "videoId": asset.video_id,
        "attempts": int(old.get("attempts") or 0),
    }


def queued(
    asset: Asset, old: Mapping[str, Any], *, ahead: int, running: int, limit: int, now: str
) -> dict[str, Any]:
    """Waiting for a transcode slot."""
    message = f"waiting for a transcode slot ({running}/{limit} running, {ahead} ahead)"
    status = _base(asset, Phase.QUEUED, message, old)
    status.update(progress=0.0, playable=False)
    status["conditions"] = _stamp(
        [_condition("Ready", False, "Queued", message, asset.generation)],
        old.get("conditions") or [],
        now,
    )
    return status


def invalid(
    asset: Asset, old: Mapping[str, Any], message: str, *, now: str, reason: str = "InvalidSpec"
) -> dict[str, Any]:
    """The generation cannot (or can no longer) run: Failed with ``reason`` and ``message``.

    ``reason`` is the row of ``errors.OUTCOMES`` (InvalidSpec, OverLimit,
    Rejected, Unschedulable); ``jobName`` is kept when a Job was made.
    """
    status = _base(asset, Phase.FAILED, message, old)
    if old.get("jobName") and reason == "Unschedulable":
        status["jobName"] = old["jobName"]
    status["conditions"] = _stamp(
        [_condition("Ready", False, reason, message, asset.generation)],
        old.get("conditions") or [],
        now,
    )
    return status


def from_job(
    asset: Asset,
    old: Mapping[str, Any],
    job: JobView,
    video: Video | None,
    *,
    public_url: str,
    now: str,
) -> dict[str, Any]:
    """Mirror a Job (and the catalog entry the worker keeps up to date) into status.

    Args:
        asset: the VideoAsset.
        old: its current status.
        job: the Job of the current generation.
        video: the catalog entry, or None when the catalog has none (yet).
        public_url: base of the playback URLs.
        now: RFC 3339 time for new condition transitions.

    Returns:
        The whole new status.
    """
    gen = asset.generation
    media = _media_fields(video, public_url)
    conditions: list[dict[str, Any]] = []
    if job.complete and video is not None and video.state == VideoState.READY:
        phase, message = Phase.READY, f"transcoded: {len(video.renditions)} renditions"
        if video.complete:
            media["progress"] = 100.0
        else:  # on demand: the other chunks when watched; progress is the share encoded
            chunks = media["chunks"]
            message = (
                f"ready on demand: {chunks['done']} of {chunks['total']} chunks encoded, "
                "the others when watched"
            )
        conditions.append(_condition("Ready", True, "Transcoded", message, gen))
    elif job.finished:
        phase = Phase.FAILED
        if job.complete:
            reason, message = (
                "IncompleteResult",
                "the Job completed but the catalog entry is not ready",
            )
        else:
            reason = _JOB_REASONS.get(job.reason, job.reason or "JobFailed")
            detail = video.message if video is not None and video.message else job.message
            message = detail or "the transcode Job failed"
        conditions.append(_condition("Ready", False, reason, message, gen))
    else:
        phase = Phase.TRANSCODING
        pct = media.get("progress", 0.0)
        message = f"transcoding in Job {job.name}: {pct:.0f}%"
        if "chunks" in media:
            message += f" ({media['chunks']['done']} of {media['chunks']['total']} chunks)"
        conditions.append(_condition("Ready", False, "Transcoding", message, gen))
    playable = bool(media.get("playable")) and phase != Phase.FAILED
    conditions.append(
        _condition(
            "Playable",
            playable,
            "SegmentsAvailable" if playable else "NoSegmentsYet",
            "every rendition has segments" if playable else "no complete set of segments yet",
            gen,
        )
    )
    if video is not None and video.accelerator and asset.spec.accelerator != "none":
        hardware = video.accelerator not in ("software", "none")
        conditions.append(
            _condition(
                "HardwareAccelerated",
                hardware,
                "Accelerated" if hardware else "SoftwareFallback",
                f"encoded with {video.accelerator}",
                gen,
            )
        )
    status = _base(asset, phase, message, old)
    status.update(media)
    status["playable"] = playable
    status["jobName"] = job.name
    # Pods started, as a retry count: a spread Job's pods running side by side are one.
    started = job.failed + (1 if job.active or job.succeeded else 0)
    status["attempts"] = max(int(old.get("attempts") or 0), started)
    status["conditions"] = _stamp(conditions, old.get("conditions") or [], now)
    return status


def on_demand_progress(old: Mapping[str, Any], video: Video, *, public_url: str) -> dict[str, Any]:
    """A Ready on-demand video's status while the chunk workers encode its other chunks:
    chunks and progress from the catalog; complete, it reads as any transcoded video."""
    status = dict(old)
    status.update(_media_fields(video, public_url))
    if video.complete:
        status["progress"] = 100.0
        status["message"] = f"transcoded: {len(video.renditions)} renditions"
    else:
        chunks = status["chunks"]
        status["message"] = (
            f"ready on demand: {chunks['done']} of {chunks['total']} chunks encoded, "
            "the others when watched"
        )
    return status


def vanished_job(asset: Asset, job_name: str, video: Video | None) -> JobView:
    """What became of a Job that no longer exists, told by the catalog entry.

    Its TTL expired after it finished (the catalog says ready or failed), or
    someone deleted it while it ran (reported as failed, reason ``JobLost``).
    """
    ns, gen = asset.namespace, asset.generation
    if video is not None and video.generation == gen:
        if video.state == VideoState.READY:
            return JobView(ns, job_name, generation=gen, complete=True, succeeded=1)
        if video.state == VideoState.FAILED:
            return JobView(ns, job_name, generation=gen, failed_terminal=True, reason="JobFailed")
    message = f"Job {job_name} disappeared before it finished"
    return JobView(
        ns, job_name, generation=gen, failed_terminal=True, reason="JobLost", message=message
    )


def transitions(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Event]:
    """The Events a change from ``old`` to ``new`` status deserves (one per transition)."""
    events: list[Event] = []
    phase, before = new.get("phase"), old.get("phase")
    generation_changed = old.get("observedGeneration") != new.get("observedGeneration")
    if phase != before or (generation_changed and phase is not None):
        message = str(new.get("message", ""))
        if phase == Phase.FAILED:
            reason = _ready_reason(new) or "Failed"
            events.append(Event("Warning", reason, message))
        elif phase is not None:
            events.append(Event("Normal", str(phase), message))
    if new.get("playable") and not old.get("playable"):
        url = (new.get("playback") or {}).get("hls", "")
        events.append(Event("Normal", "Playable", f"playable at {url}".strip()))
    return events


def _ready_reason(status: Mapping[str, Any]) -> str | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("reason"))
    return None
