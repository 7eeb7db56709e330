"""Pure parts of local mode: the add-time ffprobe check, API error messages,
progress lines, URLs and the demo video's ffmpeg command."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from kubevod.cli import demo_argv, play_url
from kubevod.jobs import TranscodeJob
from kubevod.local.client import error_reason
from kubevod.local.ingest import (
    content_hash_of_file,
    content_hash_of_url,
    default_title,
    is_url,
    probe_argv,
    probe_reason,
)
from kubevod.local.pool import job_for, one_line
from kubevod.local.progress import describe, percent, plain_line
from kubevod.local.server import client_url
from kubevod.models import Video

VIDEO_STREAMS = json.dumps({"streams": [{"codec_type": "video"}, {"codec_type": "audio"}]})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("/videos/a.mp4", False),
        ("movie.mkv", False),
        ("C:/x.mp4", False),
        ("http://nas/a.mp4", True),
        ("https://nas/a.mp4", True),
        ("file:///etc/passwd", True),
        ("ftp://x/y", True),
    ],
)
def test_is_url(source: str, expected: bool) -> None:
    assert is_url(source) is expected


@pytest.mark.parametrize(
    ("source", "title"),
    [
        ("/v/holiday_2024.mp4", "holiday 2024"),
        ("/v/clip.final.mkv", "clip.final"),
        ("https://nas.local/media/Film.mp4?sig=1", "Film"),
        ("https://nas.local/", "nas.local"),
    ],
)
def test_default_title_is_the_file_name(source: str, title: str) -> None:
    assert default_title(source) == title


def test_probe_argv_puts_the_input_policy_before_the_file() -> None:
    policy = ["-protocol_whitelist", "file", "-format_whitelist", "mov,matroska"]
    assert probe_argv("ffprobe", "/v/a.mp4", policy) == [
        "ffprobe", "-v", "error", *policy,
        "-of", "json", "-show_format", "-show_streams", "/v/a.mp4",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("source", "rc", "stdout", "stderr", "reason"),
    [
        ("/v/a.mp4", 0, VIDEO_STREAMS, "", None),
        ("/v/a.mp4", 1, "", "/v/a.mp4: Invalid data found when processing input\n",
         "not a readable video: Invalid data found when processing input"),
        ("/v/a.mp4", 1, "", "[mov] moov atom not found\n/v/a.mp4: Invalid data\n",
         "not a readable video: Invalid data"),
        ("http://h:1/a.mp4", 1, "", "http://h:1/a.mp4: Connection refused\n",
         "cannot fetch: Connection refused"),
        ("/v/a.mp4", 1, "", "", "not a readable video: ffprobe exited with 1"),
        ("/v/a.m4a", 0, json.dumps({"streams": [{"codec_type": "audio"}]}), "",
         "no video stream (audio only)"),
        ("/v/a.txt", 0, "{}", "", "no video stream"),
        ("/v/a.mp4", 0, "not json", "", "not a readable video: ffprobe gave no answer"),
    ],
)  # fmt: skip
def test_probe_reason_is_one_line_a_person_understands(
    source: str, rc: int, stdout: str, stderr: str, reason: str | None
) -> None:
    assert probe_reason(source, rc, stdout, stderr) == reason


def test_content_hashes_depend_on_bytes_not_names(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.mp4", tmp_path / "b.mkv", tmp_path / "c.mp4"
    a.write_bytes(b"same bytes" * 100_000)
    b.write_bytes(b"same bytes" * 100_000)
    c.write_bytes(b"other bytes")
    assert content_hash_of_file(a) == content_hash_of_file(b) != content_hash_of_file(c)
    assert content_hash_of_file(a).startswith("sha256:")
    assert content_hash_of_url("http://x/a") != content_hash_of_url("http://x/b")


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (422, {"message": "bad: no such file", "code": "invalid_input"}, "bad: no such file"),
        (404, {"detail": "not found"}, "not found"),
        (422, {"detail": [{"msg": "required"}, {"msg": "too long"}]}, "required; too long"),
        (500, None, "Internal Server Error"),
        (409, {"error": {"message": "exists"}}, "exists"),
    ],
)  # fmt: skip
def test_error_reason_reads_the_api_error_shapes(status: int, body: object, reason: str) -> None:
    response = httpx.Response(status, json=body) if body is not None else httpx.Response(status)
    assert error_reason(response) == reason


@pytest.mark.parametrize(
    ("video", "line"),
    [
        ({"state": "queued", "progress": 0}, "  0% queued"),
        ({"state": "transcoding", "progress": 42.4, "speed": 3.25}, " 42% transcoding (3.2x)"),
        ({"state": "transcoding", "progress": 60, "playable": True}, " 60% transcoding, playable"),
        ({"state": "transcoding", "progress": 180}, "100% transcoding"),
        ({"state": "transcoding", "progress": None}, "  0% transcoding"),
        ({"state": "ready", "progress": 99}, "100% ready"),
        ({"state": "failed", "progress": 12}, " 12% failed"),
    ],
)
def test_progress_lines(video: dict[str, object], line: str) -> None:
    assert plain_line(video) == line
    assert 0 <= percent(video) <= 100
    assert describe(video) in line


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8080, "http://127.0.0.1:8080"),
        ("0.0.0.0", 80, "http://127.0.0.1:80"),
        ("::1", 9000, "http://[::1]:9000"),
        ("nas.local", 8080, "http://nas.local:8080"),
    ],
)
def test_client_url(host: str, port: int, url: str) -> None:
    assert client_url(host, port) == url


def test_play_url_points_at_the_player_page() -> None:
    assert play_url("http://127.0.0.1:8080", {"id": "abc"}) == "http://127.0.0.1:8080/watch/abc"
    assert play_url(None, {"id": "abc"}) is None


def test_demo_video_is_20_seconds_of_720p_with_sound(tmp_path: Path) -> None:
    argv = demo_argv("ffmpeg", tmp_path / "demo.mp4")
    assert argv[0] == "ffmpeg" and argv[-1] == str(tmp_path / "demo.mp4")
    assert "testsrc2=size=1280x720:rate=30:duration=20" in argv
    assert any(a.startswith("sine=") for a in argv)
    assert argv[argv.index("-pix_fmt") + 1] == "yuv420p"


def test_job_for_remakes_a_video_from_its_recorded_source() -> None:
    video = Video(id="abc123", source="/v/a.mp4", generation=3, segment_seconds=6, title="A")
    assert job_for(video) == TranscodeJob(
        video_id="abc123", source="/v/a.mp4", generation=3, segment_seconds=6, title="A"
    )


def test_one_line_squashes_and_truncates() -> None:
    assert one_line(ValueError("a\n  b\tc")) == "a b c"
    assert one_line(RuntimeError()) == "RuntimeError"
    assert len(one_line(ValueError("x" * 1000))) == 300
