"""Chunks as the unit of encoding work, on real ffmpeg.

What a viewer relies on: a ladder encoded chunk by chunk (an ffmpeg per chunk,
the audio once) plays as the front-to-back ladder does, the same segment
boundaries in every rung, timestamps continuous across chunks, every frame of
the source once, the same quality; and chunks encoded in any order join into
the same segments, byte for byte.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import pytest
from kubevod.worker.chunks import ChunkMover
from kubevod.worker.ffmpeg import EncodePlan, chunk_argv, chunk_span
from kubevod.worker.ladder import plan_ladder
from kubevod.worker.mp4 import parse_fragments, parse_init
from kubevod.worker.pipeline import run
from kubevod.worker.process import ffmpeg_env

from kubevod.catalog.sqlite import SqliteCatalog
from kubevod.jobs import TranscodeJob
from kubevod.models import TrackKind, Video, new_video_id
from kubevod.store.file import FileStore
from kubevod.timeline import Timeline, plan_chunks
from tests.fixtures.jobs import scheduled
from tests.integration.worker_media import (
    check_ready_video,
    download_rendition,
    fast_settings,
    ffprobe_json,
)

pytestmark = pytest.mark.integration

ffmpeg = fast_settings().ffmpeg
SECONDS = 13


def _source(path: Path, rate: str = "30000/1001") -> Path:
    """13 s of 640x360 at ``rate`` (29.97 by default: cuts are not frame times), AAC."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate={rate}:duration={SECONDS}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SECONDS}",
         "-c:v", "libx264", "-preset", "veryfast", "-g", "250", "-c:a", "aac", str(path)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return path


def _transcode(root: Path, source: Path, **settings: object) -> tuple[Video, SqliteCatalog]:
    catalog = SqliteCatalog(root / "catalog.db")
    job = TranscodeJob(video_id=new_video_id(), source=str(source), segment_seconds=2)
    video = run(
        scheduled(catalog, job), store=FileStore(root / "media"), catalog=catalog,
        settings=fast_settings(**settings), scratch=root / "scratch",
    )  # fmt: skip
    return video, catalog


def _frames(path: Path) -> list[float]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
         "-of", "json", str(path)],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return sorted(float(f["pts_time"]) for f in json.loads(done.stdout)["frames"])


def _ssim(encoded: Path, source: Path, width: int, height: int) -> float:
    """SSIM of a rendition against the source scaled to its size (ffmpeg's ssim filter)."""
    done = subprocess.run(
        [ffmpeg, "-hide_banner", "-nostats", "-i", str(encoded), "-i", str(source),
         "-filter_complex", f"[1:v]scale={width}:{height}:flags=bicubic[r];[0:v][r]ssim",
         "-f", "null", "-"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    line = next(ln for ln in done.stderr.splitlines() if "SSIM" in ln and "All:" in ln)
    return float(line.split("All:")[1].split()[0])


def test_a_chunked_ladder_plays_as_the_front_to_back_ladder(tmp_path: Path) -> None:
    source = _source(tmp_path / "film.mp4")
    whole, whole_catalog = _transcode(tmp_path / "one", source)
    video, catalog = _transcode(tmp_path / "chunks", source, chunk_seconds=4)
    store = FileStore(tmp_path / "chunks" / "media")
    starts = check_ready_video(video, catalog, store, tmp_path / "dl", segment_seconds=2)
    assert [r.name for r in video.renditions] == [r.name for r in whole.renditions]
    source_frames = _frames(source)
    for rendition in video.renditions:
        mine = catalog.segments(video.id, rendition.name)
        theirs = whole_catalog.segments(whole.id, rendition.name)
        # The same segments, to the tick: a player cannot tell the two apart.
        assert [(s.start, s.duration) for s in mine] == pytest.approx(
            [(s.start, s.duration) for s in theirs], abs=1e-4
        ), rendition.name
        if rendition.kind != TrackKind.VIDEO:
            continue
        played = download_rendition(store, video, rendition.name, tmp_path / "play")
        frames = _frames(played)
        # Every source frame once, one frame duration apart across every chunk boundary.
        assert len(frames) == len(source_frames), rendition.name
        steps = {round(b - a, 4) for a, b in itertools.pairwise(frames)}
        assert steps == {round(1001 / 30000, 4)}, (rendition.name, steps)
        assert starts[rendition.name] == pytest.approx([s.start for s in theirs], abs=1e-4)
        reference = download_rendition(
            FileStore(tmp_path / "one" / "media"), whole, rendition.name, tmp_path / "ref"
        )
        w, h = rendition.width or 0, rendition.height or 0
        assert _ssim(played, source, w, h) == pytest.approx(
            _ssim(reference, source, w, h), abs=0.005
        ), rendition.name
    assert video.trickplay is not None and whole.trickplay is not None
    assert video.trickplay.sheets == whole.trickplay.sheets
    assert video.poster_key


def _encode_chunks(tmp_path: Path, source: Path, order: list[int]) -> Path:
    """Every chunk of a 360p/240p ladder, in ``order``, joined into ``out``."""
    info = ffprobe_json(source, "-show_streams", "-select_streams", "v:0")["streams"][0]
    rungs = plan_ladder(640, 360, 30000 / 1001)
    # One thread per x264: a threaded x264 under VBV is not bit-for-bit repeatable
    # even for the same command, and this test compares bytes.
    plan = EncodePlan(
        source=str(source), video_stream=int(info["index"]), rungs=tuple(rungs),
        segment_seconds=2, first_segment_seconds=1.0, x264_preset="ultrafast", cpus=2,
        x264_threads=1,
    )  # fmt: skip
    timeline = Timeline.regular(plan.first_segment, plan.segment_seconds)
    fps = rungs[0].fps
    chunks = plan_chunks(timeline, SECONDS, fps, 4)
    assert len(chunks) == 3
    out = tmp_path / f"out-{'-'.join(map(str, order))}"
    for index in order:
        span = chunk_span(chunks[index], timeline, fps)
        folder = tmp_path / f"chunk-{index}-{len(list(tmp_path.iterdir()))}"
        for rung in rungs:
            (folder / rung.name).mkdir(parents=True)
        subprocess.run(
            chunk_argv(plan, span, ffmpeg), cwd=folder, check=True, capture_output=True,
            timeout=300, env=ffmpeg_env(),
        )  # fmt: skip
        mover = ChunkMover(span, folder, out, tuple(r.name for r in rungs))
        mover.poll()
        assert mover.moved(rungs[0].name) == chunks[index].count
    return out


def test_chunks_encoded_in_any_order_join_into_the_same_segments(tmp_path: Path) -> None:
    source = _source(tmp_path / "film.mp4")
    forward = _encode_chunks(tmp_path, source, [0, 1, 2])
    backward = _encode_chunks(tmp_path, source, [2, 0, 1])
    for rung in ("360p", "240p"):
        files = sorted((forward / rung).glob("*.m4s"), key=lambda p: int(p.stem))
        assert [p.name for p in files] == [f"{n}.m4s" for n in range(7)]
        for path in files:
            assert path.read_bytes() == (backward / rung / path.name).read_bytes(), path
        init = parse_init((forward / rung / "init.mp4").read_bytes())
        starts = [parse_fragments(p.read_bytes()).start(init.timescale) for p in files]
        assert starts == pytest.approx([0, 1, 3, 5, 7, 9, 11], abs=0.034)
        joined = tmp_path / f"{rung}.mp4"
        joined.write_bytes(b"".join(p.read_bytes() for p in [forward / rung / "init.mp4", *files]))
        assert len(_frames(joined)) == len(_frames(source))


@pytest.mark.parametrize("policy", ["eager", "onDemand"])
def test_an_mpeg_ts_recording_asked_for_in_chunks_is_encoded_whole(
    tmp_path: Path, policy: str
) -> None:
    """An input seek into an MPEG-TS file can land past the keyframe before the seek
    point: here ``-ss 9.02`` before ``-i`` decodes no frame of a recording whose
    keyframes are at 0 and 8.3 s, and a chunk starting there would be empty. So a TS
    file is encoded by one ffmpeg, which never seeks, whatever asked for chunks."""
    from tests.fixtures.media import make_video

    source = make_video(tmp_path / "recording.ts", seconds=12, width=320, height=180)
    argv = [ffmpeg, "-v", "error", "-ss", "9.02", "-i", str(source), "-map", "0:v"]
    argv += ["-f", "framemd5", "-"]
    frames = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    assert not [line for line in frames.stdout.splitlines() if not line.startswith("#")]

    catalog = SqliteCatalog(tmp_path / "catalog.db")
    store = FileStore(tmp_path / "media")
    job = TranscodeJob(
        video_id=new_video_id(), source=str(source), segment_seconds=2, policy=policy
    )
    try:
        video = run(
            scheduled(catalog, job), store=store, catalog=catalog,
            settings=fast_settings(chunk_seconds=4), scratch=tmp_path / "scratch",
        )  # fmt: skip
        check_ready_video(video, catalog, store, tmp_path / "check", segment_seconds=2)
    finally:
        catalog.close()
    assert video.plan is None and video.duration == pytest.approx(12, abs=0.1)
