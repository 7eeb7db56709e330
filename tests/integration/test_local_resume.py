"""A server stopped mid-transcode, by SIGKILL or by Ctrl-C: the next start
finishes the interrupted video from scratch and leaves finished ones alone;
a clean stop leaves no ffmpeg running and nothing claiming to be in progress."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.local_mode import (
    LocalServer,
    cli_env,
    clip,
    download_everything,
    kubevod,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: A slower preset than the other tests, so a transcode lasts long enough to be interrupted.
SLOW = cli_env(KUBEVOD_X264_PRESET="veryfast")


def _media_files(data: Path, video_id: str) -> dict[str, int]:
    root = data / "media" / "videos" / video_id
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _add_no_wait(server: LocalServer, source: Path) -> str:
    done = kubevod("add", str(source), "--server", server.url, "--no-wait", "--json", env=SLOW)
    assert done.returncode == 0, done.stderr + server.log()
    video_id: str = json.loads(done.stdout)["id"]
    return video_id


def _mid_transcode(video: dict[str, Any]) -> bool:
    assert video["state"] != "ready", "finished before it could be interrupted"
    return video["state"] == "transcoding" and bool(video["playable"])


def _ffmpeg_using(folder: Path) -> list[int]:
    """Pids of processes whose command line mentions ``folder`` (ffmpeg in its scratch)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if str(folder) in argv and "ffmpeg" in argv:
                found.append(int(entry.name))
    return found


def test_sigkill_mid_transcode_then_restart_completes_it_and_keeps_finished_ones(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    short = clip(tmp_path / "short.mp4", seconds=2)
    long = clip(tmp_path / "long.mp4", seconds=16, width=640, height=360)
    server = LocalServer(data, env=SLOW).start()
    try:
        finished = _add_no_wait(server, short)
        server.wait_for(finished, lambda v: v["state"] == "ready")
        before = _media_files(data, finished)
        stamp = server.video(finished)["updated_at"]
        interrupted = _add_no_wait(server, long)
        server.wait_for(interrupted, _mid_transcode, timeout=60)
        killed = server.pid
        os.kill(killed, signal.SIGKILL)
        assert server.process.proc is not None
        server.process.proc.wait(10)
        assert (
            server.video_offline(interrupted)["state"] == "transcoding"
        )  # stale, as after a crash
        # Its ffmpeg loses the progress pipe's reader and ends on its own: no orphan encodes on.
        deadline = time.monotonic() + 10
        while _ffmpeg_using(data) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _ffmpeg_using(data) == []
    finally:
        pgid = server.pid if server.process.proc else None
        server.stop()
        if pgid:
            with contextlib.suppress(ProcessLookupError):  # its orphaned ffmpeg, if any
                os.killpg(pgid, signal.SIGKILL)

    server = LocalServer(data, env=SLOW).start()
    try:
        video = server.wait_for(interrupted, lambda v: v["state"] in ("ready", "failed"), 90)
        assert video["state"] == "ready", video
        assert video["duration"] == pytest.approx(16, abs=0.2)
        assert download_everything(server.url, interrupted) > 0
        again = server.video(finished)
        assert (again["state"], again["updated_at"]) == ("ready", stamp)
        assert _media_files(data, finished) == before  # not transcoded twice
    finally:
        server.stop()


def test_ctrl_c_stops_ffmpeg_and_leaves_the_video_queued_for_the_next_start(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    long = clip(tmp_path / "long.mp4", seconds=16, width=640, height=360)
    server = LocalServer(data, env=SLOW).start()
    try:
        video_id = _add_no_wait(server, long)
        server.wait_for(video_id, _mid_transcode, timeout=60)
        assert _ffmpeg_using(data)
        started = time.monotonic()
        os.kill(server.pid, signal.SIGINT)
        assert server.process.proc is not None
        assert server.process.proc.wait(20) == 0, server.log()
        stop_seconds = time.monotonic() - started
    finally:
        server.stop()
    assert stop_seconds < 10
    assert _ffmpeg_using(data) == []
    shown = kubevod("show", video_id, "--data", str(data), "--json")
    assert shown.returncode == 0, shown.stderr
    video = json.loads(shown.stdout)
    assert (video["state"], video["playable"], video["progress"]) == ("queued", False, 0)
    assert not (data / "server.json").exists()

    server = LocalServer(data).start()
    try:
        video = server.wait_for(video_id, lambda v: v["state"] in ("ready", "failed"), 90)
        assert video["state"] == "ready", video
    finally:
        server.stop()
