"""A video's life under races (kubevod.lifecycle), on SQLite + files and on the
MongoDB-wire server + MinIO: only the current attempt's writes land, a delete during
a transcode leaves nothing, and a worker for a deleted video writes nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubevod.worker.pipeline import run

from kubevod.backends import open_catalog, open_store
from kubevod.catalog.base import Catalog
from kubevod.errors import NotFound, Superseded
from kubevod.jobs import TranscodeJob
from kubevod.lifecycle import Attempt, Lifecycle, queued_entry
from kubevod.models import Rendition, Segment, VideoState, new_video_id
from kubevod.store.base import ObjectStore
from tests.fixtures.media import make_video
from tests.integration.worker_media import fast_settings

pytestmark = pytest.mark.integration


@dataclass
class Backends:
    store: ObjectStore
    catalog: Catalog
    #: Whether two writers may hit one entry at the same instant. Not on the test's
    #: MongoDB stand-in: FerretDB 1.x on SQLite applies an update as a read and a
    #: whole-document write, so a write racing another one on the same document can
    #: put back what the other just changed (MongoDB itself writes a document
    #: atomically). There the writers take turns, and the fences are what is tested.
    concurrent_writers: bool = True

    @property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle(self.catalog, self.store)

    def keys(self, video_id: str) -> list[str]:
        """Every object of the video, media and logs."""
        return sorted(
            o.key
            for root in (f"videos/{video_id}/", f"logs/{video_id}/")
            for o in self.store.list(root)
        )


@pytest.fixture(params=["file+sqlite", "minio+mongo"])
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backends]:
    if request.param == "file+sqlite":
        catalog = open_catalog(f"sqlite://{tmp_path}/catalog.db")
        store = open_store((tmp_path / "media").as_uri())
    else:
        catalog = open_catalog(request.getfixturevalue("mongo_url"))
        store = open_store(request.getfixturevalue("minio").store_url)
        yield Backends(store, catalog, concurrent_writers=False)
        catalog.close()
        return
    yield Backends(store, catalog)
    catalog.close()


def _segment(attempt: Attempt, seq: int) -> Segment:
    return Segment(
        rendition="360p", seq=seq, duration=2.0, start=2.0 * seq, size=4,
        key=f"{attempt.prefix}/360p/{seq}.m4s",
    )  # fmt: skip


def _write_until_refused(attempt: Attempt, store: ObjectStore, count: int) -> int | None:
    """A worker's loop: upload, then record; the seq at which it was refused, else None."""
    for seq in range(count):
        segment = _segment(attempt, seq)
        store.put_bytes(segment.key, b"data", content_type="video/iso.segment")
        try:
            attempt.add_segment(segment)
            attempt.set_progress(seq, None)
        except Superseded:
            return seq
    return None


def test_of_two_generations_writing_at_once_only_the_current_one_lands(
    backends: Backends,
) -> None:
    lifecycle = backends.lifecycle
    job1 = TranscodeJob(video_id=new_video_id(), source="/src.mp4", generation=1)
    lifecycle.register(queued_entry(job1))
    old = lifecycle.begin(job1)
    refused: list[int | None] = []
    job2 = job1.model_copy(update={"generation": 2})
    if backends.concurrent_writers:
        writer = threading.Thread(
            target=lambda: refused.append(_write_until_refused(old, backends.store, 100_000))
        )
        writer.start()
        while not backends.catalog.segments(job1.video_id):
            time.sleep(0.005)
    else:
        assert _write_until_refused(old, backends.store, 5) is None
    # The spec changes while the old worker is still writing: the operator moves the
    # entry on, and the new generation's worker begins and writes at the same time.
    lifecycle.start_generation(queued_entry(job2))
    new = lifecycle.begin(job2)
    if not backends.concurrent_writers:  # the old worker's next writes, in turn
        refused.append(_write_until_refused(old, backends.store, 5))
    assert _write_until_refused(new, backends.store, 20) is None
    new.mark_playable([Rendition(name="360p", bandwidth=1, codecs="avc1.640028")])
    if backends.concurrent_writers:
        writer.join(30)
    assert refused and refused[0] is not None, "the old generation was never refused"
    with pytest.raises(Superseded, match="has moved on"):
        old.mark_playable([])
    # The cancelled old worker cleans up: it can neither clear the new generation's
    # segments nor mark it failed, and its own objects go.
    old.fail("transcode cancelled")
    video = backends.catalog.get(job1.video_id)
    assert (video.generation, video.prefix, video.state) == (
        2, new.prefix, VideoState.TRANSCODING,
    )  # fmt: skip
    assert video.playable and video.message != "transcode cancelled"
    segments = backends.catalog.segments(job1.video_id)
    assert [s.seq for s in segments] == list(range(20))
    assert all(s.key.startswith(new.prefix + "/") for s in segments)
    assert video.progress == 19.0
    assert not [k for k in backends.keys(job1.video_id) if k.startswith(old.prefix + "/")]
    # A stale event can never move the entry back to the old generation.
    lifecycle.start_generation(queued_entry(job1))
    assert backends.catalog.get(job1.video_id).generation == 2


def test_a_second_attempt_of_the_same_generation_fences_out_the_first(
    backends: Backends,
) -> None:
    """A pod retried while the first pod still runs (a node that came back)."""
    lifecycle = backends.lifecycle
    job = TranscodeJob(video_id=new_video_id(), source="/src.mp4")
    lifecycle.register(queued_entry(job))
    first = lifecycle.begin(job)
    assert _write_until_refused(first, backends.store, 3) is None
    second = lifecycle.begin(job)
    assert _write_until_refused(first, backends.store, 5) == 0
    assert _write_until_refused(second, backends.store, 2) is None
    first.fail("ffmpeg was killed")
    video = backends.catalog.get(job.video_id)
    assert video.prefix == second.prefix and video.state == VideoState.TRANSCODING
    assert [s.key for s in backends.catalog.segments(job.video_id)] == [
        f"{second.prefix}/360p/0.m4s", f"{second.prefix}/360p/1.m4s",
    ]  # fmt: skip
    assert all(k.startswith(second.prefix + "/") for k in backends.keys(job.video_id))


def test_deleting_a_video_during_its_transcode_leaves_nothing(
    backends: Backends, tmp_path: Path
) -> None:
    source = make_video(tmp_path / "long.mp4", seconds=20, width=640, height=360)
    job = TranscodeJob(video_id=new_video_id(), source=str(source), segment_seconds=1)
    backends.lifecycle.register(queued_entry(job))
    outcome: list[BaseException | None] = []

    def transcode() -> None:
        try:
            run(job, store=backends.store, catalog=backends.catalog,
                settings=fast_settings(x264_preset="medium"))  # fmt: skip
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=transcode)
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not backends.catalog.get(job.video_id).playable:
        time.sleep(0.05)
    assert backends.catalog.get(job.video_id).playable, "never became playable"
    # What the operator (or `kubevod rm` / the API in local mode) does; the worker keeps
    # running and uploading until its next write is refused.
    backends.lifecycle.purge(job.video_id)
    worker.join(60)
    assert outcome and isinstance(outcome[0], Superseded), outcome
    assert "not in the catalog" in str(outcome[0])
    assert backends.keys(job.video_id) == []
    with pytest.raises(NotFound):
        backends.catalog.get(job.video_id)
    assert backends.catalog.segments(job.video_id) == []


def test_a_worker_started_for_a_deleted_video_writes_nothing(
    backends: Backends, tmp_path: Path
) -> None:
    source = make_video(tmp_path / "clip.mp4", seconds=2, width=320, height=180)
    job = TranscodeJob(video_id=new_video_id(), source=str(source))
    with pytest.raises(Superseded, match=f"video {job.video_id} is not in the catalog"):
        run(job, store=backends.store, catalog=backends.catalog, settings=fast_settings())
    with pytest.raises(NotFound):
        backends.catalog.get(job.video_id)
    assert backends.keys(job.video_id) == []


def test_a_worker_of_an_older_generation_stops_before_writing(
    backends: Backends, tmp_path: Path
) -> None:
    """The Job of generation 1 starts late, after the spec moved to generation 2."""
    source = make_video(tmp_path / "clip.mp4", seconds=2, width=320, height=180)
    job = TranscodeJob(video_id=new_video_id(), source=str(source), generation=2)
    backends.lifecycle.register(queued_entry(job))
    stale = job.model_copy(update={"generation": 1})
    with pytest.raises(Superseded, match="has moved on"):
        run(stale, store=backends.store, catalog=backends.catalog, settings=fast_settings())
    video = backends.catalog.get(job.video_id)
    assert (video.generation, video.state, video.prefix) == (
        2, VideoState.QUEUED, f"videos/{job.video_id}/g2",
    )  # fmt: skip
    assert backends.keys(job.video_id) == []
