"""A video's life over (catalog, store): the one module that moves a video between states.

Everyone else calls these operations; nothing outside this module and the
catalog backends writes a catalog entry (tests/unit/test_lifecycle_owner.py).
The states and who may move a video between them (docs/architecture.md §4)::

    register / start_generation            begin             mark_ready
    ─────────────────────────────▶ queued ───────▶ transcoding ──────────▶ ready
                                     ▲               │  │ retry (new attempt)
                            requeue  └───────────────┘  └─────▶ failed   (fail)
    purge: from any state, media first, then the entry

    on demand:  transcoding ── mark_partial ──▶ ready (some chunks)
                ready ── resume, chunk_done … ──▶ ready (every chunk: mark_ready)

- The **scheduler** (the operator in the cluster; local mode's ingest and pool)
  registers a video, starts a generation, edits metadata, requeues and purges.
- The **worker** holds an :class:`Attempt`: ``begin`` claims the generation
  with a new attempt token (``kubevod.keys``), and every later write carries
  the attempt's :class:`~kubevod.catalog.base.Fence` (generation and media
  prefix). Once the entry has moved on (a newer attempt or generation, or a
  purge), the catalog refuses the write with ``Superseded``: the attempt stops,
  deletes what it uploaded and writes nothing more. A worker never creates an
  entry.

Deleting a video during its transcode therefore leaves nothing: the purge
removes the media and the entry; the worker's next write is refused and it
deletes its own attempt's objects (the operator purges once more when the
Job's pods are gone, for a worker killed between an upload and its record).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubevod import keys
from kubevod.catalog.base import Catalog, Fence
from kubevod.errors import Conflict, NotFound, Superseded
from kubevod.jobs import TranscodeJob
from kubevod.logs import get_logger
from kubevod.models import (
    MediaPlan,
    Rendition,
    Segment,
    SourceSummary,
    Subtitle,
    TranscodePolicy,
    Trickplay,
    Video,
    VideoState,
)
from kubevod.store.base import ObjectStore

log = get_logger(__name__)

#: What a new attempt or a new generation starts from: nothing of a previous run visible.
_FRESH_RUN: dict[str, Any] = {
    "progress": 0.0,
    "playable": False,
    "renditions": [],
    "subtitles": [],
    "trickplay": None,
    "poster_key": None,
    "speed": None,
    "longest_segment": None,
    "plan": None,
    "chunks_done": [],
}


def queued_entry(job: TranscodeJob) -> Video:
    """The catalog entry a scheduler registers for ``job`` (pure): queued, no media yet."""
    title = job.title or Path(job.source.split("?", 1)[0].rstrip("/")).stem or job.video_id
    return Video(
        id=job.video_id,
        title=title,
        source=job.source,
        state=VideoState.QUEUED,
        generation=job.generation,
        segment_seconds=job.segment_seconds,
        prefix=keys.media_prefix(job.video_id, job.generation),
    )


@dataclass(frozen=True)
class Purged:
    """What a purge removed."""

    objects: int


class Lifecycle:
    """The transitions of videos kept in one catalog and one object store."""

    def __init__(self, catalog: Catalog, store: ObjectStore) -> None:
        self.catalog = catalog
        self.store = store

    # -- the scheduler ---------------------------------------------------------------------

    def register(self, video: Video) -> Video:
        """Record a new video, queued; raises Conflict when the id exists."""
        return self.catalog.create(video.model_copy(update={"state": VideoState.QUEUED}))

    def start_generation(self, fresh: Video) -> Video:
        """Create the entry, or move an existing one forward to ``fresh.generation``.

        Idempotent: an entry already at this generation (or a later one) only gets
        the metadata, so a restarted operator never resets a transcode in progress.
        The move is fenced on the stored generation being lower, so two operators
        (or a stale event) can never move an entry back. The media of the older
        generation stay until the new one is ready (``Attempt.mark_ready``).
        """
        try:
            return self.catalog.create(fresh)
        except Conflict:
            current = self.catalog.get(fresh.id)
        if current.generation >= fresh.generation:
            return self.update_metadata(
                fresh.id, title=fresh.title, description=fresh.description, tags=fresh.tags
            )
        try:
            moved = self.catalog.update(
                fresh.id,
                fence=Fence(older_than=fresh.generation),
                title=fresh.title,
                description=fresh.description,
                tags=fresh.tags,
                source=fresh.source,
                state=VideoState.QUEUED,
                message=fresh.message,
                duration=0.0,
                segment_seconds=fresh.segment_seconds,
                generation=fresh.generation,
                prefix=fresh.prefix or keys.media_prefix(fresh.id, fresh.generation),
                **_FRESH_RUN,
            )
        except Superseded:
            return self.catalog.get(fresh.id)  # another writer moved it as far already
        # Older attempts' records go; their writers are fenced out from now on.
        self.catalog.clear_segments(fresh.id)
        return moved

    def update_metadata(
        self,
        video_id: str,
        *,
        title: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
    ) -> Video:
        """Change what a person may edit (no new transcode); raises NotFound."""
        fields: dict[str, Any] = {
            name: value
            for name, value in (("title", title), ("description", description), ("tags", tags))
            if value is not None
        }
        if not fields:
            return self.catalog.get(video_id)
        return self.catalog.update(video_id, **fields)

    def requeue(
        self, video: Video, message: str, *, source: str | None = None,
        policy: TranscodePolicy | None = None,
    ) -> Video:  # fmt: skip
        """Queue ``video`` again at its generation (local mode: a retry after a failure, or
        a run a stop cut short), with nothing of the previous attempt left visible;
        ``source`` and ``policy``, when given, replace the recorded ones.

        Fenced on the attempt the caller saw, so a run that began meanwhile is kept.
        Raises NotFound, or Superseded when the entry moved on.
        """
        changes: dict[str, Any] = {"state": VideoState.QUEUED, "message": message, **_FRESH_RUN}
        if source is not None:
            changes["source"] = source
        if policy is not None:
            changes["policy"] = policy
        fence = Fence(generation=video.generation, prefix=video.prefix)
        requeued = self.catalog.update(video.id, fence=fence, **changes)
        self._drop_attempt(video.id, video.media_prefix())
        return requeued

    def fail(self, video: Video, message: str) -> None:
        """Mark ``video`` failed at the attempt the caller saw (a scheduler's last word when
        a run ended without saying so itself); no error when it moved on or is gone."""
        if video.state == VideoState.FAILED:
            return
        fence = Fence(generation=video.generation, prefix=video.prefix)
        try:
            self.catalog.update(
                video.id, fence=fence, state=VideoState.FAILED, playable=False, message=message
            )
        except (NotFound, Superseded):
            return
        self._drop_attempt(video.id, video.media_prefix())

    def purge(self, video_id: str) -> Purged:
        """Delete every generation's media and logs of a video, then its entry.

        Store first, catalog last: while the store is down the entry stays, so the
        video still shows what is left to clean. A worker still running is fenced
        out by the missing entry and deletes what it uploads after this.
        Raises Unavailable; nothing of the catalog is removed before the media.
        """
        objects = self.store.delete_prefix(keys.video_root(video_id))
        objects += self.store.delete_prefix(keys.logs_root(video_id))
        self.catalog.delete(video_id)
        return Purged(objects=objects)

    # -- the worker ------------------------------------------------------------------------

    def begin(self, job: TranscodeJob) -> Attempt:
        """Claim ``job``'s generation for a new attempt: state transcoding, new media prefix.

        Raises:
            Superseded: there is no entry (deleted, or never registered: a worker never
                creates one), or the entry is at another generation, or another attempt
                began at the same moment. Nothing was written.
        """
        try:
            before = self.catalog.get(job.video_id)
        except NotFound:
            raise Superseded(_gone(job.video_id, "nothing to transcode")) from None
        run = keys.new_run()
        prefix = keys.media_prefix(job.video_id, job.generation, run)
        try:
            self.catalog.update(
                job.video_id,
                fence=Fence(generation=job.generation, prefix=before.prefix),
                state=VideoState.TRANSCODING,
                message="fetching the source",
                prefix=prefix,
                accelerator=None,
                **_FRESH_RUN,
            )
        except NotFound:
            raise Superseded(_gone(job.video_id, "nothing to transcode")) from None
        # The attempt before this one is over: its records go, its writes are refused.
        self.catalog.clear_segments(job.video_id, prefix=before.media_prefix())
        return Attempt(self, job, run)

    def resume(self, job: TranscodeJob) -> Attempt:
        """Join the current attempt of an on-demand video to encode more of its chunks.

        The segments already published keep their keys (players and caches hold
        them); the new chunks go under the same prefix, fenced by it.

        Raises:
            Superseded: no entry, another generation, or no plan (nothing to join).
        """
        try:
            video = self.catalog.get(job.video_id)
        except NotFound:
            raise Superseded(_gone(job.video_id, "no chunk to encode")) from None
        run = keys.attempt_run(video.prefix)
        if video.generation != job.generation or video.plan is None or run is None:
            raise Superseded(
                f"video {job.video_id} has no on-demand plan at generation {job.generation}"
            )
        return Attempt(self, job, run)

    def join(
        self, job: TranscodeJob, *, registrar: bool = False
    ) -> tuple[Attempt, int] | Video | None:
        """A pod of a spread transcode (``job.pods`` > 1) joins its first pod's attempt.

        Returns the attempt and the plan's chunk count once the plan and chunk 0
        (which makes the video playable and holds its audio) are recorded; the
        video when there is nothing left for a pod (it is ready, or the first pod
        encodes it alone: a passed-through top rung, a single chunk); None while the
        first pod is not that far (ask again: a failure in between is the Job's to
        retry or to fail, and it stops every pod when it fails). With ``registrar``
        (the first pod itself, started again), None also where it should begin anew.

        Raises:
            Superseded: no entry, or the entry is at another generation.
        """
        try:
            video = self.catalog.get(job.video_id)
        except NotFound:
            raise Superseded(_gone(job.video_id, "no chunk to encode")) from None
        if video.generation != job.generation:
            raise Superseded(
                f"video {job.video_id} is at generation {video.generation}, not {job.generation}"
            )
        run = keys.attempt_run(video.prefix)
        if (
            video.state == VideoState.TRANSCODING
            and video.plan is not None
            and video.policy == TranscodePolicy.EAGER
            and run is not None
            and 0 in video.chunks_done
        ):
            return Attempt(self, job, run), len(video.plan.chunks())
        if registrar:
            return None
        alone = video.state == VideoState.TRANSCODING and video.playable and video.plan is None
        return video if video.state == VideoState.READY or alone else None

    def _drop_attempt(self, video_id: str, prefix: str) -> None:
        """Forget one attempt's segment records and delete its objects."""
        self.catalog.clear_segments(video_id, prefix=prefix)
        self.store.delete_prefix(prefix.rstrip("/") + "/")


def _share(done: list[int], total: int) -> float:
    """Progress of an on-demand video: the share of its chunks encoded, percent."""
    return round(100.0 * len(set(done)) / max(1, total), 1)


def _gone(video_id: str, what: str) -> str:
    return f"video {video_id} is not in the catalog (deleted, or never registered): {what}"


@dataclass
class Attempt:
    """One worker's claim on one generation of one video; every write is fenced by it."""

    lifecycle: Lifecycle
    job: TranscodeJob
    run: str
    #: Why the attempt was superseded (set by the first refused write), else None.
    lost: str | None = field(default=None)

    @property
    def video_id(self) -> str:
        return self.job.video_id

    @property
    def prefix(self) -> str:
        """This attempt's media prefix (no trailing slash)."""
        return keys.media_prefix(self.job.video_id, self.job.generation, self.run)

    @property
    def fence(self) -> Fence:
        return Fence(generation=self.job.generation, prefix=self.prefix)

    @property
    def log_key(self) -> str:
        return keys.log_key(self.job.video_id, self.job.generation, self.run)

    @property
    def _catalog(self) -> Catalog:
        return self.lifecycle.catalog

    def check(self) -> None:
        """Raise Superseded when an earlier write found the attempt moved past."""
        if self.lost is not None:
            raise Superseded(self.lost)

    def _refused(self, exc: NotFound | Superseded) -> Superseded:
        self.lost = (
            _gone(self.video_id, "the transcode stops") if isinstance(exc, NotFound) else str(exc)
        )
        return Superseded(self.lost)

    def _write(self, **fields: Any) -> Video:
        self.check()
        try:
            return self._catalog.update(self.video_id, fence=self.fence, **fields)
        except (NotFound, Superseded) as exc:
            raise self._refused(exc) from None

    # -- while it runs ---------------------------------------------------------------------

    def record_probe(
        self,
        *,
        duration: float,
        source_info: SourceSummary,
        accelerator: str,
        message: str,
        longest_segment: float | None = None,
    ) -> None:
        """What the probe found, the encoder chosen and the timeline's longest segment."""
        self._write(
            duration=duration, source_info=source_info, accelerator=accelerator,
            message=message, longest_segment=longest_segment,
        )  # fmt: skip

    def record_plan(self, plan: MediaPlan, policy: TranscodePolicy) -> None:
        """The segment and chunk plan: manifests list every planned segment from now on."""
        self._write(plan=plan, policy=policy, chunks_done=[])

    def set_poster(self, key: str) -> None:
        """The poster is up (an on-demand video is listed with it before any chunk)."""
        self._write(poster_key=key)

    def set_subtitles(self, subtitles: list[Subtitle]) -> None:
        """The subtitle tracks are up (a spread video records them after its first chunk)."""
        self._write(subtitles=subtitles)

    def mark_partial(
        self, *, message: str, renditions: list[Rendition], chunks_done: list[int],
        total: int, subtitles: list[Subtitle], speed: float | None,
    ) -> Video:  # fmt: skip
        """An on-demand video is ready to watch with ``chunks_done`` of ``total`` chunks
        encoded; the others are encoded when a viewer reaches them."""
        final = self._write(
            state=VideoState.READY, playable=True, message=message, renditions=renditions,
            chunks_done=sorted(set(chunks_done)), progress=_share(chunks_done, total),
            subtitles=subtitles, speed=speed,
        )  # fmt: skip
        self._drop_older()
        return final

    def chunk_done(self, index: int, total: int) -> Video:
        """One more chunk of a planned video is encoded and recorded.

        The chunk is added to the set in one step (``Catalog.add_chunk``), so
        writers of one video in parallel (a spread transcode's pods) lose none of
        each other's; the entry returned is the one after it, so exactly the
        writers that see every chunk done may complete the video.
        """
        self.check()
        try:
            video = self._catalog.add_chunk(self.video_id, index, fence=self.fence)
        except (NotFound, Superseded) as exc:
            raise self._refused(exc) from None
        done = sorted(set(video.chunks_done))
        if video.policy == TranscodePolicy.ON_DEMAND:
            message = (
                f"ready on demand: {len(done)} of {total} chunks encoded, the others when watched"
            )
        else:
            message = f"transcoding: {len(done)} of {total} chunks encoded"
        self._write(progress=_share(done, total), message=message)
        return video.model_copy(update={"chunks_done": done})

    def set_progress(self, percent: float, speed: float | None) -> None:
        """Progress; a refusal is remembered (``check`` raises it in the encode loop)
        rather than raised, since it may come from ffmpeg's progress thread."""
        if self.lost is not None:
            return
        try:
            self._catalog.set_progress(self.video_id, percent, speed=speed, fence=self.fence)
        except (NotFound, Superseded) as exc:
            self._refused(exc)

    def add_segment(self, segment: Segment) -> None:
        """Record one uploaded segment (its object is in the store already)."""
        self.check()
        try:
            self._catalog.add_segment(self.video_id, segment, fence=self.fence)
        except (NotFound, Superseded) as exc:
            raise self._refused(exc) from None

    def mark_playable(self, renditions: list[Rendition]) -> None:
        """Every rendition has its first segment: players may start."""
        self._write(renditions=renditions, playable=True)

    def retry(self, accelerator: str) -> Attempt:
        """A new attempt of the same generation (the GPU-to-software fallback): new keys,
        since players may hold this attempt's segments; this attempt's media go."""
        nxt = Attempt(self.lifecycle, self.job, keys.new_run())
        self._write(accelerator=accelerator, playable=False, prefix=nxt.prefix, renditions=[])
        self.lifecycle._drop_attempt(self.video_id, self.prefix)
        return nxt

    def mark_ready(
        self,
        *,
        message: str,
        duration: float,
        renditions: list[Rendition],
        poster_key: str | None,
        trickplay: Trickplay | None,
        subtitles: list[Subtitle],
        speed: float | None,
        chunks_done: list[int] | None = None,
    ) -> Video:
        """The transcode is complete; the media of older attempts and generations go."""
        extra: dict[str, Any] = {} if chunks_done is None else {"chunks_done": chunks_done}
        final = self._write(
            state=VideoState.READY, progress=100.0, playable=True, message=message,
            duration=duration, renditions=renditions, poster_key=poster_key,
            trickplay=trickplay, subtitles=subtitles, speed=speed, **extra,
        )  # fmt: skip
        self._drop_older()
        return final

    # -- when it ends without ready ----------------------------------------------------------

    def fail(self, message: str) -> None:
        """The attempt failed or was cancelled: the video is failed with ``message``, and
        nothing of the attempt stays (records and objects), even when the entry has moved
        on or is gone meanwhile."""
        try:
            self._write(state=VideoState.FAILED, playable=False, progress=0.0, message=message,
                        speed=None)  # fmt: skip
        except Superseded:
            pass  # moved on or deleted: nothing to mark, but our objects still go
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Delete what this attempt recorded and uploaded (no state is written)."""
        try:
            self.lifecycle._drop_attempt(self.video_id, self.prefix)
        except Exception:
            log.exception("could not delete the objects of attempt %s", self.prefix)

    def save_log(self, text: str) -> None:
        """Keep a failed attempt's ffmpeg log tail (private, ``keys.log_key``); not for an
        attempt that was superseded, whose video may be gone."""
        if self.lost is not None or not text:
            return
        self.lifecycle.store.put_bytes(
            self.log_key, text.encode(),
            content_type="text/plain; charset=utf-8", cache_control="no-store",
        )  # fmt: skip

    def _drop_older(self) -> None:
        """Delete the media of earlier generations and attempts (the entry points here now)."""
        store = self.lifecycle.store
        root = keys.video_root(self.video_id)
        mine = self.prefix[len(root) :]
        old = set()
        for obj in store.list(root):
            name = obj.key[len(root) :].split("/", 1)[0]
            generation = keys.attempt_generation(name)
            if name != mine and generation is not None and generation <= self.job.generation:
                old.add(name)
        for name in sorted(old):
            store.delete_prefix(f"{root}{name}/")
