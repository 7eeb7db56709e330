"""On-demand videos served by the real API over HTTP, with local mode's real pool and
pipeline on FileStore + SQLite: what a viewer meets.

A video added on demand is listed at once with its poster and duration and plays
from 0:00; its manifests list the whole timeline; a request for a segment that is
not encoded yet is answered once its chunk is encoded (one encode however many
ask); a popular video is completed in the background; a chunk whose source broke
ends the video with the reason and nothing of it left; a video deleted while a
viewer waits leaves nothing. The pool's ``run`` is the real pipeline, wrapped
only to count which chunks it encodes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import m3u8
import pytest
from kubevod.api.app import create_app
from kubevod.api.settings import ApiSettings
from kubevod.worker import pipeline
from kubevod.worker.mp4 import parse_fragments, parse_init

from kubevod import keys
from kubevod.catalog.sqlite import SqliteCatalog
from kubevod.jobs import TranscodeJob
from kubevod.lifecycle import Lifecycle, queued_entry
from kubevod.local.pool import LocalPool
from kubevod.manifests.common import media_url
from kubevod.models import TranscodePolicy, Video, VideoState, new_video_id
from kubevod.store.file import FileStore
from kubevod.timeline import Chunk
from tests.fixtures.media import make_video
from tests.fixtures.util import serve_app, until_video
from tests.integration.worker_media import check_ready_video, fast_settings

pytestmark = pytest.mark.integration

ffmpeg = fast_settings().ffmpeg


def _source(path: Path, seconds: int = 24) -> Path:
    """640x360 30 fps testsrc2 and a tone, a keyframe every 2 s."""
    return make_video(
        path, seconds=seconds,
        extra_output_args=["-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-c:a", "aac"],
    )  # fmt: skip


@dataclass
class Site:
    url: str
    catalog: SqliteCatalog
    store: FileStore
    pool: LocalPool
    encoded: Counter[tuple[str, int]]  # (video id, chunk) -> times encoded

    def register(self, source: Path, *, wait: bool = True) -> Video:
        """Add ``source`` on demand as local mode does, and wait for its registration."""
        job = TranscodeJob(
            video_id=new_video_id(), source=str(source), segment_seconds=2,
            policy=TranscodePolicy.ON_DEMAND,
        )  # fmt: skip
        Lifecycle(self.catalog, self.store).register(queued_entry(job))
        self.pool.submit(job)
        if wait:
            assert self.pool.wait_for(job.video_id, timeout=120)
        return self.catalog.get(job.video_id)

    def playlist(self, video: Video, rendition: str) -> m3u8.M3U8:
        answer = httpx.get(f"{self.url}/v/{video.id}/{rendition}.m3u8", timeout=10)
        assert answer.status_code == 200, answer.text
        return m3u8.loads(answer.text, uri=f"{self.url}/v/{video.id}/")

    def get(self, uri: str, timeout: float = 60) -> httpx.Response:
        return httpx.get(uri if uri.startswith("http") else self.url + uri, timeout=timeout)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with _site(tmp_path, on_demand_chunk_seconds=4) as running:
        yield running


@contextlib.contextmanager
def _site(tmp_path: Path, **worker_settings: Any) -> Iterator[Site]:
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    store = FileStore(tmp_path / "media")
    encoded: Counter[tuple[str, int]] = Counter()

    def counted(job: TranscodeJob, **kwargs: Any) -> Video:
        demand = kwargs.pop("demand", None)
        if demand is not None:

            def next_chunk() -> int | None:
                chunk = demand()
                if chunk is not None:
                    encoded[(job.video_id, chunk)] += 1
                return chunk

            kwargs["demand"] = next_chunk
        return pipeline.run(job, **kwargs)

    pool = LocalPool(
        store=store, catalog=catalog, scratch=tmp_path / "scratch", run=counted,
        worker_settings=fast_settings(**worker_settings), promote_after_seconds=10,
    )  # fmt: skip
    pool.start()
    app = create_app(ApiSettings(on_demand_wait_s=30), store=store, catalog=catalog, chunks=pool)
    served = serve_app(app, lifespan="on")
    try:
        yield Site(served.url, catalog, store, pool, encoded)
    finally:
        served.stop()
        pool.shutdown()
        catalog.close()


def _segment_start(site: Site, video: Video, rendition: str, body: bytes) -> float:
    init = parse_init(site.store.get(f"{video.media_prefix()}/{rendition}/init.mp4"))
    frag = parse_fragments(body, init.default_sample_duration)
    assert frag.starts_with_sync
    return frag.start(init.timescale)


def test_an_on_demand_video_is_listed_at_once_and_a_seek_waits_only_for_its_chunk(
    site: Site, tmp_path: Path
) -> None:
    started = time.monotonic()
    video = site.register(_source(tmp_path / "film.mp4"))
    registered = time.monotonic() - started
    assert video.state == VideoState.READY and video.playable, video.message
    assert video.poster_key and video.duration == pytest.approx(24, abs=0.1)
    assert video.plan is not None and video.chunks_done == [0]
    total = len(video.plan.chunks())
    assert total >= 4 and 0 < video.progress < 100
    assert "1 of" in video.message and "when watched" in video.message
    # Only the first chunk of each rung is encoded; the audio is whole.
    first = video.plan.chunks()[0]
    assert [s.seq for s in site.catalog.segments(video.id, "360p")] == list(range(first.count))
    # The playlists list the whole timeline, as VOD.
    listing = site.playlist(video, "360p")
    assert listing.is_endlist and listing.playlist_type == "vod"
    assert len(listing.segments) == len(video.plan.segments())
    assert sum(s.duration for s in listing.segments) == pytest.approx(24, abs=0.05)
    # A seek to 20 s: the segment there is encoded when asked for, and is the right one.
    target = next(i for i, (start, _) in enumerate(video.plan.segments()) if start >= 20)
    asked = time.monotonic()
    answer = site.get(listing.segments[target].absolute_uri)
    waited = time.monotonic() - asked
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "video/mp4"
    assert _segment_start(site, video, "360p", answer.content) == pytest.approx(
        video.plan.segments()[target][0], abs=0.002
    )
    assert waited < registered + 10, (waited, registered)  # one chunk, not the whole video
    # The segment is answered as soon as it is stored; its chunk is then recorded done
    # (and the one after it follows), not the others.
    wanted = next(c.index for c in video.plan.chunks() if c.first <= target <= c.last)
    after = until_video(site.catalog, video, lambda v: wanted in v.chunks_done)
    assert set(after.chunks_done) < set(range(total))
    assert after.state == VideoState.READY and not after.complete


def _stored_at(site: Site, video: Video, rendition: str, chunk: Chunk) -> list[int]:
    """When each segment of ``chunk`` of ``rendition`` was stored (ns, the file's mtime)."""
    prefix = video.media_prefix()
    return [
        (site.store.root / keys.segment_key(prefix, rendition, seq)).stat().st_mtime_ns
        for seq in range(chunk.first, chunk.last + 1)
    ]


def test_a_sought_chunk_has_its_lowest_rung_encoded_first(site: Site, tmp_path: Path) -> None:
    video = site.register(_source(tmp_path / "film.mp4"))
    assert video.plan is not None
    sought, after = video.plan.chunks()[3:5]  # nothing before chunk 3 is encoded
    listing = site.playlist(video, "360p")  # the top rung of this 360p source
    answer = site.get(listing.segments[sought.first].absolute_uri)
    assert answer.status_code == 200, answer.text
    assert _segment_start(site, video, "360p", answer.content) == pytest.approx(
        video.plan.segments()[sought.first][0], abs=0.002
    )
    done = until_video(
        site.catalog, video, lambda v: {sought.index, after.index} <= set(v.chunks_done)
    )
    assert {sought.index, after.index} <= set(done.chunks_done), done.chunks_done
    # The sought chunk: every 240p segment was stored before any 360p one (an ffmpeg of
    # its own, mostly decoding, ran first), then the 360p ones, on the same timeline.
    assert max(_stored_at(site, video, "240p", sought)) < min(
        _stored_at(site, video, "360p", sought)
    )
    # Playback running on into the next chunk: one ffmpeg for both rungs (cheapest).
    assert max(_stored_at(site, video, "240p", after)) > min(_stored_at(site, video, "360p", after))
    for rendition in ("360p", "240p"):
        starts = [
            s.start for s in site.catalog.segments(video.id, rendition)
            if sought.first <= s.seq <= after.last
        ]  # fmt: skip
        planned = video.plan.segments()[sought.first : after.last + 1]
        assert starts == pytest.approx([start for start, _ in planned], abs=0.002)
    assert site.encoded[(video.id, sought.index)] == 1


def test_many_requests_for_one_missing_chunk_make_one_encode(site: Site, tmp_path: Path) -> None:
    video = site.register(_source(tmp_path / "film.mp4"))
    assert video.plan is not None
    chunk = video.plan.chunks()[2]
    uris = []
    for rendition in ("360p", "240p"):
        listing = site.playlist(video, rendition)
        uris += [listing.segments[seq].absolute_uri for seq in range(chunk.first, chunk.last + 1)]
    with concurrent.futures.ThreadPoolExecutor(len(uris) * 2) as pool:
        answers = list(pool.map(site.get, uris * 2))
    assert [a.status_code for a in answers] == [200] * len(answers)
    assert site.encoded[(video.id, chunk.index)] == 1
    for a, b in zip(answers[: len(uris)], answers[len(uris) :], strict=True):
        assert a.content == b.content


def test_a_popular_video_is_completed_in_the_background(site: Site, tmp_path: Path) -> None:
    video = site.register(_source(tmp_path / "film.mp4", seconds=20))
    assert video.plan is not None
    listing = site.playlist(video, "240p")
    chunks = video.plan.chunks()
    for chunk in chunks[1:4]:  # 12 s of it reached: popular (promote_after_seconds=10)
        assert site.get(listing.segments[chunk.first].absolute_uri).status_code == 200
    # The last chunk is recorded a moment before the video is marked ready as a whole.
    done = until_video(
        site.catalog, video, lambda v: v.complete and "all" in v.message, timeout=120
    )
    assert done.complete and done.progress == 100.0, (done.message, done.chunks_done)
    assert done.chunks_done == list(range(len(chunks)))
    assert "all" in done.message, done.message
    check_ready_video(done, site.catalog, site.store, tmp_path / "dl", segment_seconds=2)
    assert all(n == 1 for (vid, _), n in site.encoded.items() if vid == video.id), site.encoded
    # Seek-bar thumbnails once complete: each chunk tiled its own, every cue's sheet is there.
    assert done.trickplay is not None
    index = site.get(media_url(done.trickplay.vtt_key))
    assert index.status_code == 200 and index.text.startswith("WEBVTT")
    sheets = {ln.split("#", 1)[0] for ln in index.text.splitlines() if "#xywh=" in ln}
    assert len(sheets) == len(chunks)  # 20 s, a thumbnail a second: one sheet per chunk
    base = done.trickplay.vtt_key.rsplit("/", 1)[0]
    for sheet in sheets:
        assert site.get(media_url(f"{base}/{sheet}")).headers["content-type"] == "image/jpeg"
    # A complete video lists what was recorded, the same timeline.
    assert len(site.playlist(done, "360p").segments) == len(video.plan.segments())


def test_a_chunk_whose_source_broke_fails_the_video_and_leaves_nothing(
    site: Site, tmp_path: Path
) -> None:
    source = _source(tmp_path / "film.mp4")
    video = site.register(source)
    listing = site.playlist(video, "360p")
    source.write_bytes(b"\x00" * 4096)  # the file under the library is damaged meanwhile
    answer = site.get(listing.segments[-1].absolute_uri)
    assert answer.status_code == 404, answer.text
    failed = site.catalog.get(video.id)
    assert failed.state == VideoState.FAILED
    assert failed.message and "source" in failed.message.lower(), failed.message
    assert list(site.store.list(f"videos/{video.id}/")) == []


def test_a_video_deleted_while_a_viewer_waits_leaves_nothing(site: Site, tmp_path: Path) -> None:
    video = site.register(_source(tmp_path / "film.mp4"))
    listing = site.playlist(video, "360p")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(site.get, listing.segments[-1].absolute_uri)
        assert video.plan is not None
        last = (video.id, video.plan.chunks()[-1].index)
        deadline = time.monotonic() + 30
        while site.encoded[last] == 0:  # until the chunk's encode begins (a sleep raced it)
            assert time.monotonic() < deadline, "the chunk was never started"
            time.sleep(0.005)
        site.pool.cancel(video.id)
        Lifecycle(site.catalog, site.store).purge(video.id)
        answer = waiting.result(timeout=60)
    assert answer.status_code == 404, answer.text
    assert site.pool.wait_for(video.id, timeout=60)
    time.sleep(0.3)
    assert list(site.store.list(f"videos/{video.id}/")) == []


def test_a_segment_asked_for_while_the_video_registers_waits_for_it(
    site: Site, tmp_path: Path
) -> None:
    queued = site.register(_source(tmp_path / "film.mp4"), wait=False)
    video = until_video(site.catalog, queued, lambda v: v.plan is not None)  # probed, plan recorded
    assert video.plan is not None
    was = video.state  # transcoding while its first chunk is encoded (ready if it was quick)
    seq = len(video.plan.segments()) - 2
    key = keys.segment_key(video.media_prefix(), "360p", seq)
    answer = site.get(site.url + media_url(key))
    assert answer.status_code == 200, (was, answer.text)
    assert _segment_start(site, video, "360p", answer.content) == pytest.approx(
        video.plan.segments()[seq][0], abs=0.002
    )


def test_a_seek_while_the_video_registers_stops_its_first_chunk_once_watchable(
    tmp_path: Path,
) -> None:
    # A first chunk of 100 s: the registration encodes for seconds after the video is
    # watchable, and a viewer who seeks meanwhile waits for the chunk sought, not that.
    with _site(tmp_path, on_demand_chunk_seconds=4, on_demand_first_chunk_seconds=100) as site:
        queued = site.register(_source(tmp_path / "film.mp4", seconds=120), wait=False)
        video = until_video(site.catalog, queued, lambda v: v.playable)
        assert video.playable and video.plan is not None
        first, *_, last = video.plan.chunks()
        assert first.count >= 50  # 100 s of 2 s segments
        listing = site.playlist(video, "240p")
        answer = site.get(listing.segments[last.first].absolute_uri)
        assert answer.status_code == 200, answer.text
        assert _segment_start(site, video, "240p", answer.content) == pytest.approx(
            video.plan.segments()[last.first][0], abs=0.002
        )
        registered = until_video(site.catalog, video, lambda v: last.index in v.chunks_done)
        # The first chunk was stopped after its first segments: it is not done, what was
        # recorded of it plays, and the rest of it is encoded when a viewer gets there.
        assert first.index not in registered.chunks_done, registered.message
        assert "0 of" in registered.message or "1 of" in registered.message
        recorded = [s.seq for s in site.catalog.segments(video.id, "240p")]
        assert 0 in recorded and first.last not in recorded
        assert site.get(listing.segments[0].absolute_uri).status_code == 200
        later = site.get(listing.segments[first.last].absolute_uri)
        assert later.status_code == 200, later.text
        assert _segment_start(site, video, "240p", later.content) == pytest.approx(
            video.plan.segments()[first.last][0], abs=0.002
        )
        assert (
            first.index
            in until_video(site.catalog, video, lambda v: first.index in v.chunks_done).chunks_done
        )
