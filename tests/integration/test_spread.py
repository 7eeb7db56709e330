"""One video spread over several pods (an Indexed Job's), on real ffmpeg and a real store.

What a viewer and an operator rely on: pods started in any order share one
plan and one attempt; the first registers it and chunk 0 (the video is
playable then), every pod encodes its share of the other chunks, and whichever
records the last one completes the video, which plays exactly as the
front-to-back ladder does. A pod with nothing left to do ends at once, and a
video deleted while a pod waits stops it with nothing left behind.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import re
import subprocess
import threading
import time
from pathlib import Path

import httpx
import m3u8
import pytest
from kubevod.api.app import create_app
from kubevod.api.settings import ApiSettings
from kubevod.worker.pipeline import run

from kubevod.backends import open_catalog
from kubevod.catalog.base import Catalog, Fence
from kubevod.catalog.sqlite import SqliteCatalog
from kubevod.errors import Superseded, Unavailable
from kubevod.jobs import TranscodeJob
from kubevod.models import TrackKind, TranscodePolicy, Video, VideoState, new_video_id
from kubevod.store.file import FileStore
from tests.fixtures.jobs import scheduled
from tests.fixtures.util import serve_app
from tests.integration.test_chunks import _frames, _source, _transcode, ffmpeg
from tests.integration.worker_media import check_ready_video, download_rendition, fast_settings

pytestmark = pytest.mark.integration

SPREAD = {
    "spread_chunk_seconds": 4,
    "spread_first_chunk_seconds": 2,
    "spread_join_poll_seconds": 0.1,
}


class ChunkLog(SqliteCatalog):
    """The real catalog, noting which pod (thread) recorded which chunk."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.by: dict[int, str] = {}

    def add_chunk(self, video_id: str, index: int, *, fence: Fence | None = None) -> Video:
        video = super().add_chunk(video_id, index, fence=fence)
        self.by[index] = threading.current_thread().name
        return video


def _spread_job(root: Path, catalog: Catalog) -> tuple[TranscodeJob, FileStore]:
    """A 13 s source's video, to be spread over two pods, registered in ``catalog``."""
    source = _source(root / "film.mp4")
    job = TranscodeJob(video_id=new_video_id(), source=str(source), segment_seconds=2, pods=2)
    scheduled(catalog, job)
    return job, FileStore(root / "media")


def _pods(
    root: Path, job: TranscodeJob, order: list[int], *, delay: float = 0.0
) -> tuple[dict[int, Video | BaseException], ChunkLog, FileStore]:
    """Run ``job``'s pods as threads, started in ``order`` (``delay`` s apart)."""
    catalog = ChunkLog(root / "catalog.db")
    store = FileStore(root / "media")
    scheduled(catalog, job)
    results: dict[int, Video | BaseException] = {}

    def pod(index: int) -> None:
        try:
            results[index] = run(
                job, store=store, catalog=catalog, settings=fast_settings(**SPREAD),
                scratch=root / f"scratch-{index}", pod=index,
            )  # fmt: skip
        except BaseException as exc:  # the test reads it
            results[index] = exc

    threads = [threading.Thread(target=pod, args=(i,), name=f"pod-{i}") for i in order]
    for t in threads:
        t.start()
        time.sleep(delay)
    for t in threads:
        t.join(timeout=300)
    return results, catalog, store


def test_two_pods_share_the_chunks_and_the_result_plays_as_one_ffmpeg(tmp_path: Path) -> None:
    source = _source(tmp_path / "film.mp4")
    whole, whole_catalog = _transcode(tmp_path / "one", source)
    job = TranscodeJob(video_id=new_video_id(), source=str(source), segment_seconds=2, pods=2)
    # The second pod starts first: it waits for the first one's plan and chunk 0.
    results, catalog, store = _pods(tmp_path / "spread", job, [1, 0], delay=0.5)
    assert all(isinstance(r, Video) for r in results.values()), results
    video = catalog.get(job.video_id)
    assert video.plan is not None and video.policy == TranscodePolicy.EAGER
    total = len(video.plan.chunks())
    assert total >= 4
    assert sorted(video.chunks_done) == list(range(total))
    assert "on 2 pods" in video.message
    # Chunk 0 is the first pod's; the others are shared round robin.
    assert catalog.by[0] == "pod-0"
    assert {catalog.by[i] for i in range(1, total)} == {"pod-0", "pod-1"}
    check_ready_video(video, catalog, store, tmp_path / "dl", segment_seconds=2)
    assert video.poster_key and store.stat(video.poster_key).size > 0
    source_frames = _frames(source)
    for rendition in video.renditions:
        mine = catalog.segments(video.id, rendition.name)
        theirs = whole_catalog.segments(whole.id, rendition.name)
        # Video to the tick; the audio (the source's own here, encoded there) within the
        # AAC frame its pieces are cut on.
        tolerance = 1e-4 if rendition.kind == TrackKind.VIDEO else 1024 / 48000 + 1e-4
        assert [x for s in mine for x in (s.start, s.duration)] == pytest.approx(
            [x for s in theirs for x in (s.start, s.duration)], abs=tolerance
        ), rendition.name
        if rendition.kind == TrackKind.VIDEO:
            played = download_rendition(store, video, rendition.name, tmp_path / "play")
            assert len(_frames(played)) == len(source_frames), rendition.name
    # Seek-bar thumbnails: each pod tiled its chunks' own, and they show the frames the
    # one-ffmpeg ladder's show, at every cue.
    assert video.trickplay is not None and whole.trickplay is not None
    mine_cues = _cues(store, video, tmp_path / "tp-mine")
    theirs_cues = _cues(FileStore(tmp_path / "one" / "media"), whole, tmp_path / "tp-theirs")
    assert [c[0] for c in mine_cues] == [c[0] for c in theirs_cues]
    assert [c[1] for c in mine_cues] == pytest.approx(range(len(mine_cues)))  # every second
    assert len({c[2] for c in mine_cues}) == total  # a sheet per chunk (13 thumbnails)
    last_frame = video.duration - 1001 / 30000
    for n, (a, b) in enumerate(zip(mine_cues, theirs_cues, strict=True)):
        if b[1] > last_frame:  # a cue after the last frame: the one-ffmpeg sheet's cell is
            b = theirs_cues[n - 1]  # blank there; a chunk's shows the last thumbnail again
        assert _psnr(a[2], a[3], b[2], b[3]) > 35, (a, b)
    # The source's AAC-LC audio is copied, not encoded: the first pod records chunk 0,
    # which the other pods wait for, without encoding a whole film's audio first.
    heard = _audio_packets(download_rendition(store, video, "audio", tmp_path / "play"))
    source_packets = set(_audio_packets(source))
    assert len(heard) > 100  # (an encoded track would share none; a piece's edge may differ)
    assert sum(p not in source_packets for p in heard) <= 2, len(heard)


def _cues(store: FileStore, video: Video, folder: Path) -> list[tuple[str, float, Path, str]]:
    """The trickplay index's cues: (time range, start s, the sheet downloaded, crop)."""
    assert video.trickplay is not None
    base = video.trickplay.vtt_key.rsplit("/", 1)[0]
    folder.mkdir(parents=True, exist_ok=True)
    lines = store.get(video.trickplay.vtt_key).decode().splitlines()
    cues = []
    for when, what in itertools.pairwise(lines):
        if "-->" not in when:
            continue
        name, _, xywh = what.partition("#xywh=")
        sheet = folder / name
        if not sheet.exists():
            sheet.write_bytes(store.get(f"{base}/{name}"))
        x, y, w, h = xywh.split(",")
        h_, m_, sec = when.split(" --> ")[0].split(":")
        start = int(h_) * 3600 + int(m_) * 60 + float(sec)
        cues.append((when, start, sheet, f"crop={w}:{h}:{x}:{y}"))
    return cues


def _psnr(sheet_a: Path, crop_a: str, sheet_b: Path, crop_b: str) -> float:
    """PSNR (dB) between a thumbnail cut from each sheet."""
    done = subprocess.run(
        [ffmpeg, "-hide_banner", "-nostats", "-i", str(sheet_a), "-i", str(sheet_b),
         "-filter_complex", f"[0:v]{crop_a}[a];[1:v]{crop_b}[b];[a][b]psnr", "-f", "null", "-"],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    found = re.search(r"average:(\S+)", done.stderr)
    assert found, done.stderr[-500:]
    return float("inf") if found[1] == "inf" else float(found[1])


def _audio_packets(path: Path) -> list[str]:
    """The MD5 of each audio packet of ``path`` as stored (not decoded)."""
    done = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:a:0",
         "-c", "copy", "-f", "framemd5", "-"],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return [ln.rsplit(",", 1)[-1].strip() for ln in done.stdout.splitlines() if ln[:1].isdigit()]


class LosesLastChunk(SqliteCatalog):
    """The real catalog, losing the record of the plan's last chunk as a server whose
    update is not atomic can (FerretDB 1.x): a fault injected, not a stand-in."""

    def add_chunk(self, video_id: str, index: int, *, fence: Fence | None = None) -> Video:
        video = self.get(video_id)
        assert video.plan is not None
        if index == len(video.plan.chunks()) - 1:
            return video
        return super().add_chunk(video_id, index, fence=fence)


def test_a_lost_chunk_record_still_completes_the_video(tmp_path: Path) -> None:
    catalog = LosesLastChunk(tmp_path / "catalog.db")
    job, store = _spread_job(tmp_path, catalog)
    settings = fast_settings(**SPREAD)
    first = threading.Thread(
        target=run, args=(job,),
        kwargs={"store": store, "catalog": catalog, "settings": settings, "pod": 0,
                "scratch": tmp_path / "s0"},
    )  # fmt: skip
    first.start()
    second = run(
        job, store=store, catalog=catalog, settings=settings, pod=1, scratch=tmp_path / "s1"
    )
    first.join(timeout=300)
    video = catalog.get(job.video_id)
    assert video.state == VideoState.READY, (video.message, second.state)
    assert video.plan is not None
    assert sorted(video.chunks_done) == list(range(len(video.plan.chunks())))
    check_ready_video(video, catalog, store, tmp_path / "dl", segment_seconds=2)


class FirstChunkFailsOnce(ChunkLog):
    """The real catalog, down once just as the first pod records chunk 0: a fault
    injected at the worst moment, the plan recorded and the other pods waiting."""

    failed = False

    def add_chunk(self, video_id: str, index: int, *, fence: Fence | None = None) -> Video:
        if index == 0 and not self.failed:
            self.failed = True
            raise Unavailable("the catalog went away")
        return super().add_chunk(video_id, index, fence=fence)


def test_the_first_pod_restarted_before_chunk_0_begins_again_and_the_others_join(
    tmp_path: Path,
) -> None:
    catalog = FirstChunkFailsOnce(tmp_path / "catalog.db")
    job, store = _spread_job(tmp_path, catalog)
    settings = fast_settings(**SPREAD)
    joined: list[Video | BaseException] = []

    def second() -> None:
        try:
            joined.append(run(job, store=store, catalog=catalog, settings=settings, pod=1,
                              scratch=tmp_path / "s1"))  # fmt: skip
        except BaseException as exc:  # the test reads it
            joined.append(exc)

    waiting = threading.Thread(target=second, name="pod-1")
    waiting.start()
    with pytest.raises(Unavailable):
        run(job, store=store, catalog=catalog, settings=settings, pod=0, scratch=tmp_path / "a")
    first_try = catalog.get(job.video_id)
    assert first_try.state == VideoState.FAILED, first_try.message  # until the Job retries
    assert waiting.is_alive()  # the second pod still waits: the Job may retry the first
    # The Job starts the first pod again: it begins a new attempt; the second pod joins it.
    again = threading.Thread(
        target=run, args=(job,), name="pod-0",
        kwargs={"store": store, "catalog": catalog, "settings": settings, "pod": 0,
                "scratch": tmp_path / "b"},
    )  # fmt: skip
    again.start()
    again.join(timeout=300)
    waiting.join(timeout=300)
    assert joined and isinstance(joined[0], Video), joined
    video = catalog.get(job.video_id)
    assert video.state == VideoState.READY, video.message
    assert video.plan is not None
    total = len(video.plan.chunks())
    assert sorted(video.chunks_done) == list(range(total))
    assert catalog.by[0] == "pod-0" and "pod-1" in {catalog.by[i] for i in range(1, total)}
    check_ready_video(video, catalog, store, tmp_path / "dl", segment_seconds=2)
    # Nothing of the first attempt is left: every media object is the final attempt's.
    media = [o.key for o in store.list(f"videos/{video.id}/") if "/g" in o.key]
    assert media and all(k.startswith(video.media_prefix() + "/") for k in media), media[:5]


def test_two_pods_complete_the_video_on_a_mongo_wire_catalog(
    tmp_path: Path, mongo_url: str
) -> None:
    """FerretDB, whose updates are not atomic: the video still completes, every chunk listed."""
    catalog = open_catalog(mongo_url)
    job, store = _spread_job(tmp_path, catalog)
    settings = fast_settings(**SPREAD)
    errors: list[BaseException] = []

    def pod(index: int) -> None:
        try:
            run(job, store=store, catalog=catalog, settings=settings, pod=index,
                scratch=tmp_path / f"s{index}")  # fmt: skip
        except BaseException as exc:  # the test reads it
            errors.append(exc)

    threads = [threading.Thread(target=pod, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    video = catalog.get(job.video_id)
    assert video.state == VideoState.READY, video.message
    assert video.plan is not None
    assert sorted(video.chunks_done) == list(range(len(video.plan.chunks())))
    check_ready_video(video, catalog, store, tmp_path / "dl", segment_seconds=2)
    catalog.close()


def test_the_api_lists_the_whole_timeline_and_a_request_waits_for_its_chunk(
    tmp_path: Path,
) -> None:
    """The cluster's API has no chunk scheduler: a segment of a spread video's chunk that
    is not encoded yet is on its way, so the request waits for it instead of a 404."""
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    job, store = _spread_job(tmp_path, catalog)
    settings = fast_settings(**SPREAD)
    served = serve_app(create_app(ApiSettings(on_demand_wait_s=60), store=store, catalog=catalog))

    def pod(index: int) -> None:
        run(job, store=store, catalog=catalog, settings=settings, pod=index,
            scratch=tmp_path / f"s{index}")  # fmt: skip

    # Pod 1, which encodes the last chunk, starts only once a request waits for it.
    pods = [threading.Thread(target=pod, args=(i,)) for i in (0, 1)]
    try:
        pods[0].start()
        video = catalog.get(job.video_id)
        deadline = time.monotonic() + 120
        while not (video.playable and video.plan is not None):
            assert time.monotonic() < deadline, video.message
            time.sleep(0.1)
            video = catalog.get(job.video_id)
        assert video.state == VideoState.TRANSCODING
        assert video.plan is not None
        rung = video.plan.rungs[0]
        answer = httpx.get(f"{served.url}/v/{video.id}/{rung}.m3u8", timeout=10)
        listing = m3u8.loads(answer.text, uri=f"{served.url}/v/{video.id}/")
        assert len(listing.segments) == len(video.plan.segments())  # the whole timeline, now
        url = listing.segments[-1].absolute_uri
        with concurrent.futures.ThreadPoolExecutor(1) as viewer:
            asked = viewer.submit(httpx.get, url, timeout=90)
            time.sleep(1.0)
            assert not asked.done(), asked.result().text  # waiting: no 404, no scheduler asked
            pods[1].start()
            answer = asked.result(timeout=120)
        assert answer.status_code == 200, answer.text
        assert len(answer.content) > 1000
    finally:
        for t in pods:
            if t.ident is not None:  # started
                t.join(timeout=300)
        served.stop()
    assert catalog.get(job.video_id).state == VideoState.READY


def test_a_pod_with_nothing_left_ends_at_once(tmp_path: Path) -> None:
    """A source of one chunk is the first pod's alone; the second pod returns the video."""
    source = tmp_path / "short.mp4"
    _source(source)
    job = TranscodeJob(video_id=new_video_id(), source=str(source), segment_seconds=2, pods=2)
    settings = {**SPREAD, "spread_chunk_seconds": 60, "spread_first_chunk_seconds": 60}
    catalog = ChunkLog(tmp_path / "catalog.db")
    store = FileStore(tmp_path / "media")
    scheduled(catalog, job)
    first = run(job, store=store, catalog=catalog, settings=fast_settings(**settings), pod=0)
    assert first.state == VideoState.READY and first.plan is None
    second = run(job, store=store, catalog=catalog, settings=fast_settings(**settings), pod=1)
    assert second.state == VideoState.READY
    assert catalog.by == {}  # nobody recorded a chunk: one ffmpeg did it all


def test_a_video_deleted_while_a_pod_waits_stops_it(tmp_path: Path) -> None:
    catalog = ChunkLog(tmp_path / "catalog.db")
    job, store = _spread_job(tmp_path, catalog)
    threading.Timer(0.5, catalog.delete, args=(job.video_id,)).start()
    with pytest.raises(Superseded):
        run(job, store=store, catalog=catalog, settings=fast_settings(**SPREAD), pod=1)
    assert not any((tmp_path / "media").rglob("*.m4s"))
