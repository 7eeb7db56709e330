"""The transcode of one job, end to end: the only place that orchestrates (docs/architecture.md §2).

fetch → probe → plan ladder → pick encoder → ONE ffmpeg (segments uploaded and
recorded while it runs; ``playable`` as soon as every rendition has its first
segment) → poster, trickplay, subtitles → final metadata, state ``ready``.

Every catalog write goes through the run's ``kubevod.lifecycle.Attempt``,
fenced by its generation and attempt: a run the video has moved past (a newer
attempt or generation, or a delete) is refused at its next write, stops
ffmpeg, deletes what it uploaded and writes nothing more (``Superseded``).
Failures leave nothing half-done: the video is ``failed`` with a one-line
reason, its segments are forgotten and its objects deleted (the ffmpeg log is
kept under ``logs/``, outside the public prefix), and a cancelled run stops
ffmpeg and says so. Every attempt writes under keys of its own
(``kubevod.keys``): running the same job again never rewrites a key a cache
already holds; the older attempts' media go once the new one is ready.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from kubevod.worker import hwaccel, outputs, passthrough, policy, thumbs
from kubevod.worker.chunks import ChunkMover, chunk_passes, gather_chunk_thumbs, gather_thumbs
from kubevod.worker.encoders import CODECS
from kubevod.worker.errors import Cancelled, TranscodeFailed, one_line
from kubevod.worker.fetch import open_source
from kubevod.worker.ffmpeg import (
    ACCELERATORS,
    PIECES_DIR_SUFFIX,
    POSTER_FILE,
    AudioOut,
    EncodePlan,
    TrickplayOut,
    audio_argv,
    chunk_argv,
    chunk_span,
    tile_argv,
    transcode_argv,
)
from kubevod.worker.ladder import Rung, output_fps, plan_ladder
from kubevod.worker.mp4 import parse_init
from kubevod.worker.observe import stage
from kubevod.worker.probe import SourceInfo, keyframes, probe
from kubevod.worker.process import FfmpegProcess, available_cpus, ffmpeg_env
from kubevod.worker.progress import ProgressUpdate
from kubevod.worker.settings import WorkerSettings
from kubevod.worker.tracker import ENCODE_SHARE, ProgressTracker
from kubevod.worker.upload import SegmentUploader, Track

from kubevod import keys
from kubevod.catalog.base import Catalog
from kubevod.errors import NotFound, SourceError, Superseded
from kubevod.jobs import TranscodeJob
from kubevod.lifecycle import Attempt, Lifecycle
from kubevod.logs import ContextLogger, get_logger
from kubevod.metrics import worker_metrics
from kubevod.models import MediaPlan, Rendition, TrackKind, TranscodePolicy, Video, VideoState
from kubevod.store.base import ObjectStore
from kubevod.telemetry import add_event, set_attributes, span
from kubevod.timeline import Chunk, Timeline, plan_chunks, spread

#: ffmpeg log lines that mean the source (not the machine) is at fault.
_SOURCE_FAULT = re.compile(
    r"invalid data found|moov atom not found|could not find codec|no decoder|"
    r"does not contain any stream|error while decoding|partial file|premature|corrupt|"
    r"unsupported codec",
    re.I,
)
_DECODE_ERROR = re.compile(
    r"error while decoding|concealing|corrupt|invalid nal|decode_slice", re.I
)


def run(
    job: TranscodeJob,
    *,
    store: ObjectStore,
    catalog: Catalog,
    scratch: Path | None = None,
    cancel: threading.Event | None = None,
    on_progress: Callable[[float], None] | None = None,
    settings: WorkerSettings | None = None,
    demand: Callable[[], int | None] | None = None,
    preempt: Callable[[], bool] | None = None,
    pod: int = 0,
) -> Video:
    """Transcode ``job`` into the store and the catalog.

    A job with ``chunks`` encodes more chunks of an on-demand video: it joins the
    attempt its registration made (``Lifecycle.resume``), encodes those chunks,
    then asks ``demand`` for the next one until it answers None, and completes
    the video once every chunk is encoded. Such a job never fails the video for
    a reason that may pass (a viewer asks again), only for the source's fault.

    Args:
        job: what to transcode.
        store: where media go (under ``Video.media_prefix()``).
        catalog: where the video, its renditions and segments are recorded.
        scratch: working folder (created; a temp dir when None).
        cancel: set it to stop; ffmpeg is terminated and Cancelled raised.
        on_progress: called with percent 0..100 as the encode advances.
        settings: worker settings (from the environment when None).
        demand: for a job with ``chunks``: the next chunk viewers want, None when
            none is waiting.
        preempt: True when a viewer sought elsewhere. A job with ``chunks``: the chunk
            being encoded stops (what it uploaded stays) and ``demand`` is asked. An
            on-demand registration: its first chunk stops once the video is watchable
            (its first segments are up) and is encoded later, like any other.
        pod: this pod's index in a job spread over ``job.pods`` pods: the first
            registers the plan and chunk 0, the others wait for that and join it,
            then each encodes its share of the chunks; whoever records the last
            one completes the video.

    Returns:
        The video, ``ready`` (on demand: possibly with chunks still to encode).

    Raises:
        Superseded: the video is not in the catalog (deleted, never registered) or
            has moved past this run; nothing of the run is left.
        SourceError: the source is unusable (the video is marked failed).
        Cancelled: ``cancel`` was set.
        TranscodeFailed, Unavailable: a failure that may pass on retry.
    """
    settings = settings or WorkerSettings()
    cancel = cancel or threading.Event()
    log = get_logger(__name__, video_id=job.video_id)
    with span("worker.transcode", video_id=job.video_id, generation=job.generation, pod=pod):
        lifecycle = Lifecycle(catalog, store)
        while True:
            try:
                claim = _claim(lifecycle, job, pod, cancel, settings.spread_join_poll_seconds)
            except Superseded as exc:
                log.warning("not transcoding: %s", exc)
                raise
            if isinstance(claim, Video):
                log.info("nothing for pod %d of %d: the video is %s", pod, job.pods, claim.state)
                return claim
            attempt, claimed = claim
            base = scratch or settings.scratch_dir
            work = Path(
                tempfile.mkdtemp(prefix=f"kubevod-{job.video_id}-", dir=base and _mkdir(base))
            )
            transcode = _Transcode(
                claimed, attempt, store, work, cancel, on_progress, settings, log
            )
            transcode.demand, transcode.preempt = demand, preempt
            try:
                return _run(transcode, log)
            except Superseded:
                if pod == 0 or not _same_generation(catalog, job):
                    raise
                log.info("the first pod began the video again: joining its new attempt")
            finally:
                shutil.rmtree(work, ignore_errors=True)


def prepare(settings: WorkerSettings | None = None) -> None:
    """Learn now what every transcode in this process would otherwise find out first:
    the filters this ffmpeg has, and which accelerators work (a trial encode per
    device present). Both are cached for the life of the process, so a long-lived
    process (local mode's server) that calls this at start spares its first video
    that wait."""
    settings = settings or WorkerSettings()
    hwaccel.scaler(settings.ffmpeg)
    hwaccel.choose("auto", ffmpeg=settings.ffmpeg, timeout=settings.hwaccel_trial_timeout)


def _claim(
    lifecycle: Lifecycle, job: TranscodeJob, pod: int, cancel: threading.Event, poll: float
) -> tuple[Attempt, TranscodeJob] | Video:
    """The attempt this run works under and what it does there, or the video when a pod
    of a spread transcode finds nothing left for it; a pod other than the first waits
    for the first one's plan and chunk 0 (``Lifecycle.join``)."""
    if job.chunks is not None:
        return lifecycle.resume(job), job
    if job.pods <= 1:
        return lifecycle.begin(job), job
    while True:
        joined = lifecycle.join(job, registrar=pod == 0)
        if isinstance(joined, tuple):
            attempt, total = joined
            return attempt, job.model_copy(update={"chunks": spread(total, job.pods, pod)})
        if isinstance(joined, Video):
            return joined
        if pod == 0:
            return lifecycle.begin(job), job
        if cancel.wait(poll):
            raise Cancelled("cancelled while waiting for the first pod")


def _same_generation(catalog: Catalog, job: TranscodeJob) -> bool:
    try:
        return catalog.get(job.video_id).generation == job.generation
    except NotFound:
        return False


def _run(transcode: _Transcode, log: ContextLogger) -> Video:
    """One attempt's run, and what its end leaves: a chunk job (``job.chunks``, at the
    end) drops only the chunk it was in, since the others are the video's."""
    try:
        return transcode.run()
    except Superseded as exc:
        log.warning("transcode stopped: %s", exc)
        if transcode.job.chunks is not None:
            transcode.drop_current_chunk()  # the published chunks are not ours to drop
        else:
            transcode.attempt.abandon()
        raise
    except Cancelled:
        if transcode.job.chunks is not None:
            transcode.drop_current_chunk()
        else:
            transcode.end("transcode cancelled")
        raise
    except SourceError as exc:
        transcode.end(one_line(str(exc)))
        raise
    except Exception as exc:
        if transcode.job.chunks is None:
            transcode.end(one_line(f"transcode failed: {exc}"))
        raise


def _media_plan(
    job: TranscodeJob, plan: EncodePlan, info: SourceInfo, every: float, first: float
) -> MediaPlan:
    """The recorded segment and chunk plan of ``plan``: chunks of at least ``every`` s, the
    first of at least ``first`` s, and the encode of ``job`` that later chunks repeat."""
    ladder = job.ladder if isinstance(job.ladder, str) else [r.model_dump() for r in job.ladder]
    return MediaPlan(
        first=plan.first_segment, every=plan.segment_seconds, fps=plan.rungs[0].fps,
        duration=info.duration, chunk_seconds=every, first_chunk_seconds=first,
        rungs=[r.name for r in plan.rungs], offset=round(info.video_offset, 6),
        ladder=ladder, codec=job.codec, accelerator=job.accelerator,
    )  # fmt: skip


#: ffprobe's names of containers whose input seek searches for a timestamp with no
#: index of keyframes to land on. ffmpeg can land past the keyframe before the seek
#: point, and a chunk that starts there decodes nothing (an MPEG-TS recording with
#: keyframes 8.3 s apart, tests/integration/test_chunks.py). One ffmpeg, which never
#: seeks, encodes their videos.
UNINDEXED_FORMATS = frozenset({"mpegts", "mpeg", "h264", "hevc"})


def _why_not_chunks(plan: EncodePlan, info: SourceInfo) -> str | None:
    """Why ``plan`` cannot be encoded in chunks, or None: chunks need a known frame rate,
    keyframes forced (not GOP pieces) and exact seeks into the source; a passed-through
    top rung (``copy_top``) is checked apart."""
    if plan.rungs[0].fps <= 0:
        return "the frame rate is unknown"
    if plan.video_pieces:
        return "its video is cut on keyframes of its own (GOP pieces), not on chunk boundaries"
    unindexed = UNINDEXED_FORMATS.intersection(info.format_name.split(","))
    if unindexed:
        return f"seeks into {min(unindexed)} files do not land on keyframes"
    return None


class _Preempted(Exception):
    """A viewer sought elsewhere: the chunk being encoded stops for the one sought to."""

    proc: FfmpegProcess | None = None  # the chunk's ffmpeg, stopped


def _no_progress(_percent: float, _speed: float | None) -> None:
    """An on-demand chunk's progress is its chunk count (``Attempt.chunk_done``)."""


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _audio_outs(
    info: SourceInfo, settings: WorkerSettings, *, copy: bool = False
) -> tuple[AudioOut, ...]:
    """Audio tracks: the default one first (rendition ``audio``), then the others; with
    ``copy`` (a passed-through top rung), AAC-LC tracks as they are."""
    ordered = sorted(info.audio, key=lambda a: (not a.default, a.index))[
        : settings.max_audio_tracks
    ]
    return tuple(
        AudioOut(
            "audio" if n == 0 else f"audio-{n + 1}",
            a.index,
            settings.audio_bitrate,
            copy=copy and passthrough.audio_copies(a),
        )
        for n, a in enumerate(ordered)
    )


@dataclass(frozen=True)
class Passthrough:
    """The run's passthrough decision: the timeline on the source's keyframes, or None."""

    timeline: Timeline | None
    reason: str


class _Transcode:
    """State of one run (a class only to keep the steps short and named)."""

    def __init__(
        self,
        job: TranscodeJob,
        attempt: Attempt,
        store: ObjectStore,
        work: Path,
        cancel: threading.Event,
        on_progress: Callable[[float], None] | None,
        settings: WorkerSettings,
        log: ContextLogger,
    ) -> None:
        self.job, self.attempt, self.store = job, attempt, store
        self.work, self.cancel, self.on_progress, self.settings, self.log = (
            work, cancel, on_progress, settings, log,
        )  # fmt: skip
        self._started = time.monotonic()
        self._tracker: ProgressTracker | None = None
        self._accelerator = "none"  # set before each encode starts
        self._fps = 0.0  # the source's average frame rate
        self._evented = -1.0  # percent of the last progress event on worker.encode
        self._languages: dict[int, str | None] = {}
        self._log_tail = ""
        self._passthrough = Passthrough(None, "passthrough not decided")
        #: The on-demand plan (None: a whole transcode, chunked or not).
        self.media_plan: MediaPlan | None = None
        #: A chunk job's source of the next chunk viewers want (``run``'s ``demand``).
        self.demand: Callable[[], int | None] | None = None
        self.preempt: Callable[[], bool] | None = None
        self._current_chunk: Chunk | None = None
        self._rung_names: list[str] = []
        #: An on-demand registration's first chunk was stopped for a seek once watchable.
        self.first_chunk_stopped = False
        #: Seek-bar thumbnails of a video whose chunks are encoded apart, per chunk.
        self._trickplay: TrickplayOut | None = None

    # -- steps -----------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        return self.attempt.prefix

    def run(self) -> Video:
        if self.job.codec not in CODECS:  # never a silent H.264 instead
            raise SourceError(f"codec {self.job.codec} is not supported by this worker")
        self._check_cancel()
        with stage("fetch"):
            source = open_source(
                self.job.source, self.work, store=self.store,
                policy=self.settings.fetch_policy(), limits=self.settings.fetch_limits(),
                s3_buckets=tuple(self.settings.s3_source_buckets),
            ).path  # fmt: skip
        with stage("probe"):
            info = probe(source, ffprobe=self.settings.ffprobe)
            policy.check_source(info, self.settings.source_limits())
        self._languages = {a.index: a.language for a in info.audio}
        self._check_cancel()
        codec = self.job.codec
        rungs = plan_ladder(
            info.video.display_width, info.video.display_height, info.video.fps, self.job.ladder,
            codec=codec,
        )  # fmt: skip
        choice = hwaccel.choose(
            self.job.accelerator,
            ffmpeg=self.settings.ffmpeg,
            timeout=self.settings.hwaccel_trial_timeout,
            codec=codec,
        )
        if self.job.chunks is not None:
            return self._encode_demanded(source, info, rungs)
        on_demand = self.job.policy == TranscodePolicy.ON_DEMAND
        spread = self.job.pods > 1 and not on_demand
        if on_demand:
            # Chunks need every rung encoded with forced keyframes.
            self._passthrough = Passthrough(None, "top rung encoded: on demand")
        else:
            self._passthrough = self._decide_passthrough(source, info, rungs)
        self.attempt.record_probe(
            duration=info.duration, source_info=info.summary(),
            accelerator=choice.accelerator,
            message=f"transcoding {codec}; {choice.reason}; {self._passthrough.reason}",
            longest_segment=(
                self._passthrough.timeline.longest(info.duration)
                if self._passthrough.timeline
                else None
            ),
        )  # fmt: skip
        set_attributes(accelerator=choice.accelerator, rungs=len(rungs), duration=info.duration)
        self.log.info("encoding %d rungs with %s", len(rungs), choice.reason)
        plan = self._plan(source, info, rungs, choice.accelerator)
        no_chunks = _why_not_chunks(plan, info)
        if on_demand:
            if no_chunks is None:
                return self._register_on_demand(source, info, plan)
            self.log.info("on demand needs chunks (%s): encoding it all", no_chunks)
        elif spread and no_chunks is None and not plan.copy_top:
            return self._register_spread(source, info, plan, rungs)
        elif spread:
            self.log.info("one pod encodes it all: %s", no_chunks or "the top rung is copied")
        try:
            uploader, proc = self._encode_any(plan, info)
        except (TranscodeFailed, SourceError) as exc:
            if plan.accelerator == "software":
                raise
            # A device that passed the one-frame trial can still fail on the real thing.
            self.log.warning("%s failed (%s); encoding again in software", plan.accelerator, exc)
            shutil.rmtree(self.work / "out", ignore_errors=True)
            shutil.rmtree(self.work / "chunks", ignore_errors=True)
            plan = self._plan(source, info, rungs, "software")
            self.attempt = self.attempt.retry("software")
            uploader, proc = self._encode_any(plan, info)
        return self._finish(source, info, plan, uploader, proc)

    def _encode_any(
        self, plan: EncodePlan, info: SourceInfo
    ) -> tuple[SegmentUploader, FfmpegProcess]:
        """In chunks when the settings ask and the plan allows; else one ffmpeg."""
        if self.settings.chunk_seconds > 0 and _why_not_chunks(plan, info) is None:
            return self._encode_chunked(plan, info, plan.rungs[0].fps)
        return self._encode(plan, info)

    def _register_on_demand(self, source: Path, info: SourceInfo, plan: EncodePlan) -> Video:
        """Plan, poster, audio and the first chunk now; the other chunks when watched.

        The audio is the source's own where it is AAC-LC (copied: a moment for a whole
        film, where encoding takes a core for minutes), else encoded whole.
        """
        every = min(plan.segment_seconds, self.settings.on_demand_segment_seconds)
        plan = replace(plan, segment_seconds=every, audio=self._registration_audio(info))
        fps = plan.rungs[0].fps
        media_plan = _media_plan(
            self.job, plan, info, self.settings.on_demand_chunk_seconds,
            self.settings.on_demand_first_chunk_seconds,
        )  # fmt: skip
        self.media_plan = media_plan
        self.attempt.record_plan(media_plan, TranscodePolicy.ON_DEMAND)
        self._put_up_poster(source, info)
        total = len(media_plan.chunks())
        if total == 1:
            uploader, proc = self._encode_chunked(plan, info, fps)
            return self._finish(source, info, plan, uploader, proc)
        self._trickplay = plan.trickplay  # each chunk tiles its own thumbnails
        plan = replace(plan, poster=None)
        uploader, _ = self._encode_chunked(plan, info, fps, only=0)
        subtitles = outputs.upload_subtitles(
            self.store, self.prefix, source, info, self.work, self.settings.ffmpeg
        )
        # A seek elsewhere stops the first chunk once it is watchable: encoded later.
        done = [] if self.first_chunk_stopped else [0]
        video = self.attempt.mark_partial(
            message=f"ready on demand: {len(done)} of {total} chunks encoded, the others "
            "when watched",
            renditions=self._renditions(plan, uploader, final=False), chunks_done=done,
            total=total, subtitles=subtitles,
            speed=self._tracker.speed if self._tracker else None,
        )  # fmt: skip
        self.log.info("ready on demand: %d of %d chunks", len(done), total)
        return video

    def _register_spread(
        self, source: Path, info: SourceInfo, plan: EncodePlan, rungs: list[Rung]
    ) -> Video:
        """The first pod of a spread transcode: the plan, poster, audio and chunk 0, which
        make the video playable and let the other pods join; then this pod's share.

        The audio is the source's own where it is AAC-LC, as for an on-demand
        registration: the other pods wait for it, and encoding a film's audio takes a
        core for minutes. The state stays ``transcoding`` until the last chunk is
        recorded, by whichever pod that is; progress is the share of chunks recorded.
        """
        fps = plan.rungs[0].fps
        media_plan = _media_plan(
            self.job, plan, info, self.settings.spread_chunk_seconds,
            self.settings.spread_first_chunk_seconds,
        )  # fmt: skip
        total = len(media_plan.chunks())
        if total == 1:
            self.log.info("one chunk: this pod encodes it all")
            uploader, proc = self._encode_any(plan, info)
            return self._finish(source, info, plan, uploader, proc)
        self.media_plan = media_plan
        self.attempt.record_plan(media_plan, TranscodePolicy.EAGER)
        self._put_up_poster(source, info)
        self._trickplay = plan.trickplay  # each chunk tiles its own thumbnails
        first = replace(plan, poster=None, audio=self._registration_audio(info))
        self._encode_chunked(first, info, fps, only=0)
        self.attempt.set_subtitles(
            outputs.upload_subtitles(
                self.store, self.prefix, source, info, self.work, self.settings.ffmpeg
            )
        )
        video = self.attempt.chunk_done(0, total)
        self.log.info("chunk 0 of %d encoded: the other pods join", total)
        if len(set(video.chunks_done)) >= total:  # the other pods were faster
            return self._complete_chunks(video)
        self.job = self.job.model_copy(update={"chunks": spread(total, self.job.pods, 0)})
        self._tracker = None  # from here on, progress is the share of chunks recorded
        shutil.rmtree(self.work / "out", ignore_errors=True)
        shutil.rmtree(self.work / "chunks", ignore_errors=True)
        return self._encode_demanded(source, info, rungs)

    def _registration_audio(self, info: SourceInfo) -> tuple[AudioOut, ...]:
        """The audio a registration records before anything can wait on it: AAC-LC tracks
        copied (a moment for a whole film; encoding takes minutes of a core), the others
        encoded whole; all encoded where passthrough is ``never``."""
        copy = "never" not in (self.settings.passthrough, self.job.passthrough)
        return _audio_outs(info, self.settings, copy=copy)

    def _put_up_poster(self, source: Path, info: SourceInfo) -> None:
        """The poster, recorded before any chunk: a planned video is listed with it."""
        with stage("thumbnails"):
            poster = outputs.upload_poster(
                self.store, self.prefix, source, info, self.work, self.settings.ffmpeg
            )
        if poster is not None:
            self.attempt.set_poster(poster)

    def _encode_demanded(self, source: Path, info: SourceInfo, rungs: list[Rung]) -> Video:
        """Encode the chunks viewers want, under the registration's attempt and plan."""
        try:
            video = self.attempt.lifecycle.catalog.get(self.job.video_id)
        except NotFound:
            raise Superseded(f"video {self.job.video_id} is gone: no chunk to encode") from None
        if video.plan is None:
            raise Superseded(f"video {self.job.video_id} has no on-demand plan")
        self.media_plan = video.plan
        self._passthrough = Passthrough(None, "top rung encoded: on demand")
        accel = (
            video.accelerator if video.accelerator in {"software", *ACCELERATORS} else "software"
        )
        full = self._plan(source, info, rungs, accel)
        self._trickplay = full.trickplay  # each chunk tiles its own thumbnails
        plan = replace(
            full, trickplay=None, poster=None, audio=(),
            segment_seconds=video.plan.every, first_segment_seconds=video.plan.first,
        )  # fmt: skip
        fps = plan.rungs[0].fps
        if abs(fps - video.plan.fps) > 1e-6 or [r.name for r in plan.rungs] != [
            r.name for r in video.renditions if r.kind == TrackKind.VIDEO
        ]:
            raise SourceError("the source changed since it was registered: add it again")
        self._rung_names = [r.name for r in plan.rungs]
        chunks, timeline = video.plan.chunks(), video.plan.timeline()
        total, done = len(chunks), set(video.chunks_done)
        out = _mkdir(self.work / "out")
        self._begin_tracker(info, writes=False)
        wanted = list(self.job.chunks or [])
        on_demand = video.policy == TranscodePolicy.ON_DEMAND
        with stage("encode", accelerator=plan.accelerator, chunks=len(wanted)):
            while True:
                index = wanted.pop(0) if wanted else (self.demand() if self.demand else None)
                if index is None:
                    return self._complete_if_encoded(video)
                if index in done or not 0 <= index < total:
                    continue
                chunk = self._current_chunk = chunks[index]
                # Only an on-demand chunk can be stopped between its runs (a seek).
                missing = self._missing_rungs(plan.rungs, chunk) if on_demand else plan.rungs
                tracks = [self._seeded_track(out, rung.name, chunk.first) for rung in missing]
                uploader = SegmentUploader(
                    store=self.store, record=self.attempt.add_segment,
                    video_id=self.job.video_id, prefix=self.prefix, tracks=tracks,
                    timeline=timeline,
                )  # fmt: skip
                # A viewer waits for an on-demand chunk with nothing before it encoded.
                sought = on_demand and index > 0 and index - 1 not in done
                try:
                    for n, part in enumerate(chunk_passes(missing, sought=sought)):
                        skip = frozenset(r.name for r in plan.rungs if r not in part)
                        trickplay = self._trickplay if n == 0 else None  # the first run's
                        _, _, made = self._encode_chunk(
                            replace(plan, skip=skip, trickplay=trickplay), info, fps, timeline,
                            chunk, uploader, out, playable=True,
                        )  # fmt: skip
                        if trickplay is not None:
                            self._put_up_chunk_sheets(chunk, made)
                except _Preempted:
                    self.log.info("chunk %d stopped: a viewer sought elsewhere", index)
                    self._current_chunk = None  # what it uploaded is valid and stays
                    shutil.rmtree(self.work / "chunks" / str(index), ignore_errors=True)
                    for rung in plan.rungs:  # its next run writes these files afresh
                        for seq in range(chunk.first, chunk.last + 1):
                            (out / rung.name / f"{seq}.m4s").unlink(missing_ok=True)
                    continue
                uploader.poll(finished=True)
                video = self.attempt.chunk_done(index, total)
                self._current_chunk = None
                done = set(video.chunks_done)
                self.log.info("chunk %d encoded (%d of %d)", index, len(done), total)
                if len(done) >= total:
                    return self._complete_chunks(video)

    def _missing_rungs(self, rungs: Sequence[Rung], chunk: Chunk) -> tuple[Rung, ...]:
        """The rungs of ``chunk`` still to encode: a chunk stopped for a seek after its
        lowest rung (``chunk_passes``) keeps what it recorded, and only the rest is encoded
        when it comes back."""
        wanted = set(range(chunk.first, chunk.last + 1))
        return tuple(r for r in rungs if not wanted <= self._recorded(self.job.video_id, r.name))

    def _recorded(self, video_id: str, rendition: str) -> set[int]:
        """The segments of ``rendition`` this attempt has recorded (their numbers)."""
        catalog, mine = self.attempt.lifecycle.catalog, self.prefix + "/"
        return {s.seq for s in catalog.segments(video_id, rendition) if s.key.startswith(mine)}

    def _seeded_track(self, out: Path, rendition: str, first: int) -> Track:
        """A rung's track for one more chunk: the published init segment is put where the
        chunk's mover compares its own with it (an encoder that changed is refused)."""
        folder = _mkdir(out / rendition)
        init = folder / "init.mp4"
        if not init.is_file():
            init.write_bytes(self.store.get(keys.init_key(self.prefix, rendition)))
        return Track(rendition, folder, init=parse_init(init.read_bytes()), next_file=first)

    def _complete_if_encoded(self, video: Video) -> Video:
        """A spread pod's last look: when every planned segment of every video rung is
        recorded, the video is complete, whatever its chunk list says.

        The list is a set that pods add to in one step, but a wire-compatible server
        may not keep that promise (FerretDB 1.x runs an update's read and write
        apart), and a lost entry would leave the video transcoding for ever. The
        segment records are one document each: the pod whose chunk was recorded last
        looks after that and sees every segment, so some pod always completes it.
        """
        if video.policy != TranscodePolicy.EAGER or video.plan is None:
            return video
        catalog = self.attempt.lifecycle.catalog
        try:
            latest = catalog.get(video.id)
        except NotFound:
            raise Superseded(f"video {video.id} is gone") from None
        if latest.state != VideoState.TRANSCODING or latest.plan is None:
            return latest
        planned = set(range(len(latest.plan.segments())))
        if not all(planned <= self._recorded(video.id, rung) for rung in latest.plan.rungs):
            return latest
        total = len(latest.plan.chunks())
        return self._complete_chunks(latest.model_copy(update={"chunks_done": list(range(total))}))

    def _complete_chunks(self, video: Video) -> Video:
        """Every chunk is encoded: the renditions' bandwidth from all their segments."""
        catalog = self.attempt.lifecycle.catalog
        renditions = [
            outputs.measured(r, catalog.segments(video.id, r.name)) for r in video.renditions
        ]
        trickplay = video.trickplay
        if trickplay is None and self._trickplay is not None and self.media_plan is not None:
            trickplay = outputs.upload_chunked_trickplay(
                self.store, self.prefix, self._trickplay, self.media_plan.duration,
                self._chunk_thumbs(),
            )  # fmt: skip
        final = self.attempt.mark_ready(
            message=(
                f"ready ({self.job.codec}, on demand: all {len(video.chunks_done)} chunks)"
                if video.policy == TranscodePolicy.ON_DEMAND
                else f"ready ({self.job.codec}, {len(video.chunks_done)} chunks on "
                f"{self.job.pods} pods)"
            ),
            duration=video.duration, renditions=renditions, poster_key=video.poster_key,
            trickplay=trickplay, subtitles=video.subtitles, speed=None,
            chunks_done=video.chunks_done,
        )  # fmt: skip
        self.log.info("on-demand video complete")
        return final

    def drop_current_chunk(self) -> None:
        """A chunk job stopped mid-chunk (superseded, cancelled) deletes what it uploaded of
        that chunk: the chunk is not done, so no player was told it exists beyond the plan,
        and after a delete nothing of the video may stay."""
        chunk = self._current_chunk
        if chunk is not None:
            for seq in range(chunk.first, chunk.last + 1):
                for name in self._rung_names:
                    with contextlib.suppress(Exception):
                        self.store.delete_prefix(keys.segment_key(self.prefix, name, seq))

    def _decide_passthrough(self, source: Path, info: SourceInfo, rungs: list[Rung]) -> Passthrough:
        """Whether the top rung is the source's own video (and on which timeline)."""
        if "never" in (self.settings.passthrough, self.job.passthrough):
            return Passthrough(None, "passthrough off")
        verdict = passthrough.video_verdict(info, rungs[0], self.job.codec)
        if not verdict.ok:
            return Passthrough(None, f"top rung encoded: {verdict.reason}")
        with stage("keyframes"):
            found = keyframes(
                source, info.video.index, info.video.start, ffprobe=self.settings.ffprobe
            )
        timeline = Timeline.on_keyframes(
            found, info.duration, first=self.settings.first_segment_seconds,
            every=self.job.segment_seconds, longest=self.settings.passthrough_longest_segment,
        )  # fmt: skip
        if timeline is None:
            longest = self.settings.passthrough_longest_segment
            return Passthrough(
                None, f"top rung encoded: the source's keyframes are more than {longest:g} s apart"
            )
        first = min(timeline.end(0), info.duration)
        if first > self.job.segment_seconds + 1e-6:
            # Playable waits for the first segment of every rung: never longer than a segment.
            return Passthrough(
                None, f"top rung encoded: the source's second keyframe comes at {first:.1f} s"
            )
        return Passthrough(timeline, verdict.reason)

    def _plan(self, source: Path, info: SourceInfo, rungs: list[Rung], accel: str) -> EncodePlan:
        fps = rungs[0].fps
        cuts = self._passthrough.timeline.cuts if self._passthrough.timeline else None
        needs_fps = (
            info.video.variable_fps or abs(output_fps(info.video.fps) - info.video.fps) > 0.01
        )
        return EncodePlan(
            source=str(source.resolve()),
            video_stream=info.video.index,
            rungs=tuple(rungs),
            audio=_audio_outs(info, self.settings, copy=cuts is not None),
            segment_seconds=self.job.segment_seconds,
            first_segment_seconds=self.settings.first_segment_seconds,
            accelerator=accel,  # type: ignore[arg-type]
            codec=self.job.codec,
            x264_preset=self.settings.x264_preset,
            x265_preset=self.settings.x265_preset,
            svtav1_preset=self.settings.svtav1_preset,
            crf=self.settings.crf,
            x264_threads=self.settings.x264_threads,
            cpus=self.settings.cpus or available_cpus(),
            scaler=hwaccel.scaler(self.settings.ffmpeg),
            deinterlace=info.video.interlaced,
            fps=fps if needs_fps else None,
            copy_top=cuts is not None,
            cuts=cuts,
            trickplay=thumbs.plan_trickplay(
                info.duration, info.video.display_width, info.video.display_height
            ),
            poster=thumbs.plan_poster(
                info.duration, info.video.display_width, info.video.display_height
            ),
        )

    def _encode(self, plan: EncodePlan, info: SourceInfo) -> tuple[SegmentUploader, FfmpegProcess]:
        out = _mkdir(self.work / "out")
        tracks = [
            Track(r.name, _mkdir(out / plan.video_dir(r)), pieces=plan.video_pieces)
            for r in plan.rungs
        ]
        tracks += [
            Track(a.name, _mkdir(out / (a.name + PIECES_DIR_SUFFIX)), pieces=True)
            for a in plan.audio
        ]
        _mkdir(out / "trickplay")
        uploader = SegmentUploader(
            store=self.store, record=self.attempt.add_segment, video_id=self.job.video_id,
            prefix=self.prefix, tracks=tracks,
            timeline=Timeline(plan.first_segment, plan.segment_seconds, plan.cuts),
        )  # fmt: skip
        argv = transcode_argv(plan, self.settings.ffmpeg)
        self.log.debug("ffmpeg command: %s", argv)
        video_tracks = tracks[: len(plan.rungs)]
        self._accelerator, self._fps = plan.accelerator, info.video.fps or 0.0
        with stage("encode", accelerator=plan.accelerator):
            tracker = self._begin_tracker(info)
            proc = FfmpegProcess(
                argv, cwd=out, log_path=self.work / "ffmpeg.log", duration=info.duration,
                on_update=tracker.ffmpeg,
            )  # fmt: skip
            try:
                playable = self._watch(plan, info, uploader, proc, argv)
            except BaseException:
                proc.stop(self.settings.kill_grace)  # whatever stops the watch stops ffmpeg
                raise
            self._check_exit(proc, argv)
            uploader.poll(finished=True)
            tracker.media(min(t.end() for t in video_tracks))
            tracker.flush()
            if not uploader.all_started():
                self._keep_log(proc)
                raise SourceError("the source produced no video frames")
            if not playable:
                self._mark_playable(plan, uploader)
        return uploader, proc

    def _check_exit(self, proc: FfmpegProcess, argv: list[str]) -> None:
        """Wait for ``proc``; a failed exit raises SourceError (the source's fault) or
        TranscodeFailed."""
        code = proc.wait()
        if code == 0:
            return
        tail = proc.log_tail()
        self._keep_log(proc)
        last = next((ln for ln in reversed(tail.splitlines()) if ln.strip()), "")
        if _SOURCE_FAULT.search(tail):
            raise SourceError(one_line(f"ffmpeg cannot decode the source: {last}"))
        raise TranscodeFailed(
            one_line(f"ffmpeg exited with status {code}: {last}"), argv=argv, log_tail=tail
        )

    def _encode_chunked(
        self, plan: EncodePlan, info: SourceInfo, fps: float, only: int | None = None
    ) -> tuple[SegmentUploader, FfmpegProcess]:
        """The video rungs chunk by chunk (an ffmpeg each), the audio once, alongside.

        Chunks run front to back here (``only``: just that one, an on-demand
        registration's first); each one's segments are moved onto the video's
        timeline (``kubevod.worker.chunks``) and uploaded as they close, so the video
        is playable after the first chunk's first segment, as with one ffmpeg.
        """
        out = _mkdir(self.work / "out")
        tracks = [Track(r.name, _mkdir(out / r.name)) for r in plan.rungs]
        tracks += [
            Track(a.name, _mkdir(out / (a.name + PIECES_DIR_SUFFIX)), pieces=True)
            for a in plan.audio
        ]
        timeline = Timeline.regular(plan.first_segment, plan.segment_seconds)
        uploader = SegmentUploader(
            store=self.store, record=self.attempt.add_segment, video_id=self.job.video_id,
            prefix=self.prefix, tracks=tracks, timeline=timeline,
        )  # fmt: skip
        chunks = self._chunks(plan, info, fps)
        todo = chunks if only is None else (chunks[only],)
        self.log.info("encoding %d of %d chunks of the video", len(todo), len(chunks))
        video_tracks = tracks[: len(plan.rungs)]
        thumbs_dirs: list[Path] = []
        audio: FfmpegProcess | None = None
        with stage("encode", accelerator=plan.accelerator, chunks=len(todo)):
            tracker = self._begin_tracker(info)
            if plan.audio:
                audio_cmd = audio_argv(plan, self.settings.ffmpeg)
                audio = FfmpegProcess(
                    audio_cmd, cwd=out, log_path=self.work / "audio.log", duration=info.duration
                )
            playable = False
            proc: FfmpegProcess | None = None
            try:
                for chunk in todo:
                    try:
                        proc, playable, thumbs = self._encode_chunk(
                            plan, info, fps, timeline, chunk, uploader, out, playable=playable
                        )  # fmt: skip
                    except _Preempted as stopped:
                        # A viewer sought elsewhere while a registration's first chunk
                        # was on its way: its first segments are up (it is watchable).
                        self.log.info("first chunk stopped after its first segments: a seek")
                        self.first_chunk_stopped, playable = True, True
                        proc = stopped.proc
                        break
                    thumbs_dirs.append(thumbs)
                if audio is not None:
                    self._check_exit(audio, audio.argv)
            except BaseException:
                if audio is not None:
                    audio.stop(self.settings.kill_grace)
                raise
            uploader.poll(finished=True)
            tracker.media(min(t.end() for t in video_tracks))
            tracker.flush()
            if plan.trickplay and only is None:
                self._tile_thumbs(plan, thumbs_dirs, out / "trickplay")
            elif plan.trickplay and thumbs_dirs:  # a registration's first chunk, whole
                self._put_up_chunk_sheets(todo[0], thumbs_dirs[0])
            if not uploader.all_started():
                raise SourceError("the source produced no video frames")
            if not playable:
                self._mark_playable(plan, uploader)
        assert proc is not None
        return uploader, proc

    def _chunks(self, plan: EncodePlan, info: SourceInfo, fps: float) -> tuple[Chunk, ...]:
        if self.media_plan is not None:
            return self.media_plan.chunks()
        timeline = Timeline.regular(plan.first_segment, plan.segment_seconds)
        return plan_chunks(timeline, info.duration, fps, self.settings.chunk_seconds)

    def _begin_tracker(self, info: SourceInfo, *, writes: bool = True) -> ProgressTracker:
        """The run's progress tracker (one per run: a software retry after a failed GPU
        encode never shows less than the GPU attempt had shown)."""
        if self._tracker is None:
            self._tracker = ProgressTracker(
                info.duration, self._write_progress if writes else _no_progress,
                on_rise=self.on_progress, min_interval=self.settings.progress_interval,
            )  # fmt: skip
        self._tracker.begin()
        return self._tracker

    def _encode_chunk(
        self, plan: EncodePlan, info: SourceInfo, fps: float, timeline: Timeline, chunk: Chunk,
        uploader: SegmentUploader, out: Path, *, playable: bool,
    ) -> tuple[FfmpegProcess, bool, Path]:  # fmt: skip
        """One chunk's ffmpeg, its segments moved and uploaded as they close.

        Returns the finished process, whether the video is playable now, and the
        folder of the chunk's trickplay thumbnails.
        """
        assert self._tracker is not None
        tracker = self._tracker
        span = chunk_span(
            chunk, timeline, fps, video_offset=info.video_offset,
            thumb_interval=plan.trickplay.interval if plan.trickplay else None,
        )  # fmt: skip
        folder = _mkdir(self.work / "chunks" / str(chunk.index))
        for rung in plan.written:
            _mkdir(folder / rung.name)
        thumbs = _mkdir(folder / "trickplay")
        argv = chunk_argv(plan, span, self.settings.ffmpeg)
        self.log.debug("chunk %d: %s", chunk.index, argv)
        mover = ChunkMover(span, folder, out, tuple(r.name for r in plan.written))

        def shifted(update: ProgressUpdate) -> None:
            tracker.ffmpeg(replace(update, seconds=update.seconds + span.offset))

        proc = FfmpegProcess(
            argv, cwd=folder, log_path=self.work / f"chunk-{chunk.index}.log",
            duration=span.duration or (info.duration - span.offset), on_update=shifted,
        )  # fmt: skip
        try:
            playable = self._watch(
                plan, info, uploader, proc, argv, before=mover.poll, playable=playable
            )
        except _Preempted as stopped:
            proc.stop(self.settings.kill_grace)
            stopped.proc = proc
            raise
        except BaseException:
            proc.stop(self.settings.kill_grace)
            raise
        self._check_exit(proc, argv)
        mover.poll()
        uploader.poll()
        if not all(mover.moved(r.name) for r in plan.written):
            self._keep_log(proc)
            raise SourceError(
                f"the source has no frames at {span.offset:.1f} s (truncated or damaged)"
            )
        return proc, playable, thumbs

    def _tile_thumbs(self, plan: EncodePlan, folders: list[Path], sheets: Path) -> None:
        """The chunks' thumbnails as sprite sheets in ``sheets`` (as one ffmpeg writes them)."""
        assert plan.trickplay is not None
        thumbs = self.work / "thumbs"
        count = gather_thumbs(folders, thumbs)
        _mkdir(sheets)
        for sheet in self._tile(plan.trickplay, count, thumbs):
            sheet.replace(sheets / sheet.name)

    def _tile(self, trickplay: TrickplayOut, count: int, thumbs: Path) -> list[Path]:
        """Sprite sheets of ``count`` thumbnails ``<thumbs>/0.jpg``.., in order."""
        if count == 0:
            return []
        _mkdir(thumbs / "sheets")
        argv = tile_argv(trickplay, count, str(thumbs), self.settings.ffmpeg)
        done = subprocess.run(argv, capture_output=True, timeout=300, check=False, env=ffmpeg_env())
        if done.returncode != 0:
            self.log.warning("no trickplay sheets: %s", done.stderr.decode(errors="replace")[-300:])
            return []
        return sorted((thumbs / "sheets").glob("*.jpg"), key=lambda p: int(p.stem))

    def _chunk_thumbs(self) -> list[range]:
        """The thumbnails each chunk of the recorded plan owes (``thumbs.chunk_thumbs``)."""
        assert self.media_plan is not None and self._trickplay is not None
        plan = self.media_plan
        return thumbs.chunk_thumbs(
            [plan.offset + c.start_frame / plan.fps for c in plan.chunks()], plan.duration,
            self._trickplay.interval,
        )  # fmt: skip

    def _put_up_chunk_sheets(self, chunk: Chunk, made: Path) -> None:
        """A chunk encoded apart tiles its own thumbnails (``made``: by global index) into
        sheets of its own and uploads them; the last chunk's recorder writes the index."""
        if self._trickplay is None or self.media_plan is None:
            return
        folder = self.work / "sheets" / str(chunk.index)
        shutil.rmtree(folder, ignore_errors=True)
        count = gather_chunk_thumbs(made, self._chunk_thumbs()[chunk.index], folder)
        with stage("thumbnails"):
            outputs.upload_chunk_sheets(
                self.store, self.prefix, chunk.index, self._tile(self._trickplay, count, folder)
            )
        shutil.rmtree(folder, ignore_errors=True)

    def _watch(
        self, plan: EncodePlan, info: SourceInfo, uploader: SegmentUploader,
        proc: FfmpegProcess, argv: list[str], before: Callable[[], object] | None = None,
        playable: bool = False,
    ) -> bool:  # fmt: skip
        """Upload and record segments while ffmpeg runs; stop it on cancel, a stall, the
        time limit or a refused write. Returns whether the video was marked playable
        (``playable``: it was already). ``before`` runs ahead of every look for
        segments (a chunk's mover)."""
        assert self._tracker is not None
        tracker = self._tracker
        names = {r.name for r in plan.written}
        video_tracks = [t for t in uploader.tracks if t.name in names]
        seen, alive = proc.last, time.monotonic()
        while proc.poll() is None:
            if self.cancel.is_set():
                raise Cancelled("transcode cancelled")
            if playable and self.preempt is not None and self.preempt():
                raise _Preempted  # never before the video can be watched
            self.attempt.check()  # a progress write refused in ffmpeg's thread
            if before is not None:
                before()
            if uploader.poll():
                # ffmpeg 5.1 may hold -progress back (trickplay output): segments speak.
                tracker.media(min(t.end() for t in video_tracks))
                alive = time.monotonic()
            if proc.last is not seen:
                seen, alive = proc.last, time.monotonic()
            elif time.monotonic() - alive > self.settings.stall_timeout:
                # A source on a hung mount, a wedged GPU: stop rather than wait forever.
                proc.stop(self.settings.kill_grace)
                self._keep_log(proc)
                raise TranscodeFailed(
                    f"ffmpeg made no progress for {self.settings.stall_timeout:g} s "
                    "and was stopped",
                    argv=argv, log_tail=proc.log_tail(),
                )  # fmt: skip
            if time.monotonic() - self._started > self.settings.transcode_timeout:
                proc.stop(self.settings.kill_grace)
                self._keep_log(proc)
                raise TranscodeFailed(
                    f"the transcode ran longer than {self.settings.transcode_timeout:g} s "
                    "and was stopped", argv=argv, log_tail=proc.log_tail(),
                )  # fmt: skip
            if not playable and uploader.all_started():
                playable = self._mark_playable(plan, uploader)
            time.sleep(self.settings.poll_interval)
        return playable

    def _finish(
        self, source: Path, info: SourceInfo, plan: EncodePlan, uploader: SegmentUploader,
        proc: FfmpegProcess,
    ) -> Video:  # fmt: skip
        video_tracks = uploader.tracks[: len(plan.rungs)]
        encoded = min(t.end() for t in video_tracks)
        tail = proc.log_tail(200)
        shortfall = info.duration - encoded
        if shortfall > max(2.0, 0.1 * info.duration) and _SOURCE_FAULT.search(tail):
            self._keep_log(proc)
            raise SourceError(
                f"the source breaks off at {encoded:.1f} s of {info.duration:.1f} s "
                "(truncated or damaged)"
            )
        decode_errors = len(_DECODE_ERROR.findall(tail))
        self._check_cancel()
        with stage("thumbnails"):
            ffmpeg, prefix = self.settings.ffmpeg, self.prefix
            poster_key = outputs.upload_poster(
                self.store, prefix, source, info, self.work, ffmpeg,
                made=self.work / "out" / POSTER_FILE if plan.poster else None,
            )  # fmt: skip
            if poster_key is None:
                self.log.warning("no poster could be made")
            trickplay = outputs.upload_trickplay(
                self.store, prefix, plan.trickplay, self.work / "out" / "trickplay", encoded
            )
            subtitles = outputs.upload_subtitles(
                self.store, prefix, source, info, self.work, ffmpeg
            )
        message = f"ready ({plan.codec}, {plan.accelerator})"
        if plan.copy_top:
            message += f"; {plan.rungs[0].name} passed through from the source"
        if decode_errors:
            message += f"; {decode_errors} decode errors in the source were concealed"
        speed = proc.last.speed if proc.last and proc.last.speed else None
        if speed is None and self._tracker is not None:
            speed = self._tracker.speed
        with stage("finalize", renditions=len(uploader.tracks)):
            final = self.attempt.mark_ready(
                message=message, duration=round(encoded, 3),
                renditions=self._renditions(plan, uploader, final=True),
                poster_key=poster_key, trickplay=trickplay, subtitles=subtitles, speed=speed,
            )  # fmt: skip
        if self.on_progress:
            self.on_progress(100.0)
        self.log.info("ready: %.1f s, %d renditions", encoded, len(uploader.tracks))
        return final

    # -- helpers ---------------------------------------------------------------------------

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("transcode cancelled")

    def _write_progress(self, percent: float, speed: float | None) -> None:
        """The tracker's catalog write (at most every ``progress_interval`` seconds).

        Runs in the upload loop or the ffmpeg-progress thread, both inside worker.encode:
        a ``progress`` event there at each point gained (at most ~100 per transcode), and
        the encode fps/speed metrics.
        """
        fps = speed * self._fps if speed and self._fps else None
        if percent - self._evented >= 1.0 or percent >= ENCODE_SHARE:
            self._evented = percent
            seconds = self._tracker.seconds if self._tracker else None
            add_event("progress", percent=round(percent, 1), seconds=seconds, speed=speed, fps=fps)
        worker_metrics().observe_progress(fps=fps, speed=speed, accelerator=self._accelerator)
        self.attempt.set_progress(percent, speed)

    def _renditions(
        self, plan: EncodePlan, uploader: SegmentUploader, *, final: bool
    ) -> list[Rendition]:
        return outputs.renditions(plan, uploader.tracks, self._languages, final=final)

    def _mark_playable(self, plan: EncodePlan, uploader: SegmentUploader) -> bool:
        self.attempt.mark_playable(self._renditions(plan, uploader, final=False))
        self.log.info("playable")
        return True

    def _keep_log(self, proc: FfmpegProcess) -> None:
        """Remember ffmpeg's log tail for ``save_log`` and put it in the worker's log."""
        self._log_tail = proc.log_tail(200)
        self.log.warning("ffmpeg log tail:\n%s", proc.log_tail())

    def end(self, message: str) -> None:
        """The run failed or was cancelled: the video is failed with ``message``, nothing of
        the attempt stays, and ffmpeg's log tail (if any) is kept privately."""
        self.log.warning("transcode did not finish: %s", message)
        try:
            self.attempt.fail(message)  # its objects go even when the catalog is down
        except Exception:
            self.log.exception("could not mark the video failed")
        try:
            self.attempt.save_log(self._log_tail)
        except Exception:
            self.log.exception("could not keep the ffmpeg log")
