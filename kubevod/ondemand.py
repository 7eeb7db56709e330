"""On-demand chunks: which chunk a request for a missing segment needs, and the wait.

An on-demand video (``TranscodePolicy.ON_DEMAND``) is registered with its plan
(``Video.plan``), poster, audio and first chunk; its manifests list every
planned segment (``kubevod.manifests.common.manifest_segments``). When a player
asks the media origin for a segment that is not in the store yet, the origin
asks a :class:`ChunkScheduler` (local mode's pool) for that segment's chunk and
answers once the segment exists, within a bounded wait. The scheduler moves the
chunk to the front, encodes it once however many requests ask for it, and goes
on from there while someone watches.

Two schedulers: local mode's pool, in the server's own process, and
:class:`CatalogWants` where the worker runs elsewhere (the cluster's warm chunk
workers, ``kubevod.worker.chunkd``): the request is written to the catalog,
which every API replica and every worker shares, and a worker takes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from kubevod import keys
from kubevod.catalog.base import Catalog
from kubevod.catalog.common import is_background
from kubevod.errors import NotFound
from kubevod.models import TrackKind, Video
from kubevod.store.base import ObjectInfo, ObjectStore
from kubevod.timeline import chunk_of

#: How often a waiting request looks for its segment (s).
POLL_SECONDS = 0.05


class ChunkScheduler(Protocol):
    """Encodes the chunk of an on-demand video a viewer reached."""

    def want(self, video: Video, chunk: int) -> None:
        """Encode ``chunk`` of ``video`` next (once, however often it is asked for)."""
        ...


def chunks_seconds(video: Video, chunks: set[int]) -> float:
    """How much of ``video`` the ``chunks`` span, seconds (pure)."""
    assert video.plan is not None
    planned = video.plan.chunks()
    fps = video.plan.fps
    total = 0.0
    for index in chunks:
        chunk = planned[index]
        end = video.plan.duration if chunk.end_frame is None else chunk.end_frame / fps
        total += end - chunk.start_frame / fps
    return total


class CatalogWants:
    """A :class:`ChunkScheduler` whose workers run elsewhere: the chunk, and the one after
    it so playback runs on, are asked for in the catalog (``Catalog.want_chunks``).

    A video whose encoded chunks span ``promote_after_seconds`` has been watched
    that long (only viewers make chunks after the registration's): it is popular,
    and every chunk it still lacks is asked for in the background, front to back,
    after every viewer's want (once: while background wants of it are waiting,
    nothing more is asked).
    """

    def __init__(self, catalog: Catalog, promote_after_seconds: float = 600.0) -> None:
        self.catalog = catalog
        self.promote_after = promote_after_seconds

    def want(self, video: Video, chunk: int) -> None:
        if video.plan is None:
            return
        total, done = len(video.plan.chunks()), set(video.chunks_done)
        wanted = [c for c in (chunk, chunk + 1) if 0 <= c < total and c not in done]
        if chunk not in wanted:
            return
        self.catalog.want_chunks(video.id, video.generation, wanted)
        if chunks_seconds(video, done) < self.promote_after:
            return
        if any(is_background(w.asked_at) for w in self.catalog.chunk_wants(video.id)):
            return
        rest = [c for c in range(total) if c not in done and c not in wanted]
        if rest:
            self.catalog.want_chunks(video.id, video.generation, rest, background=True)


def wanted_chunk(video: Video, key: str) -> int | None:
    """The chunk that makes object ``key`` of ``video``, when it is a planned segment of a
    video rendition whose chunk is not encoded yet (pure); None otherwise (a missing
    object that no encode will make: 404)."""
    if video.plan is None or video.complete:
        return None
    prefix = video.media_prefix().rstrip("/") + "/"
    if not key.startswith(prefix):
        return None
    rendition, _, name = key[len(prefix) :].partition("/")
    stem, dot, ext = name.partition(".")
    kinds = {r.name: r.kind for r in video.renditions}
    rung = rendition in video.plan.rungs or kinds.get(rendition) == TrackKind.VIDEO
    if not rung or (dot, ext) != (".", "m4s") or not stem.isdigit():
        return None
    seq = int(stem)
    if keys.segment_key(video.media_prefix(), rendition, seq) != key:
        return None  # leading zeros and the like: not a name the worker writes
    chunks = video.plan.chunks()
    try:
        chunk = chunk_of(chunks, seq)
    except IndexError:
        return None
    return None if chunk.index in video.chunks_done else chunk.index


def wait_for(
    store: ObjectStore,
    key: str,
    timeout: float,
    *,
    give_up: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ObjectInfo | None:
    """Wait up to ``timeout`` seconds for ``key`` to exist; its metadata, or None.

    ``give_up`` is asked between looks (the video was deleted, its chunk failed).
    """
    deadline = clock() + timeout
    while True:
        try:
            return store.stat(key)
        except NotFound:
            pass
        if clock() >= deadline or give_up():
            return None
        sleep(POLL_SECONDS)
