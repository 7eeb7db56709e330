"""The ffmpeg input policy (pure): allowed demuxers, limits, and ffmpeg's stripped environment."""

from __future__ import annotations

from dataclasses import replace

import pytest
from kubevod.worker.policy import (
    DEMUXERS,
    SourceLimits,
    check_source,
    demuxer_allowed,
    input_args,
)
from kubevod.worker.probe import SourceInfo, VideoStream
from kubevod.worker.process import MALLOC_ENV, ffmpeg_env

from kubevod.errors import SourceError

INFO = SourceInfo(
    path="/s/source.bin",
    format_name="mov,mp4,m4a,3gp,3g2,mj2",
    duration=60.0,
    size=1000,
    bitrate=None,
    video=VideoStream(index=0, codec="h264", width=1920, height=1080, fps=30.0),
    streams=2,
)


def test_input_args_allow_only_files_and_video_containers() -> None:
    args = input_args()
    assert args[:2] == ["-protocol_whitelist", "file"]
    assert args[2] == "-format_whitelist"
    allowed = args[3].split(",")
    for hostile in ("tty", "image2", "hls", "concat", "lavfi", "http", "sdp", "rtp", "subviewer"):
        assert hostile not in allowed


@pytest.mark.parametrize(
    ("format_name", "allowed"),
    [
        ("mov,mp4,m4a,3gp,3g2,mj2", True),
        ("matroska,webm", True),
        ("mpegts", True),
        ("avi", True),
        ("tty", False),  # a text file as frames
        ("image2", False),  # numbered files beside the source
        ("hls", False),  # a playlist naming other files or URLs
        ("concat", False),
        ("png_pipe", False),
        ("srt", False),
    ],
)
def test_demuxer_allowlist(format_name: str, allowed: bool) -> None:
    assert demuxer_allowed(format_name) is allowed


def test_every_allowed_demuxer_is_a_container_name() -> None:
    assert all(name.isalnum() for name in DEMUXERS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_name": "tty"}, "the source is a tty file, not a video container"),
        ({"video": replace(INFO.video, width=16384, height=16384)}, r"16384x16384 \(268\.4 Mpx\)"),
        ({"video": replace(INFO.video, fps=1000.0)}, "1000 frames/s, over the limit of 240"),
        ({"duration": 90_000.0}, r"lasts 25\.0 h, over the limit of 24\.0 h"),
        ({"streams": 500}, "holds 500 streams, over the limit of 64"),
    ],
)
def test_check_source_refuses_with_the_reason(change: dict[str, object], message: str) -> None:
    with pytest.raises(SourceError, match=message):
        check_source(replace(INFO, **change), SourceLimits())  # type: ignore[arg-type]


def test_check_source_passes_a_normal_source_and_honours_custom_limits() -> None:
    check_source(INFO, SourceLimits())
    with pytest.raises(SourceError, match=r"over the limit of 0\.9 Mpx"):
        check_source(INFO, SourceLimits(max_pixels=1280 * 720))


def test_ffmpeg_env_keeps_no_credentials() -> None:
    base = {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "HOME": "/scratch",
        "TMPDIR": "/scratch",
        "NVIDIA_VISIBLE_DEVICES": "all",
        "KUBEVOD_STORE_URL": "s3://root:secret@minio:9000/kubevod",
        "KUBEVOD_CATALOG_URL": "mongodb://root:secret@mongo/kubevod",
        "AWS_SECRET_ACCESS_KEY": "x",
        "MINIO_ROOT_PASSWORD": "x",
        "KUBERNETES_SERVICE_HOST": "10.43.0.1",
        "TRACEPARENT": "00-abc",
    }
    env = ffmpeg_env(base)
    assert env == {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "HOME": "/scratch",
        "TMPDIR": "/scratch",
        "NVIDIA_VISIBLE_DEVICES": "all",
        **MALLOC_ENV,
    }
