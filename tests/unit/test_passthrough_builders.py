"""Passthrough (pure): which sources become the top rung as they are, and the ffmpeg command
that copies the top rung and cuts every other rung on the source's keyframes."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from typing import Any

import pytest
from kubevod.worker.ffmpeg import AudioOut, EncodePlan, filter_graph, forced_times, transcode_argv
from kubevod.worker.ladder import Rung
from kubevod.worker.passthrough import audio_copies, video_verdict
from kubevod.worker.probe import AudioStream, SourceInfo, VideoStream, parse_keyframes

TOP = Rung("1080p", 1920, 1080, 30.0, 5_000_000, 10_000_000)
LOW = Rung("360p", 640, 360, 30.0, 800_000, 1_600_000)
VIDEO = VideoStream(
    index=0, codec="h264", width=1920, height=1080, fps=30.0, pix_fmt="yuv420p",
    bitrate=4_000_000, profile="High", level=40,
)  # fmt: skip


def info(**video: Any) -> SourceInfo:
    return SourceInfo(
        path="/in/a.mp4", format_name="mov,mp4", duration=60.0, size=30_000_000,
        bitrate=4_100_000, video=replace(VIDEO, **video),
    )  # fmt: skip


def test_a_compliant_h264_source_passes() -> None:
    verdict = video_verdict(info(), TOP, "h264")
    assert verdict.ok and verdict.reason == "1080p is the source's own H.264 (High 4)"


@pytest.mark.parametrize(
    ("video", "codec", "reason"),
    [
        ({}, "hevc", "the ladder is hevc"),
        ({"codec": "hevc"}, "h264", "the source is hevc, not H.264"),
        ({"profile": "High 10"}, "h264", "H.264 profile High 10"),
        ({"profile": "High 4:4:4 Predictive"}, "h264", "profile High 4:4:4"),
        ({"level": 52}, "h264", "level 5.2 is above 5.1"),
        ({"pix_fmt": "yuv422p"}, "h264", "pixel format yuv422p"),
        ({"bit_depth": 10, "pix_fmt": "yuv420p10le"}, "h264", "not 8-bit 4:2:0"),
        ({"interlaced": True}, "h264", "interlaced"),
        ({"variable_fps": True}, "h264", "variable frame rate"),
        ({"rotation": 90}, "h264", "rotated"),
        ({"sar": Fraction(4, 3)}, "h264", "non-square pixels"),
        ({"width": 1440}, "h264", "the top rung is 1920x1080@30, the source 1440x1080@30"),
        ({"fps": 25.0}, "h264", "the source 1920x1080@25"),
        ({"bitrate": 9_000_000}, "h264", "9.0 Mb/s is over the top rung's 5.0 Mb/s cap"),
    ],
)
def test_a_source_players_cannot_take_as_it_is_is_encoded(
    video: dict[str, Any], codec: str, reason: str
) -> None:
    verdict = video_verdict(info(**video), TOP, codec)
    assert not verdict.ok and reason in verdict.reason


def test_without_a_stream_bitrate_the_files_own_is_the_bound() -> None:
    assert video_verdict(info(bitrate=None), TOP, "h264").ok
    no_rate = replace(info(bitrate=None), bitrate=None, size=0)
    assert "unknown bitrate" in video_verdict(no_rate, TOP, "h264").reason


@pytest.mark.parametrize(
    ("codec", "profile", "channels", "rate", "copies"),
    [
        ("aac", "LC", 2, 48000, True),
        ("aac", "LC", 1, 44100, True),
        ("aac", "HE-AAC", 2, 48000, False),
        ("aac", "LC", 6, 48000, False),
        ("aac", "LC", 2, 32000, False),
        ("ac3", "", 2, 48000, False),
    ],
)
def test_audio_copies_only_aac_lc_stereo(
    codec: str, profile: str, channels: int, rate: int, copies: bool
) -> None:
    stream = AudioStream(index=1, codec=codec, channels=channels, sample_rate=rate, profile=profile)
    assert audio_copies(stream) is copies


def test_keyframes_are_read_relative_to_the_stream_start() -> None:
    csv = "1.400000,K__\n1.433333,___\nN/A,K__\n2.400000,K_\n2.400000,K_\n3.9,__\n"
    assert parse_keyframes(csv, start=1.4) == [0.0, 1.0]


def _plan(**changes: Any) -> EncodePlan:
    base: dict[str, Any] = {
        "source": "/in/a.mp4", "video_stream": 0, "rungs": (TOP, LOW),
        "audio": (AudioOut("audio", 1, copy=True),), "copy_top": True, "cuts": (1.5, 6.0, 9.0),
    }  # fmt: skip
    base.update(changes)
    return EncodePlan(**base)


def test_the_top_rung_is_copied_and_the_others_get_its_cuts() -> None:
    argv = transcode_argv(_plan())
    text = " ".join(argv)
    assert "-map 0:0 -map_metadata -1 -map_chapters -1 -c:v copy" in text
    assert argv.count("-c:v") == 2 and "libx264" in argv  # one copy, one encode
    assert argv[argv.index("-force_key_frames") + 1] == "1.499,5.999,8.999"
    # Every video rung and the audio come as pieces, joined on the timeline by the uploader.
    assert "1080p.pieces/%d.m4s" in text and "360p.pieces/%d.m4s" in text
    assert "audio.pieces/%d.m4s" in text
    hls_times = [argv[i + 1] for i, a in enumerate(argv) if a == "-hls_time"]
    assert hls_times == ["0.1", "0.1", "0.25"]
    assert argv[argv.index("-c:a") + 1] == "copy"
    # The graph scales 360p from the source's frames and makes no 1080p encode.
    graph = filter_graph(_plan())
    assert "[v0]" not in graph and "[v1]" in graph


def test_forced_times_land_on_the_frame_of_each_cut() -> None:
    assert forced_times([1.0, 5.0, 9.5]) == "0.999,4.999,9.499"


def test_without_passthrough_the_command_is_as_before() -> None:
    plain = _plan(copy_top=False, cuts=None, audio=(AudioOut("audio", 1),))
    argv = transcode_argv(plain)
    assert "copy" not in argv and argv.count("libx264") == 2
    assert "1080p/%d.m4s" in " ".join(argv)


def test_spec_transcode_passthrough_reaches_the_job_and_keeps_old_fingerprints() -> None:
    from kubevod.operator.job_manifest import transcode_job
    from kubevod.operator.resource import Asset, VideoAssetSpec

    def asset(**spec: Any) -> Asset:
        model = VideoAssetSpec.model_validate(
            {"source": {"url": "https://m.example/a.mp4"}, **spec}
        )
        return Asset(namespace="media", name="a", uid="u", generation=1, spec=model)

    plain, never = asset(), asset(transcode={"passthrough": "never"})
    assert transcode_job(plain, "v").passthrough == "auto"
    assert transcode_job(never, "v").passthrough == "never"
    # A spec written before `transcode` existed keeps its fingerprint (and its media).
    assert "transcode" not in plain.spec.model_dump(by_alias=True, exclude_none=True)
    assert plain.spec.fingerprint() == asset(transcode=None).spec.fingerprint()
    assert never.spec.fingerprint() != plain.spec.fingerprint()
