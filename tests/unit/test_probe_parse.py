"""ffprobe JSON -> SourceInfo (pure): the rules for odd sources."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from kubevod.worker.probe import parse_probe

from kubevod.errors import SourceError


def video(**extra: Any) -> dict[str, Any]:
    stream = {
        "index": 0, "codec_name": "h264", "codec_type": "video", "width": 1920, "height": 1080,
        "pix_fmt": "yuv420p", "avg_frame_rate": "30/1", "r_frame_rate": "30/1",
        "field_order": "progressive", "bit_rate": "4000000", "disposition": {"default": 1},
    }  # fmt: skip
    stream.update(extra)
    return stream


def audio(index: int, **extra: Any) -> dict[str, Any]:
    stream = {"index": index, "codec_name": "aac", "codec_type": "audio", "channels": 2,
              "sample_rate": "48000", "disposition": {"default": 0}}  # fmt: skip
    stream.update(extra)
    return stream


def probe_json(*streams: dict[str, Any], duration: str = "20.000000") -> dict[str, Any]:
    return {
        "streams": list(streams),
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": duration,
                   "size": "12345678", "bit_rate": "4938271"},
    }  # fmt: skip


def test_plain_1080p_with_audio() -> None:
    info = parse_probe(probe_json(video(), audio(1, disposition={"default": 1})), "/x.mp4")
    assert info.duration == 20.0 and info.size == 12345678 and info.bitrate == 4938271
    v = info.video
    assert (v.codec, v.display_width, v.display_height, v.fps, v.variable_fps) == (
        "h264", 1920, 1080, 30.0, False,
    )  # fmt: skip
    assert (v.bit_depth, v.interlaced, v.rotation) == (8, False, 0)
    assert [(a.index, a.channels, a.default) for a in info.audio] == [(1, 2, True)]
    summary = info.summary()
    assert (summary.width, summary.height, summary.audio_tracks) == (1920, 1080, 1)


@pytest.mark.parametrize(
    ("extra", "size"),
    [
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}, (1080, 1920)),
        ({"side_data_list": [{"rotation": 90}]}, (1080, 1920)),
        ({"side_data_list": [{"rotation": 180}]}, (1920, 1080)),
        ({"tags": {"rotate": "270"}}, (1080, 1920)),
        ({"sample_aspect_ratio": "4:3", "width": 1440}, (1920, 1080)),  # anamorphic HDV
        ({"sample_aspect_ratio": "0:1"}, (1920, 1080)),
    ],
)
def test_display_size_applies_rotation_and_sample_aspect(
    extra: dict[str, Any], size: tuple[int, int]
) -> None:
    v = parse_probe(probe_json(video(**extra))).video
    assert (v.display_width, v.display_height) == size


def test_rotation_is_clockwise_degrees() -> None:
    assert parse_probe(probe_json(video(side_data_list=[{"rotation": -90}]))).video.rotation == 90
    assert parse_probe(probe_json(video(tags={"rotate": "90"}))).video.rotation == 90


@pytest.mark.parametrize(
    ("avg", "real", "fps", "vfr"),
    [("30000/1001", "30000/1001", 29.97003, False), ("18/1", "30/1", 18.0, True),
     ("0/0", "25/1", 25.0, False), ("60/1", "60/1", 60.0, False)],
)  # fmt: skip
def test_frame_rate_and_variable_frame_rate(avg: str, real: str, fps: float, vfr: bool) -> None:
    v = parse_probe(probe_json(video(avg_frame_rate=avg, r_frame_rate=real))).video
    assert v.fps == pytest.approx(fps, abs=1e-4) and v.variable_fps is vfr


@pytest.mark.parametrize(
    ("extra", "depth"),
    [({"pix_fmt": "yuv420p10le"}, 10), ({"bits_per_raw_sample": "10"}, 10),
     ({"pix_fmt": "yuv422p12le"}, 12), ({"pix_fmt": "p010le"}, 10), ({"pix_fmt": "nv12"}, 8)],
)  # fmt: skip
def test_bit_depth(extra: dict[str, Any], depth: int) -> None:
    assert parse_probe(probe_json(video(**extra))).video.bit_depth == depth


@pytest.mark.parametrize(
    ("order", "interlaced"), [("tt", True), ("bb", True), ("progressive", False), (None, False)]
)
def test_interlacing(order: str | None, interlaced: bool) -> None:
    assert parse_probe(probe_json(video(field_order=order))).video.interlaced is interlaced


def test_cover_art_is_not_the_video_and_tracks_are_listed() -> None:
    cover = video(index=0, codec_name="mjpeg", disposition={"attached_pic": 1})
    main = video(index=1)
    subs = [
        {"index": 4, "codec_type": "subtitle", "codec_name": "subrip", "tags": {"language": "eng"}},
        {"index": 5, "codec_type": "subtitle", "codec_name": "hdmv_pgs_subtitle"},
    ]
    eng = audio(2, tags={"language": "eng"})
    surround = audio(3, channels=6, tags={"language": "und"})
    info = parse_probe(probe_json(cover, main, eng, surround, *subs))
    assert info.video.index == 1
    assert [(a.index, a.channels, a.language) for a in info.audio] == [(2, 2, "eng"), (3, 6, None)]
    assert [(s.index, s.is_text, s.language) for s in info.subtitles] == [
        (4, True, "eng"),
        (5, False, None),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (probe_json(audio(0)), "no video stream"),
        ({"streams": [], "format": {}}, "no video stream"),
        (probe_json(video(width=0, height=0)), "unusable size"),
        (probe_json(video(), duration="N/A"), "no usable duration"),
    ],
)
def test_unusable_sources_are_source_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_probe(data)


def test_weird_sample_aspect_ratios_are_ignored() -> None:
    assert parse_probe(probe_json(video(sample_aspect_ratio="1000:1"))).video.sar == Fraction(1)
