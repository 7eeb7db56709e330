"""The cluster's on-demand path without the cluster: a video registered on demand by the
real pipeline (what its Job runs), the real API answering players, and warm chunk
workers (``kubevod.worker.chunkd``, what the chunk-worker Deployment runs) that share
only the catalog and the store with it, as pods do.

The source is fetched over HTTP from a server on loopback (allowed by the fetch
policy, as a NAS would be), which counts what it serves: a worker fetches a
source once for all of the chunks it encodes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import m3u8
import pytest
from kubevod.api.app import create_app
from kubevod.api.settings import ApiSettings
from kubevod.worker import pipeline
from kubevod.worker.chunkd import LEASE_SECONDS, ChunkWorker

from kubevod.catalog.sqlite import SqliteCatalog
from kubevod.jobs import TranscodeJob
from kubevod.lifecycle import Lifecycle, queued_entry
from kubevod.models import TranscodePolicy, Video, VideoState, new_video_id
from kubevod.store.file import FileStore
from tests.fixtures.media import make_video
from tests.fixtures.util import serve_app, until_video
from tests.integration.worker_media import fast_settings

pytestmark = pytest.mark.integration


@dataclass
class Source:
    url: str
    folder: Path
    fetches: list[str] = field(default_factory=list)

    def add(self, name: str, **kw: Any) -> str:
        """Another film served beside it (``make_video``'s arguments); its URL."""
        make_video(self.folder / name, **kw)
        return self.url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    folder = tmp_path_factory.mktemp("nas")
    make_video(
        folder / "film.mp4", seconds=24,
        extra_output_args=["-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-c:a", "aac"],
    )  # fmt: skip
    served = Source("", folder)

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self) -> None:
            served.fetches.append(self.path)
            super().do_GET()

        def log_message(self, *_: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    served.url = f"http://127.0.0.1:{httpd.server_address[1]}/film.mp4"
    yield served
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def long_film(source: Source) -> str:
    """A film whose 30 s chunks take seconds to encode (their ladder tops at 540p)."""
    return source.add("long.mp4", seconds=40, width=960, height=540)


def _settings(chunk_seconds: float = 4) -> Any:
    return fast_settings(on_demand_chunk_seconds=chunk_seconds, fetch_allow=["127.0.0.1/32"])


@dataclass
class Cluster:
    """The parts a cluster runs, on one catalog and one store."""

    url: str
    catalog: SqliteCatalog
    store: FileStore
    workers: list[ChunkWorker]

    def register(self, source: str, chunk_seconds: float = 4) -> Video:
        """What an on-demand VideoAsset's Job does: register it and its first chunk."""
        job = TranscodeJob(
            video_id=new_video_id(), source=source, segment_seconds=2,
            policy=TranscodePolicy.ON_DEMAND,
        )  # fmt: skip
        Lifecycle(self.catalog, self.store).register(queued_entry(job))
        settings = _settings(chunk_seconds)
        return pipeline.run(job, store=self.store, catalog=self.catalog, settings=settings)

    def segment(self, video: Video, rendition: str, index: int) -> httpx.Response:
        playlist = httpx.get(f"{self.url}/v/{video.id}/{rendition}.m3u8", timeout=10)
        assert playlist.status_code == 200, playlist.text
        uri = (
            m3u8.loads(playlist.text, uri=f"{self.url}/v/{video.id}/").segments[index].absolute_uri
        )
        return httpx.get(uri, timeout=60)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with _cluster(tmp_path, workers=2) as running:
        yield running


@pytest.fixture
def one_worker(tmp_path: Path) -> Iterator[Cluster]:
    with _cluster(tmp_path, workers=1) as running:
        yield running


@contextlib.contextmanager
def _cluster(
    tmp_path: Path, workers: int, promote_after: float = 600, lease: float = LEASE_SECONDS
) -> Iterator[Cluster]:
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    store = FileStore(tmp_path / "media")
    stop = threading.Event()
    chunk_workers = [
        ChunkWorker(
            catalog=catalog,
            store=store,
            holder=f"chunks-{n}",
            settings=_settings(),
            scratch=tmp_path / f"worker-{n}",
            stop=stop,
            lease_seconds=lease,
        )
        for n in range(workers)
    ]
    threads = [threading.Thread(target=w.serve, daemon=True) for w in chunk_workers]
    for thread in threads:
        thread.start()
    # No scheduler given: the API asks the catalog, as it does in the cluster.
    settings = ApiSettings(on_demand_wait_s=60, on_demand_promote_after_s=promote_after)
    served = serve_app(create_app(settings, store=store, catalog=catalog))
    try:
        yield Cluster(served.url, catalog, store, chunk_workers)
    finally:
        served.stop()
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        catalog.close()


def test_a_seek_is_answered_by_a_warm_worker_and_playback_runs_on(
    one_worker: Cluster, source: Source
) -> None:
    cluster = one_worker
    video = cluster.register(source.url)
    assert video.state == VideoState.READY and video.chunks_done == [0]
    assert video.plan is not None
    chunks = video.plan.chunks()
    assert len(chunks) >= 4
    fetched = len(source.fetches)  # the registration's own download
    target = chunks[3]
    answer = cluster.segment(video, "360p", target.first)
    assert answer.status_code == 200, answer.text
    assert answer.content[4:8] in (b"styp", b"moof")
    # The chunk and the one after it, so playback runs on, and nothing else.
    after = until_video(cluster.catalog, video, lambda v: {3, 4} <= set(v.chunks_done))
    assert {3, 4} <= set(after.chunks_done), after.chunks_done
    assert set(after.chunks_done) <= {0, 3, 4}
    # Every want answered; the worker fetched the film once for both chunks.
    until_video(cluster.catalog, video, lambda v: not cluster.catalog.chunk_wants(v.id))
    assert not cluster.catalog.chunk_wants(video.id)
    assert len(source.fetches) - fetched == 1, source.fetches
    # The segments of every rung of chunk 3 are stored.
    for rung in video.plan.rungs:
        assert cluster.segment(video, rung, target.first).status_code == 200
    # A later seek is encoded from the film the worker kept.
    assert cluster.segment(video, "360p", chunks[-1].first).status_code == 200
    assert len(source.fetches) - fetched == 1, source.fetches


@dataclass
class _Log:
    """What the catalog was asked to do, in order: takes and recorded chunks."""

    events: list[tuple[str, str, int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, catalog: SqliteCatalog) -> None:
        take, add = catalog.take_chunk, catalog.add_chunk

        def taken(holder: str, lease_seconds: float, **kw: Any) -> Any:
            want = take(holder, lease_seconds, **kw)
            if want is not None:
                self.note("take", want.video_id, want.chunk, holder)
            return want

        def added(video_id: str, index: int, **kw: Any) -> Video:
            video = add(video_id, index, **kw)
            self.note("done", video_id, index, "")
            return video

        catalog.take_chunk = taken  # type: ignore[method-assign]
        catalog.add_chunk = added  # type: ignore[method-assign]

    def note(self, what: str, video_id: str, chunk: int, holder: str) -> None:
        with self.lock:
            self.events.append((what, video_id, chunk, holder))

    def at(self, what: str, video_id: str, chunk: int) -> int:
        return next(i for i, e in enumerate(self.events) if e[:3] == (what, video_id, chunk))


def test_two_workers_take_two_seeks_at_once_and_each_chunk_is_encoded_once(
    cluster: Cluster, source: Source
) -> None:
    video = cluster.register(source.url)
    assert video.plan is not None
    chunks = video.plan.chunks()
    log = _Log()
    log.watch(cluster.catalog)
    cluster.catalog.want_chunks(video.id, video.generation, [2])
    cluster.catalog.want_chunks(video.id, video.generation, [len(chunks) - 1])
    done = until_video(cluster.catalog, video, lambda v: {2, len(chunks) - 1} <= set(v.chunks_done))
    assert {2, len(chunks) - 1} <= set(done.chunks_done)
    encoded = [e[1:3] for e in log.events if e[0] == "done"]
    assert len(encoded) == len(set(encoded)), encoded


def test_a_want_of_a_deleted_video_is_dropped_and_a_complete_video_needs_none(
    cluster: Cluster, source: Source
) -> None:
    cluster.catalog.want_chunks("gone-video", 1, [1, 2])
    video = cluster.register(source.url)
    assert video.plan is not None
    total = len(video.plan.chunks())
    cluster.catalog.want_chunks(video.id, video.generation, list(range(1, total)))
    complete = until_video(cluster.catalog, video, lambda v: v.complete, timeout=120)
    assert complete.complete and complete.state == VideoState.READY
    assert complete.progress == 100
    # The last chunk is recorded a moment before its worker drops the want it answered.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        cluster.catalog.chunk_wants("gone-video") or cluster.catalog.chunk_wants(video.id)
    ):
        time.sleep(0.1)
    assert not cluster.catalog.chunk_wants("gone-video")
    assert not cluster.catalog.chunk_wants(video.id)


def test_a_video_whose_source_is_a_path_is_left_to_its_job(
    cluster: Cluster, source: Source, tmp_path: Path
) -> None:
    film = make_video(tmp_path / "local.mp4", seconds=12)
    video = cluster.register(str(film))
    cluster.catalog.want_chunks(video.id, video.generation, [1])
    deadline = time.monotonic() + 10
    while cluster.catalog.chunk_wants(video.id) and time.monotonic() < deadline:
        time.sleep(0.1)
    after = cluster.catalog.get(video.id)
    assert not cluster.catalog.chunk_wants(video.id)  # dropped, not failed
    assert after.state == VideoState.READY and 1 not in after.chunks_done


def test_a_video_watched_long_enough_is_completed_in_the_background(
    tmp_path: Path, source: Source
) -> None:
    with _cluster(tmp_path, workers=1, promote_after=8) as cluster:
        video = cluster.register(source.url)
        assert video.plan is not None
        chunks = video.plan.chunks()
        # A viewer watches the first chunks: below the limit, nothing more is asked.
        assert cluster.segment(video, "360p", chunks[1].first).status_code == 200
        watched = until_video(cluster.catalog, video, lambda v: {1, 2} <= set(v.chunks_done))
        assert not watched.complete
        # Past it, the next request asks for the rest in the background.
        assert cluster.segment(video, "360p", chunks[3].first).status_code == 200
        complete = until_video(cluster.catalog, video, lambda v: v.complete, timeout=120)
        assert complete.complete and complete.progress == 100
        assert complete.state == VideoState.READY
        until_video(
            cluster.catalog, video, lambda v: not cluster.catalog.chunk_wants(v.id), timeout=10
        )
        assert not cluster.catalog.chunk_wants(video.id)


def test_a_chunk_that_takes_longer_than_its_lease_is_kept_by_its_worker(
    tmp_path: Path, long_film: str
) -> None:
    """Two workers, a 1 s lease, chunks that take longer: each chunk is taken once."""
    with _cluster(tmp_path, workers=2, lease=1.0) as cluster:
        video = cluster.register(long_film, chunk_seconds=30)
        assert video.plan is not None
        total = len(video.plan.chunks())
        log = _Log()
        log.watch(cluster.catalog)
        started = time.monotonic()
        cluster.catalog.want_chunks(video.id, video.generation, [1])
        done = until_video(cluster.catalog, video, lambda v: 1 in v.chunks_done, timeout=120)
        took = time.monotonic() - started
        assert 1 in done.chunks_done
        assert took > 2.5, f"the chunk took {took:.1f} s: not longer than its lease"
        time.sleep(1.5)  # past a lease: a worker that lost it would take it now
        takes = [e for e in log.events if e[0] == "take"]
        assert takes == [("take", video.id, 1, takes[0][3])], takes  # once, by one worker
        assert [e for e in log.events if e[0] == "done"] == [("done", video.id, 1, "")]
        assert not cluster.catalog.chunk_wants(video.id)
        assert total >= 2


def test_a_background_chunk_gives_way_to_another_videos_viewer(
    tmp_path: Path, source: Source, long_film: str
) -> None:
    """One worker completing a popular film in the background; a viewer of another video
    seeks: the background chunk stops for the viewer's, and is encoded afterwards."""
    with _cluster(tmp_path, workers=1) as cluster:
        # A chunk that takes seconds to encode, so the viewer arrives during it.
        popular = cluster.register(long_film, chunk_seconds=30)
        other = cluster.register(source.url)
        assert popular.plan is not None and other.plan is not None
        rest = list(range(1, len(popular.plan.chunks())))
        log = _Log()
        log.watch(cluster.catalog)
        cluster.catalog.want_chunks(popular.id, popular.generation, rest, background=True)
        deadline = time.monotonic() + 30
        while not any(e[0] == "take" for e in log.events) and time.monotonic() < deadline:
            time.sleep(0.05)
        (first,) = [e for e in log.events if e[0] == "take"]
        assert first[1:3] == (popular.id, 1)
        asked = time.monotonic()
        seek = other.plan.chunks()[3]
        answer = cluster.segment(other, "360p", seek.first)
        waited = time.monotonic() - asked
        assert answer.status_code == 200, answer.text
        # The viewer's chunk was recorded before the background chunk it interrupted.
        until_video(cluster.catalog, other, lambda v: 3 in v.chunks_done)
        complete = until_video(cluster.catalog, popular, lambda v: v.complete, timeout=180)
        assert complete.complete, complete.chunks_done
        assert log.at("done", other.id, 3) < log.at("done", popular.id, 1), (waited, log.events)
        # The interrupted chunk's want was freed, not dropped: it was taken again.
        retakes = [e for e in log.events if e[:3] == ("take", popular.id, 1)]
        assert len(retakes) == 2, log.events
