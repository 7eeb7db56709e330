"""``kubevod-worker chunks``: a warm worker that encodes the chunks viewers wait for.

In the cluster, an on-demand video (``spec.transcode.policy: onDemand``) is
registered by its Job: probe, plan, poster, audio and the first chunk. A
player's request for a segment of a chunk not encoded yet reaches the API,
which asks the catalog for that chunk and the one after it
(``kubevod.ondemand.CatalogWants``) and waits for the segment. This process,
run by a small Deployment whose pods stay up, takes the newest such want
(``Catalog.take_chunk``: a lease, so two workers do not encode one chunk),
encodes it with the very pipeline a Job runs (``kubevod.worker.pipeline.run``
with a chunk job, ``kubevod.jobs.chunk_job``), and goes on with the video's
next want while a viewer keeps asking.

Why a warm worker rather than a Job per request: a seek must show a picture
within seconds, and a pod's start alone (scheduling, sandbox, image, Python)
takes longer than encoding a chunk's first segment (docs/architecture.md §6,
measured in docs/benchmarks-cluster-spread.md).

- A want of a video that is gone, complete, failed, of another generation, or
  whose chunk is encoded already is dropped.
- A viewer who seeks elsewhere while a chunk is encoded (a want newer than the
  chunk's start, for a chunk other than it and the one after it) stops that
  chunk; what it uploaded stays, and it is encoded again when someone asks.
- A chunk that could not be encoded for a reason that may pass is dropped: the
  player asks again, and that asks for the chunk again.
- The lease of the chunk being encoded is renewed every quarter lease, so a
  chunk that takes longer than one lease is not handed to a second worker. A
  worker that finds its lease taken over (it was stalled past the lease) or the
  want gone stops that chunk and leaves the want to whoever has it.
- The rest of a popular video is asked for in the background
  (``kubevod.ondemand.CatalogWants``): such wants are taken only when no viewer's
  want of any video waits, one chunk per run. A background chunk gives way as
  soon as a viewer's want of any video waits: it stops (what it uploaded stays),
  its want is freed, not dropped, and the worker takes the viewer's.
- Sources are fetched once per video and kept (the last few) in scratch, so a
  film's later chunks do not download it again. A source that is a path (a
  PVC) cannot be read here; the operator registers such videos eagerly.
- SIGTERM stops the chunk being encoded and ends the process.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubevod.worker.errors import Cancelled, one_line
from kubevod.worker.fetch import open_source
from kubevod.worker.settings import WorkerSettings

from kubevod.catalog.base import Catalog
from kubevod.catalog.common import is_background
from kubevod.errors import KubevodError, NotFound, SourceError, Superseded
from kubevod.jobs import chunk_job
from kubevod.logs import get_logger
from kubevod.models import ChunkWant, Video, VideoState
from kubevod.store.base import ObjectStore

log = get_logger(__name__)

#: How long a taken chunk is this worker's (s): a worker killed mid-chunk frees it then.
LEASE_SECONDS = 120.0
#: How often an idle worker looks for wants (s).
POLL_SECONDS = 0.2
#: How often a chunk being encoded looks whether its viewer sought elsewhere (s).
PREEMPT_POLL_SECONDS = 0.5
#: Fetched sources kept, most recently used first.
KEEP_SOURCES = 2


def is_path(source: str) -> bool:
    """Whether ``source`` is a file path rather than a URL this worker fetches (pure)."""
    scheme = urlsplit(source).scheme
    return len(scheme) <= 1  # "" or a Windows drive letter


def stale(want: ChunkWant, video: Video) -> str | None:
    """Why ``want`` needs no encode any more, or None (pure)."""
    if video.generation != want.generation:
        return f"generation {want.generation} is gone (now {video.generation})"
    if video.state != VideoState.READY or video.plan is None:
        return f"the video is {video.state.value}"
    if video.complete:
        return "the video is complete"
    if want.chunk in video.chunks_done:
        return "the chunk is encoded"
    if not 0 <= want.chunk < len(video.plan.chunks()):
        return "no such chunk"
    return None


def sought_elsewhere(wants: list[ChunkWant], chunk: int, since: float) -> bool:
    """Whether a viewer asked, after ``since`` (epoch s), for a chunk other than ``chunk``
    and the one after it that nobody is encoding: a seek (pure)."""
    return any(
        not w.holder and w.asked_at.timestamp() > since and w.chunk not in (chunk, chunk + 1)
        for w in wants
    )


def gives_way(mine: ChunkWant | None, waiting: ChunkWant | None) -> bool:
    """Whether the chunk being encoded (its want ``mine`` as it is now) stops for the want
    a taker would get next (``waiting``, ``Catalog.peek_chunk``): a background chunk gives
    way to a viewer's want of any video; a viewer's chunk never does (pure)."""
    if mine is None or not is_background(mine.asked_at):
        return False  # a viewer's (asking again for a background chunk makes it one)
    return waiting is not None and not is_background(waiting.asked_at)


def viewer_next(wants: list[ChunkWant], now: datetime) -> bool:
    """Whether the newest free want of a video (``wants``: newest first) is a viewer's:
    a run goes on with its video's next chunk only then; a background want (the rest of
    a popular video) waits until no viewer of any video waits (pure)."""
    for want in wants:
        if want.holder and want.lease_until is not None and want.lease_until >= now:
            continue  # taken
        return not is_background(want.asked_at)
    return False


@dataclass
class SourceCache:
    """The last few fetched sources, one folder each under ``root``."""

    root: Path
    keep: int = KEEP_SOURCES
    _entries: OrderedDict[tuple[str, int], Path] = field(default_factory=OrderedDict)

    def get(self, video: Video, store: ObjectStore, settings: WorkerSettings) -> Path:
        """The video's source as a local file, fetched now unless kept from before.

        Raises:
            SourceError: the source cannot be fetched (the video is at fault).
        """
        key = (video.id, video.generation)
        kept = self._entries.get(key)
        if kept is not None and kept.is_file():
            self._entries.move_to_end(key, last=False)
            return kept
        folder = self.root / f"{video.id}-g{video.generation}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        local = open_source(
            video.source, folder, store=store, policy=settings.fetch_policy(),
            limits=settings.fetch_limits(), s3_buckets=tuple(settings.s3_source_buckets),
        )  # fmt: skip
        self._entries[key] = local.path
        self._entries.move_to_end(key, last=False)
        while len(self._entries) > self.keep:
            _, path = self._entries.popitem(last=True)
            shutil.rmtree(path.parent, ignore_errors=True)
        return local.path

    def forget(self, video_id: str) -> None:
        for key in [k for k in self._entries if k[0] == video_id]:
            shutil.rmtree(self._entries.pop(key).parent, ignore_errors=True)


RunFn = Callable[..., Video]


class ChunkWorker:
    """Takes chunk wants from the catalog and encodes them, until ``stop`` is set."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        holder: str,
        settings: WorkerSettings | None = None,
        scratch: Path,
        stop: threading.Event | None = None,
        run: RunFn | None = None,
        lease_seconds: float = LEASE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.catalog, self.store, self.holder = catalog, store, holder
        self.settings = settings or WorkerSettings()
        self.scratch = scratch
        self.stop = stop or threading.Event()
        self.lease_seconds, self.poll_seconds = lease_seconds, poll_seconds
        self.sources = SourceCache(scratch / "sources")
        self._run = run

    def _pipeline(self) -> RunFn:
        if self._run is None:
            from kubevod.worker.pipeline import run

            self._run = run
        return self._run

    def serve(self) -> None:
        """Encode wanted chunks until ``stop`` is set."""
        log.info("chunk worker %s waiting for chunks", self.holder)
        while not self.stop.is_set():
            try:
                want = self.catalog.take_chunk(self.holder, self.lease_seconds)
            except KubevodError as exc:
                log.warning("catalog: %s", one_line(str(exc)))
                self.stop.wait(1.0)
                continue
            if want is None:
                self.stop.wait(self.poll_seconds)
                continue
            try:
                self.encode(want)
            except Cancelled:
                return
            except KubevodError as exc:  # the catalog or the store: the viewer asks again
                log.warning("chunk %d of %s not encoded: %s", want.chunk, want.video_id,
                            one_line(str(exc)))  # fmt: skip

    def _usable(self, want: ChunkWant) -> Video | None:
        """The want's video when its chunk still needs encoding; else drops the want."""
        try:
            video = self.catalog.get(want.video_id)
        except NotFound:
            self.catalog.drop_chunk_wants(want.video_id)
            self.sources.forget(want.video_id)
            return None
        why = stale(want, video)
        if why is None and is_path(video.source):
            why = "its source is a path, which this worker cannot read (a Job encodes it)"
        if why is not None:
            log.info("chunk %d of %s dropped: %s", want.chunk, want.video_id, why)
            self.catalog.drop_chunk_wants(want.video_id, [want.chunk])
            return None
        return video

    def encode(self, want: ChunkWant) -> None:
        """Encode ``want``'s chunk, then the video's next wants while there are any."""
        video = self._usable(want)
        if video is None:
            return
        with LeaseKeeper(self.catalog, want, self.lease_seconds) as lease:
            self._encode(video, want, lease)

    def _encode(self, video: Video, want: ChunkWant, lease: LeaseKeeper) -> None:
        chunk = [want.chunk]  # the chunk being encoded
        current = [want.chunk]  # its want to drop once answered; [] once not this worker's
        started = [time.time()]
        try:
            source = self.sources.get(video, self.store, self.settings)
        except SourceError:
            self.catalog.drop_chunk_wants(video.id)
            raise

        def demand() -> int | None:
            # The chunk before is encoded (or stopped for a seek): its want is answered.
            lease.hold(None)
            self.catalog.drop_chunk_wants(video.id, current)
            current[:] = []
            while not self.stop.is_set():
                if not viewer_next(self.catalog.chunk_wants(video.id), datetime.now(UTC)):
                    return None  # the main loop looks at every video's viewers first
                nxt = self.catalog.take_chunk(self.holder, self.lease_seconds, video_id=video.id)
                if nxt is None:
                    return None
                if nxt.generation != video.generation:  # an encoded chunk: the pipeline skips it
                    self.catalog.drop_chunk_wants(video.id, [nxt.chunk])
                    continue
                lease.hold(nxt)
                chunk[0], current[:] = nxt.chunk, [nxt.chunk]
                started[0] = time.time()
                return nxt.chunk
            return None

        checked = [0.0]

        def preempt() -> bool:
            if lease.lost:
                log.warning("chunk %d of %s: its lease is another worker's now; stopping it",
                            chunk[0], video.id)  # fmt: skip
                current[:] = []  # whoever has it answers it
                return True
            now = time.monotonic()
            if now - checked[0] < PREEMPT_POLL_SECONDS or not current:
                return False
            checked[0] = now
            try:
                wants = self.catalog.chunk_wants(video.id)
                if sought_elsewhere(wants, chunk[0], started[0]):
                    return True
                now_mine = next((w for w in wants if w.chunk == chunk[0]), None)
                if not gives_way(now_mine, self.catalog.peek_chunk()):
                    return False
                log.info("background chunk %d of %s gives way to a viewer", chunk[0], video.id)
                lease.hold(None)
                if now_mine is not None and self.catalog.renew_chunk(now_mine, 0):
                    current[:] = []  # freed for later, not dropped
                return True
            except KubevodError:
                return False

        job = chunk_job(video, [want.chunk]).model_copy(update={"source": str(source)})
        extra: dict[str, Any] = {"demand": demand, "preempt": preempt}
        try:
            self._pipeline()(
                job, store=self.store, catalog=self.catalog, cancel=self.stop,
                settings=self.settings, scratch=self.scratch / "work", **extra,
            )  # fmt: skip
        except (SourceError, Superseded) as exc:
            log.info("video %s: %s", video.id, one_line(str(exc)))
            self.catalog.drop_chunk_wants(video.id)
            self.sources.forget(video.id)
        except Cancelled:
            self.catalog.drop_chunk_wants(video.id, current)
            raise
        except Exception as exc:
            self.catalog.drop_chunk_wants(video.id, current)
            if isinstance(exc, KubevodError):
                raise
            log.exception("chunk %d of %s failed", chunk[0], video.id)
        else:
            self.catalog.drop_chunk_wants(video.id, current)


class LeaseKeeper:
    """Renews the lease of the want being encoded every quarter lease, on a thread of its
    own, from the take until the run ends: the source's fetch, ffmpeg's start and the
    uploads take time too, and a chunk may take longer than one lease.

    ``lost`` turns True when a renewal finds the want gone or another holder's (this
    worker stalled past its lease): the chunk is no longer this worker's.
    """

    def __init__(self, catalog: Catalog, want: ChunkWant, lease_seconds: float) -> None:
        self.catalog, self.every = catalog, lease_seconds / 4
        self.lease_seconds = lease_seconds
        self.lost = False
        self._want: ChunkWant | None = want
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chunk-lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def hold(self, want: ChunkWant | None) -> None:
        """Renew ``want`` from now on (None: nothing, its want is answered or freed)."""
        with self._lock:
            self._want, self.lost = want, False

    def _run(self) -> None:
        while not self._done.wait(self.every):
            with self._lock:
                want = self._want
            if want is None:
                continue
            try:
                kept = self.catalog.renew_chunk(want, self.lease_seconds)
            except KubevodError as exc:  # the next try may reach it; the lease has time
                log.warning("catalog: lease not renewed: %s", one_line(str(exc)))
                continue
            with self._lock:
                if not kept and self._want is want:
                    self._want, self.lost = None, True
