"""Local mode's chunk scheduling, decided by the pool (``LocalPool.want`` and the chunk
job's questions), on a real SQLite catalog; no job runs (the pool is not started)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from kubevod.catalog.sqlite import SqliteCatalog
from kubevod.local.pool import WATCHED, LocalPool
from kubevod.models import MediaPlan, TranscodePolicy, Video, VideoState
from kubevod.store.file import FileStore

#: 40 s, a 1 s first segment then 4 s ones, chunks of at least 4 s: 10 chunks.
PLAN = MediaPlan(first=1, every=4, fps=30, duration=40, chunk_seconds=4)


@pytest.fixture
def pool(tmp_path: Path) -> LocalPool:
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    return LocalPool(
        store=FileStore(tmp_path / "media"), catalog=catalog, scratch=tmp_path / "scratch",
        promote_after_seconds=8, linger=0.0,
    )  # fmt: skip


def _video(done: list[int]) -> Video:
    return Video(
        id="film", source="/films/a.mkv", state=VideoState.READY, playable=True,
        policy=TranscodePolicy.ON_DEMAND, plan=PLAN, chunks_done=done,
    )  # fmt: skip


def _queued(pool: LocalPool) -> list[tuple[int, list[int] | None]]:
    items = list(pool._queue.queue)  # the pool's own queue, in priority order
    return [(priority, job.chunks if job else None) for priority, _, job in sorted(items)]


def test_a_viewer_reaching_a_chunk_queues_one_chunk_job_before_anything_else(
    pool: LocalPool,
) -> None:
    video = _video([0])
    assert len(PLAN.chunks()) == 10
    pool.want(video, 3)
    pool.want(video, 3)  # asked again (another rung, a retry): still one job
    assert _queued(pool) == [(WATCHED, [])]
    # The job asks for its chunks: the one reached, then the one after it.
    assert pool._next_chunk(video.id) == 3
    assert pool._next_chunk(video.id) == 4
    assert pool._next_chunk(video.id) is None


def test_playback_running_on_does_not_stop_the_chunk_being_encoded(pool: LocalPool) -> None:
    video = _video([0])
    pool.want(video, 1)
    assert pool._next_chunk(video.id) == 1
    pool.want(video, 2)  # the player's buffer reaching the next chunk
    assert not pool._preempted(video.id)
    assert pool._next_chunk(video.id) == 2  # chunk 1 done, on to the next
    pool.want(video, 3)
    assert not pool._preempted(video.id)
    pool.want(video, 6)  # farther than the next one: a seek
    assert pool._preempted(video.id)


def test_a_seek_stops_the_chunk_being_encoded_which_comes_back_after(pool: LocalPool) -> None:
    video = _video([0])
    pool.want(video, 1)
    assert pool._next_chunk(video.id) == 1
    pool.want(video, 7)  # a seek to 7's time while chunk 1 is encoded
    assert pool._preempted(video.id)
    assert pool._next_chunk(video.id) == 7
    assert not pool._preempted(video.id)
    assert [pool._next_chunk(video.id) for _ in range(4)] == [8, 1, 2, None]


def test_a_seek_while_the_video_registers_stops_its_first_chunk(pool: LocalPool) -> None:
    video = _video([])  # registering: its first chunk is being encoded
    pool._running[video.id] = threading.Event()
    pool.want(video, 1)  # the player at 0:00 reaching the next chunk: no seek
    assert not pool._preempted(video.id)
    pool.want(video, 6)  # a seek: the registration stops its first chunk once watchable
    assert pool._preempted(video.id)
    # The chunk job that follows takes the sought chunk first and the one after it.
    assert pool._next_chunk(video.id) == 6
    assert not pool._preempted(video.id)
    assert [pool._next_chunk(video.id) for _ in range(3)] == [7, 1, 2]


def test_a_chunk_job_with_nothing_to_do_waits_briefly_for_the_next_request(
    tmp_path: Path,
) -> None:
    pool = LocalPool(
        store=FileStore(tmp_path / "media"), catalog=SqliteCatalog(tmp_path / "c.db"),
        scratch=tmp_path / "scratch", linger=5.0,
    )  # fmt: skip
    video = _video([0])
    pool.want(video, 8)
    pool._queue.get()  # the job runs
    pool._queued[WATCHED] -= 1
    assert [pool._next_chunk(video.id), pool._next_chunk(video.id)] == [8, 9]
    later = threading.Timer(0.3, pool.want, args=(video, 3))
    later.start()
    started = time.monotonic()
    assert pool._next_chunk(video.id) == 3  # the player's next request, same job
    assert time.monotonic() - started < 4
    later.join()


def test_done_chunks_and_chunks_outside_the_plan_are_never_queued(pool: LocalPool) -> None:
    video = _video([0, 5])
    pool.want(video, 5)
    pool.want(video, 10)
    pool.want(video, -1)
    assert _queued(pool) == []


def test_a_popular_video_has_its_other_chunks_encoded_behind_every_viewer(
    pool: LocalPool,
) -> None:
    video = _video([0])
    pool.want(video, 2)  # 4 s of it reached, under promote_after_seconds (8)
    wants = pool._wants[video.id]
    assert not wants.promoted and not wants.background
    pool.want(video, 4)  # 8 s: popular
    assert wants.promoted
    assert list(wants.urgent) == [4, 5, 2, 3]  # what viewers reached, and the next ones
    assert list(wants.background) == [1, 6, 7, 8, 9]  # the rest, in order
    # The video's chunk job runs (taken off the queue), another viewer waits for theirs.
    assert pool._queue.get()[2] is not None
    pool._queued[WATCHED] -= 1
    other = _video([0]).model_copy(update={"id": "other"})
    pool.want(other, 4)
    assert [pool._next_chunk(video.id) for _ in range(5)] == [4, 5, 2, 3, None]
    assert list(wants.background) == [1, 6, 7, 8, 9]  # held back behind the viewer's job
    # Once no viewer waits, the background chunks follow, one by one.
    assert pool._queue.get()[2] is not None
    pool._queued[WATCHED] -= 1
    assert [pool._next_chunk(video.id) for _ in range(6)] == [1, 6, 7, 8, 9, None]
