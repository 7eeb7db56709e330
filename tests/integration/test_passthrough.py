"""Passthrough on the real pipeline: a source players already decode becomes the top rung
as it is (the same frames, bit for bit), the other rungs are cut on its keyframes, and a
source that does not fit is encoded as before, saying why."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from kubevod.worker.pipeline import run

from kubevod.catalog.sqlite import SqliteCatalog
from kubevod.jobs import TranscodeJob
from kubevod.models import TrackKind, Video, new_video_id
from kubevod.store.file import FileStore
from tests.fixtures.jobs import scheduled
from tests.integration.worker_media import check_ready_video, download_rendition, fast_settings

pytestmark = pytest.mark.integration

ffmpeg = fast_settings().ffmpeg


def _source(path: Path, *, gop: int = 30, bitrate: str = "500k", seconds: int = 11) -> Path:
    """360p30 H.264 High with a keyframe every ``gop`` frames, AAC-LC stereo 48 kHz."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
         "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
         "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", "2M",
         "-c:a", "aac", "-b:a", "128k", "-ac", "2", str(path)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return path


def _frame_hashes(path: Path) -> list[str]:
    """MD5 of every decoded video frame (ffmpeg's framemd5 muxer)."""
    done = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:v:0",
         "-f", "framemd5", "-"],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return [line.rsplit(",", 1)[1].strip() for line in done.stdout.splitlines() if line[:1] != "#"]


def _transcode(tmp_path: Path, source: Path, **settings: object) -> tuple[Video, SqliteCatalog]:
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    store = FileStore(tmp_path / "media")
    job = TranscodeJob(video_id=new_video_id(), source=str(source), segment_seconds=4)
    video = run(scheduled(catalog, job), store=store, catalog=catalog,
                settings=fast_settings(**settings))  # fmt: skip
    return video, catalog


def test_a_compliant_source_is_the_top_rung_frame_for_frame(tmp_path: Path) -> None:
    source = _source(tmp_path / "phone.mp4")
    video, catalog = _transcode(tmp_path, source)
    store = FileStore(tmp_path / "media")
    assert "360p passed through from the source" in video.message, video.message
    assert [r.name for r in video.renditions] == ["360p", "240p", "audio"]
    # Keyframes every second: the passthrough timeline is the regular one.
    starts = check_ready_video(
        video, catalog, store, tmp_path / "dl", segment_seconds=4, b_frames=True
    )
    assert starts["360p"] == pytest.approx([0.0, 1.0, 5.0, 9.0], abs=0.002)
    assert starts["240p"] == starts["360p"]
    # The top rung's decoded frames are the source's own.
    top = download_rendition(store, video, "360p", tmp_path / "top")
    assert _frame_hashes(top) == _frame_hashes(source)
    # A copied stream keeps the source's bitrate (not re-encoded to the rung's cap).
    top_rung = video.renditions[0]
    assert 350_000 < top_rung.average_bandwidth < 700_000, top_rung
    # The audio is the source's AAC-LC as it is.
    audio = next(r for r in video.renditions if r.kind == TrackKind.AUDIO)
    assert audio.codecs == "mp4a.40.2"
    digest = hashlib.md5(usedforsecurity=False)
    for seg in catalog.segments(video.id, "audio"):
        digest.update(store.get(seg.key))
    assert digest.digest()  # read back whole


def test_irregular_keyframes_make_the_cuts_of_every_rung(tmp_path: Path) -> None:
    """Keyframes every 1.5 s: the cuts fall on them, in every rung at the same instant."""
    source = _source(tmp_path / "gop45.mp4", gop=45, seconds=12)
    video, catalog = _transcode(tmp_path, source)
    assert "passed through" in video.message, video.message
    starts = {
        r.name: [s.start for s in catalog.segments(video.id, r.name)] for r in video.renditions
    }
    assert starts["360p"] == pytest.approx([0.0, 1.5, 6.0, 9.0], abs=0.002)
    assert starts["240p"] == pytest.approx(starts["360p"], abs=0.002)
    # Audio segments end within a quarter second of the video's cuts.
    for mine, cut in zip(starts["audio"][1:], starts["360p"][1:], strict=True):
        assert abs(mine - cut) <= 0.26, (starts["audio"], starts["360p"])
    top = download_rendition(FileStore(tmp_path / "media"), video, "360p", tmp_path / "top")
    assert _frame_hashes(top) == _frame_hashes(source)


@pytest.mark.parametrize(
    ("make", "settings", "reason"),
    [
        (lambda p: _source(p, gop=300, seconds=6), {}, "second keyframe comes at 6.0 s"),
        (lambda p: _source(p, bitrate="2000k", seconds=6), {}, "over the top rung's 0.8 Mb/s"),
        (lambda p: _source(p, seconds=6), {"passthrough": "never"}, "passthrough off"),
    ],
)
def test_a_source_that_does_not_fit_is_encoded_and_says_why(
    tmp_path: Path, make: object, settings: dict[str, object], reason: str
) -> None:
    source = make(tmp_path / "src.mp4")  # type: ignore[operator]
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    store = FileStore(tmp_path / "media")
    job = TranscodeJob(video_id=new_video_id(), source=str(source), segment_seconds=4)
    seen: list[str] = []
    original = catalog.update

    def spy(video_id: str, **fields: object) -> Video:
        if isinstance(fields.get("message"), str):
            seen.append(str(fields["message"]))
        return original(video_id, **fields)  # type: ignore[arg-type]

    catalog.update = spy  # type: ignore[method-assign]
    video = run(scheduled(catalog, job), store=store, catalog=catalog,
                settings=fast_settings(**settings))  # fmt: skip
    assert "passed through" not in video.message
    assert any(reason in m for m in seen), seen
    check_ready_video(video, catalog, store, tmp_path / "dl", segment_seconds=4)
    top = download_rendition(store, video, "360p", tmp_path / "top")
    assert _frame_hashes(top) != _frame_hashes(source)  # encoded, so not the same bytes
