"""``LocalPool``: the ``Runner`` of local mode, N threads that each run
``kubevod.worker.pipeline.run`` (the very transcoder the Kubernetes Jobs run).

- ``submit`` queues a job and returns at once; a video already queued or
  running is not queued twice.
- ``cancel`` drops a queued job or sets the running one's ``threading.Event``,
  which makes the pipeline stop its ffmpeg.
- ``resume`` (on start) requeues every video the catalog still shows as
  queued or transcoding, from scratch: a transcode cut short by a crash or a
  kill leaves nothing reusable, and finished (``ready``) videos are left alone.
- ``shutdown`` cancels running transcodes, waits for the threads, and leaves
  every interrupted video ``queued`` (not playable, no progress) so nothing in
  the catalog claims to be in progress while no server runs.
- ``want`` (``kubevod.ondemand.ChunkScheduler``): a viewer reached a chunk of
  an on-demand video that is not encoded. The chunk goes to the front of the
  video's wants (with the one after it, so playback runs on), one chunk job
  per video encodes them in turn, and jobs a viewer waits for run before every
  other transcode; a seek stops the chunk being encoded for the one sought to
  (the registration's first chunk too, once the video is watchable).
  A video whose viewers reached ``promote_after_seconds`` of it is popular: its
  other chunks are encoded in the background, at the lowest priority, one chunk
  at a time, so a viewer's chunk never waits behind it.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubevod import telemetry
from kubevod.catalog.base import Catalog
from kubevod.errors import KubevodError, NotFound, SourceError, Superseded
from kubevod.jobs import TranscodeJob, chunk_job, job_for
from kubevod.lifecycle import Lifecycle
from kubevod.models import TranscodePolicy, Video, VideoState
from kubevod.ondemand import chunks_seconds
from kubevod.store.base import ObjectStore

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted by a shutdown; starts over when the server starts again"

#: ``kubevod.worker.pipeline.run``'s shape.
RunFn = Callable[..., Video]

#: Queue priorities: a chunk a viewer waits for, then whole transcodes and
#: registrations, then the background completion of popular on-demand videos.
WATCHED, EAGER, BACKGROUND = 0, 1, 2
_STOP = -1
#: How long a chunk job with nothing to do waits for a viewer's next request, seconds.
LINGER = 2.0


@dataclass
class _Wants:
    """The chunks of one on-demand video waiting to be encoded."""

    video: Video
    urgent: deque[int] = field(default_factory=deque)  # asked for by viewers, next first
    background: deque[int] = field(default_factory=deque)  # the rest of a popular video
    asked: set[int] = field(default_factory=set)  # every chunk viewers asked for
    encoding: int | None = None
    preempt: bool = False  # a viewer sought elsewhere: stop the chunk being encoded
    promoted: bool = False

    def queued(self, chunk: int) -> bool:
        return chunk == self.encoding or chunk in self.urgent

    def pending(self) -> bool:
        return bool(self.urgent or self.background)


def one_line(exc: BaseException) -> str:
    """A one-line, human-readable reason from an exception."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class LocalPool:
    """Runs transcodes on worker threads in this process."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        catalog: Catalog,
        scratch: Path,
        workers: int = 1,
        worker_settings: Any = None,
        run: RunFn | None = None,
        promote_after_seconds: float = 600.0,
        linger: float = LINGER,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._lifecycle = Lifecycle(catalog, store)
        self._scratch = scratch
        self._workers = max(1, workers)
        self._worker_settings = worker_settings
        self._run = run
        self._promote_after = max(1.0, promote_after_seconds)
        self._linger = linger
        self._queue: queue.PriorityQueue[tuple[int, int, TranscodeJob | None]] = (
            queue.PriorityQueue()
        )
        self._order = itertools.count()  # FIFO within a priority
        self._queued: dict[int, int] = {}  # priority -> jobs in the queue
        self._wants: dict[str, _Wants] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._wanted = threading.Condition(self._lock)  # a chunk was asked for
        self._pending: set[str] = set()
        # The trace of the request that submitted each queued video: its transcode joins it.
        self._traces: dict[str, str | None] = {}
        self._running: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # -- Runner protocol -------------------------------------------------------------

    def submit(self, job: TranscodeJob, priority: int = EAGER) -> None:
        """Queue a transcode; returns at once. Ignored while the video is queued or running."""
        with self._lock:
            self._submit_locked(job, priority)

    def _submit_locked(self, job: TranscodeJob, priority: int) -> None:
        if self._stopping.is_set():
            return
        if job.video_id in self._pending or job.video_id in self._running:
            return
        self._pending.add(job.video_id)
        self._traces[job.video_id] = telemetry.inject_traceparent().get(telemetry.TRACEPARENT_ENV)
        self._queued[priority] = self._queued.get(priority, 0) + 1
        self._queue.put((priority, next(self._order), job))
        self._wanted.notify_all()  # a lingering chunk job makes way

    def want(self, video: Video, chunk: int) -> None:
        """A viewer reached ``chunk`` of on-demand ``video``: encode it next (once).

        A chunk that is not the one being encoded nor the one after it (a seek, not
        playback running on) stops the chunk being encoded, which goes back in line
        after it: the viewer who sought waits for one chunk, not two.
        """
        if video.plan is None:
            return
        chunks = video.plan.chunks()
        total = len(chunks)
        with self._lock:
            wants = self._wants.get(video.id)
            if wants is None or wants.video.generation != video.generation:
                wants = self._wants[video.id] = _Wants(video)
            done = set(video.chunks_done)
            if chunk in done or not 0 <= chunk < total:
                return
            wants.asked.add(chunk)
            if not wants.queued(chunk):
                # This chunk first, then the one after it, so playback runs on.
                for index in (chunk + 1, chunk):
                    if index < total and index not in done and index != wants.encoding:
                        wants.urgent = deque([index, *(c for c in wants.urgent if c != index)])
                if wants.encoding is not None and chunk != wants.encoding + 1:
                    wants.preempt = True
                elif wants.encoding is None and video.id in self._running and chunk > 1:
                    # The registration at its first chunk (or a chunk job between two).
                    wants.preempt = True
            if not wants.promoted and chunks_seconds(video, wants.asked) >= self._promote_after:
                wants.promoted = True
                rest = [c for c in range(total) if c not in done and not wants.queued(c)]
                wants.background.extend(rest)
                log.info("video is popular: its other chunks are encoded in the background",
                         extra={"video_id": video.id})  # fmt: skip
            if video.id not in self._running:
                self._submit_locked(chunk_job(video), WATCHED)
            self._wanted.notify_all()

    def _preempted(self, video_id: str) -> bool:
        """Whether the chunk being encoded should stop for one a viewer sought to."""
        with self._lock:
            wants = self._wants.get(video_id)
            return wants is not None and wants.preempt

    def _next_chunk(self, video_id: str) -> int | None:
        """A chunk job's next chunk: a viewer's first; a popular video's others only while
        no other job a viewer waits for is queued (the job then ends and queues again).

        With nothing wanted and no other job queued, it waits ``linger`` seconds for a
        viewer's next request (a player asks for segments one after another), so the
        next chunk does not pay for a new job's start.
        """
        with self._lock:
            wants = self._wants.get(video_id)
            if wants is None or self._stopping.is_set():
                return None
            if not wants.pending() and not any(self._queued.values()):
                self._wanted.wait_for(
                    lambda: wants.pending()
                    or self._stopping.is_set()
                    or any(self._queued.values()),
                    timeout=self._linger,
                )
                if self._stopping.is_set() or self._wants.get(video_id) is not wants:
                    return None
            stopped, wants.encoding = (wants.encoding if wants.preempt else None), None
            wants.preempt = False
            if wants.urgent:
                wants.encoding = wants.urgent.popleft()
            elif wants.background and not self._queued.get(WATCHED):
                wants.encoding = wants.background.popleft()
            if stopped is not None and stopped != wants.encoding:
                wants.urgent.insert(min(1, len(wants.urgent)), stopped)  # after the next
            return wants.encoding

    def cancel(self, video_id: str) -> None:
        """Forget a queued transcode of this video, or stop the running one."""
        with self._lock:
            self._wants.pop(video_id, None)
            self._wanted.notify_all()
            self._pending.discard(video_id)
            event = self._running.get(video_id)
            if event is not None:
                event.set()
            self._idle.notify_all()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads, and load the transcoder while nothing waits for it."""
        self._scratch.mkdir(parents=True, exist_ok=True)
        if self._run is None:
            threading.Thread(target=self._prepare, name="kubevod-pool-prepare", daemon=True).start()
        for n in range(self._workers):
            thread = threading.Thread(target=self._loop, name=f"kubevod-pool-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _prepare(self) -> None:
        """Import the pipeline and let it learn this machine (``pipeline.prepare``), so the
        first video added after the server starts does not wait for either."""
        try:
            from kubevod.worker.pipeline import prepare
        except ImportError:  # a server without the worker: transcodes fail with the reason
            return
        try:
            prepare(self._worker_settings)
        except Exception:  # the first transcode will meet whatever this met, and say it
            log.debug("preparing the transcoder failed", exc_info=True)

    def resume(self) -> list[str]:
        """Requeue, from scratch, every video left queued or transcoding; returns their ids."""
        videos: list[Video] = []
        for state in (VideoState.TRANSCODING, VideoState.QUEUED):
            offset = 0
            while True:
                page = self._catalog.list(state=state, sort="created", offset=offset, limit=200)
                videos.extend(page.items)
                offset += len(page.items)
                if not page.items or offset >= page.total:
                    break
        videos.sort(key=lambda v: v.created_at)
        for video in videos:
            if video.state == VideoState.TRANSCODING or video.playable or video.progress:
                self._reset(video.id, "resuming an interrupted transcode from the start")
            self.submit(job_for(video))
        if videos:
            log.info("resuming %d interrupted transcode(s)", len(videos))
        return [v.id for v in videos]

    def busy(self) -> set[str]:
        """Ids of the videos queued or running right now."""
        with self._lock:
            return set(self._pending) | set(self._running)

    def wait_for(self, video_id: str, timeout: float | None = None) -> bool:
        """Block until this video is neither queued nor running; False on timeout."""
        with self._idle:
            return self._idle.wait_for(
                lambda: video_id not in self._pending and video_id not in self._running,
                timeout=timeout,
            )

    def shutdown(self, timeout: float = 20.0) -> set[str]:
        """Stop every transcode and the threads; returns the ids left ``queued`` for next time."""
        with self._lock:
            self._stopping.set()
            self._wanted.notify_all()
            pending = set(self._pending)
            self._pending.clear()
            interrupted = pending | set(self._running)
            for event in self._running.values():
                event.set()
        for _ in self._threads:
            self._queue.put((_STOP, next(self._order), None))
        for thread in self._threads:
            thread.join(timeout=timeout / max(1, len(self._threads)))
        with self._lock:
            stuck = set(self._running)
        # Queued videos stay queued; ones whose thread did not stop in time are reset here
        # (their thread is a daemon and dies with the process, its ffmpeg with its pipe).
        for video_id in stuck:
            self._reset(video_id, INTERRUPTED)
        if interrupted:
            log.info("left %d video(s) queued for the next start", len(interrupted))
        return interrupted

    # -- internals -------------------------------------------------------------------

    def _pipeline(self) -> RunFn:
        if self._run is None:
            from kubevod.worker.pipeline import run

            self._run = run
        return self._run

    def _loop(self) -> None:
        while True:
            priority, _, job = self._queue.get()
            if job is None or self._stopping.is_set():
                return
            event = threading.Event()
            with self._lock:
                self._queued[priority] -= 1
                traceparent = self._traces.pop(job.video_id, None)
                if job.video_id not in self._pending:  # cancelled while queued
                    self._idle.notify_all()
                    continue
                self._pending.discard(job.video_id)
                self._running[job.video_id] = event
            # A job submitted outside any span (watch folder, resume) starts its own trace.
            token = telemetry.attach_traceparent(traceparent)
            try:
                self._execute(job, event)
            finally:
                telemetry.detach(token)
                with self._lock:
                    self._running.pop(job.video_id, None)
                    self._after_chunks(job)
                    self._idle.notify_all()

    def _after_chunks(self, job: TranscodeJob) -> None:
        """Under the lock, after a job of an on-demand video: queue it again while chunks
        are wanted (a popular video's rest, at the lowest priority), else forget it."""
        wants = self._wants.get(job.video_id)
        if wants is None:
            return
        wants.encoding = None
        if self._stopping.is_set() or job.policy != TranscodePolicy.ON_DEMAND:
            return
        try:
            video = self._catalog.get(job.video_id)
        except KubevodError:
            self._wants.pop(job.video_id, None)
            return
        if video.complete or video.state != VideoState.READY:
            self._wants.pop(job.video_id, None)
            return
        wants.video = video
        if wants.pending():
            self._submit_locked(chunk_job(video), WATCHED if wants.urgent else BACKGROUND)

    def _execute(self, job: TranscodeJob, cancel: threading.Event) -> None:
        scratch = self._scratch / job.video_id
        log.info("transcode starts", extra={"video_id": job.video_id})
        extra: dict[str, Any] = {}
        if job.chunks is not None:
            extra["demand"] = lambda: self._next_chunk(job.video_id)
        if job.chunks is not None or job.policy == TranscodePolicy.ON_DEMAND:
            extra["preempt"] = lambda: self._preempted(job.video_id)
        try:
            self._pipeline()(
                job,
                store=self._store,
                catalog=self._catalog,
                scratch=scratch,
                cancel=cancel,
                settings=self._worker_settings,
                **extra,
            )
            log.info("transcode done", extra={"video_id": job.video_id})
        except SourceError as exc:  # the pipeline has marked the video failed
            log.warning("source unusable: %s", one_line(exc), extra={"video_id": job.video_id})
        except Superseded as exc:  # deleted or moved on meanwhile: nothing is left to mark
            log.info("transcode stopped: %s", one_line(exc), extra={"video_id": job.video_id})
        except Exception as exc:
            if job.chunks is not None:
                # More chunks of a ready video: it stays as it is; a viewer asks again.
                log.warning(
                    "chunk not encoded: %s", one_line(exc), extra={"video_id": job.video_id}
                )
            elif self._stopping.is_set():
                self._reset(job.video_id, INTERRUPTED)
            elif cancel.is_set():
                log.info("transcode cancelled", extra={"video_id": job.video_id})
            else:
                log.exception("transcode failed", extra={"video_id": job.video_id})
                self._mark_failed(job.video_id, one_line(exc))
        else:
            if self._stopping.is_set() and job.chunks is None:
                # Finished just as we stopped: keep it if the pipeline says ready.
                self._reset_unless_ready(job.video_id)

    def _reset_unless_ready(self, video_id: str) -> None:
        try:
            video = self._catalog.get(video_id)
        except NotFound:
            return
        if video.state != VideoState.READY:
            self._reset(video_id, INTERRUPTED)

    def _reset(self, video_id: str, message: str) -> None:
        """Make a video ``queued`` again with nothing of the cut-short run left visible."""
        try:
            self._lifecycle.requeue(self._catalog.get(video_id), message)
        except (NotFound, Superseded):
            pass
        except KubevodError:
            log.exception("could not reset video", extra={"video_id": video_id})

    def _mark_failed(self, video_id: str, reason: str) -> None:
        try:
            self._lifecycle.fail(self._catalog.get(video_id), reason)
        except NotFound:
            pass
        except KubevodError:
            log.exception("could not mark video failed", extra={"video_id": video_id})
