"""Odd and bad sources, each made with ffmpeg at test time, through the real pipeline.

Odd sources must come out as a correct ladder; bad ones must end ``failed``
with a one-line reason, no segment recorded and no media object left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubevod.worker.probe import probe

from kubevod.catalog.sqlite import SqliteCatalog
from kubevod.errors import SourceError
from kubevod.jobs import TranscodeJob
from kubevod.models import TrackKind, Video, VideoState, new_video_id
from kubevod.store.file import FileStore
from tests.fixtures import media
from tests.fixtures.jobs import scheduled
from tests.integration.worker_media import (
    check_playlists,
    check_ready_video,
    fast_settings,
    ffprobe_json,
)

pytestmark = pytest.mark.integration


class Env:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = FileStore(root / "media")
        self.catalog = SqliteCatalog(root / "catalog.db")

    def transcode(self, source: Path, *, segment_seconds: float = 2) -> Video:
        from kubevod.worker.pipeline import run

        job = TranscodeJob(
            video_id=new_video_id(), source=str(source), segment_seconds=segment_seconds
        )
        return run(
            scheduled(self.catalog, job),
            store=self.store,
            catalog=self.catalog,
            settings=fast_settings(),
        )

    def check(
        self, video: Video, *, segment_seconds: float = 2, audio_aligned: bool = True
    ) -> None:
        check_ready_video(
            video, self.catalog, self.store, self.root / video.id,
            segment_seconds=segment_seconds, audio_aligned=audio_aligned,
        )  # fmt: skip
        check_playlists(video, self.catalog)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.catalog.close()


def video_rungs(video: Video) -> list[tuple[str, int, int]]:
    return [(r.name, r.width, r.height) for r in video.renditions if r.kind == TrackKind.VIDEO]


def audio_rungs(video: Video) -> list[tuple[str, str | None]]:
    return [(r.name, r.language) for r in video.renditions if r.kind == TrackKind.AUDIO]


def test_odd_dimensions_are_scaled_to_even_sizes(env: Env, tmp_path: Path) -> None:
    video = env.transcode(media.make_odd_size(tmp_path / "odd.mp4", seconds=1.5))
    env.check(video)
    assert video_rungs(video) == [("405p", 718, 404), ("360p", 638, 360), ("240p", 426, 240)]
    assert audio_rungs(video) == []  # no audio track in, none out


def test_rotation_metadata_gives_a_portrait_ladder(env: Env, tmp_path: Path) -> None:
    video = env.transcode(media.make_rotated(tmp_path / "rot.mp4", degrees=90))
    env.check(video)
    assert video_rungs(video) == [("180p", 180, 320)]
    assert (video.source_info.width, video.source_info.height) == (180, 320)


def test_variable_frame_rate_becomes_constant(env: Env, tmp_path: Path) -> None:
    video = env.transcode(media.make_vfr(tmp_path / "vfr.mp4"))
    env.check(video)
    (rung,) = [r for r in video.renditions if r.kind == TrackKind.VIDEO]
    assert rung.frame_rate == pytest.approx(18.0)
    assert video.duration == pytest.approx(2.0, abs=0.1)


def test_60fps_keeps_its_frame_rate_with_more_bits(env: Env, tmp_path: Path) -> None:
    video = env.transcode(
        media.make_video(tmp_path / "60.mp4", seconds=2, width=640, height=360, fps=60)
    )
    env.check(video)
    assert [r.name for r in video.renditions] == ["360p60", "240p60", "audio"]
    assert all(r.frame_rate == 60 for r in video.renditions if r.kind == TrackKind.VIDEO)


def test_two_audio_tracks_become_two_audio_renditions(env: Env, tmp_path: Path) -> None:
    video = env.transcode(media.make_two_audio(tmp_path / "two.mp4"))
    env.check(video)
    assert audio_rungs(video) == [("audio", "eng"), ("audio-2", "fre")]


def test_10bit_is_encoded_as_8bit_h264(env: Env, tmp_path: Path) -> None:
    video = env.transcode(media.make_10bit(tmp_path / "b10.mp4"))
    env.check(video)  # the profile in the codecs string is what ffprobe reads (not High 10)
    assert video.renditions[0].codecs[5:7] in ("42", "4d", "64")
    (stream,) = ffprobe_json(env.root / video.id / "180p.mp4", "-show_streams")["streams"]
    assert stream["pix_fmt"] == "yuv420p"


def test_interlaced_is_deinterlaced(env: Env, tmp_path: Path) -> None:
    source = media.make_interlaced(tmp_path / "il.mp4")
    assert probe(source, ffprobe=fast_settings().ffprobe).video.interlaced  # so bwdif runs
    video = env.transcode(source)
    env.check(video)
    (stream,) = ffprobe_json(env.root / video.id / "180p.mp4", "-show_streams")["streams"]
    assert stream.get("field_order", "progressive") == "progressive"


def test_surround_audio_is_downmixed_to_stereo(env: Env, tmp_path: Path) -> None:
    video = env.transcode(media.make_surround(tmp_path / "51.mp4"))
    env.check(video)  # checks channels == 2
    assert video.source_info.audio_tracks == 1


def test_text_subtitles_are_exported_as_webvtt(env: Env, tmp_path: Path) -> None:
    video = env.transcode(media.make_with_subtitles(tmp_path / "subs.mkv"))
    env.check(video)
    (sub,) = video.subtitles
    assert (sub.language, sub.default) == ("eng", True)
    text = env.store.get(sub.key).decode()
    assert text.startswith("WEBVTT") and "Hello there" in text and "Second line" in text


def test_source_shorter_than_a_segment(env: Env, tmp_path: Path) -> None:
    short = media.make_video(tmp_path / "short.mp4", seconds=1.5, width=320, height=180)
    video = env.transcode(short, segment_seconds=4)
    env.check(video, segment_seconds=4)
    durations = [s.duration for s in env.catalog.segments(video.id, "180p")]
    assert durations == pytest.approx([1.0, 0.5], abs=0.04)


def test_4k_gets_the_whole_ladder(env: Env, tmp_path: Path) -> None:
    video = env.transcode(media.make_4k(tmp_path / "4k.mp4", seconds=1))
    assert [r.name for r in video.renditions if r.kind == TrackKind.VIDEO] == [
        "2160p", "1440p", "1080p", "720p", "480p", "360p", "240p",
    ]  # fmt: skip
    env.check(video)


# --- bad sources ------------------------------------------------------------------------


BAD: list[tuple[str, Callable[[Path], Path], str]] = [
    ("empty", lambda p: (p.write_bytes(b""), p)[1], "empty"),
    ("text", lambda p: (p.write_text("just some words\n" * 50), p)[1], "not a readable media file"),
    ("truncated", media.make_moov_at_end_truncated, "not a readable media file"),
    ("audio-only", media.make_audio_only, "no video stream"),
    ("missing", lambda p: p, "does not exist"),
]


@pytest.mark.parametrize(("kind", "make", "reason"), BAD, ids=[b[0] for b in BAD])
def test_bad_sources_fail_cleanly(
    env: Env, tmp_path: Path, kind: str, make: Callable[[Path], Path], reason: str
) -> None:
    source = make(tmp_path / f"{kind}.m4a" if kind == "audio-only" else tmp_path / f"{kind}.mp4")
    job = TranscodeJob(video_id=new_video_id(), source=str(source))
    from kubevod.worker.pipeline import run

    with pytest.raises(SourceError, match=reason):
        run(
            scheduled(env.catalog, job),
            store=env.store,
            catalog=env.catalog,
            settings=fast_settings(),
        )
    video = env.catalog.get(job.video_id)
    assert video.state == VideoState.FAILED and not video.playable
    assert reason in video.message and "\n" not in video.message and len(video.message) <= 300
    assert env.catalog.segments(job.video_id) == []
    leftovers = [o.key for o in env.store.list(f"videos/{job.video_id}/")]
    assert leftovers == []  # nothing published; a log tail may be kept under logs/ (private)


def test_decode_errors_in_the_middle_are_concealed_or_fail_cleanly(
    env: Env, tmp_path: Path
) -> None:
    """Decode errors are tolerated where ffmpeg can go on, reported where not (architecture §6)."""
    source = media.make_corrupt_middle(tmp_path / "corrupt.ts", seconds=3)
    job = TranscodeJob(video_id=new_video_id(), source=str(source), segment_seconds=2)
    from kubevod.worker.pipeline import run

    try:
        video = run(
            scheduled(env.catalog, job),
            store=env.store,
            catalog=env.catalog,
            settings=fast_settings(),
        )
    except SourceError:
        video = env.catalog.get(job.video_id)
        assert video.state == VideoState.FAILED and env.catalog.segments(job.video_id) == []
        return
    env.check(video, audio_aligned=False)  # packets are lost: audio has gaps
    assert "decode errors" in video.message
