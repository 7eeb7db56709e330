"""The watch folder of ``kubevod serve --watch``: a file copied in slowly is
added exactly once, once its copy has ended; other files are ignored."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kubevod.local.watch import WatchState, is_candidate
from tests.integration.local_mode import LocalServer, cli_env, clip

SIG = (1000, 1)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("movie.mp4", True),
        ("Movie.MKV", True),
        ("clip.webm", True),
        ("notes.txt", False),
        (".movie.mp4", False),  # hidden: rsync's temporary name
        ("movie.mp4.part", False),
        ("movie.mp4.crdownload", False),
        ("~movie.mov", False),
        ("movie", False),
    ],
)
def test_only_finished_video_files_are_candidates(name: str, expected: bool) -> None:
    assert is_candidate(name) is expected


def test_a_file_is_handed_over_once_its_size_and_mtime_hold_still() -> None:
    state = WatchState()
    assert state.scan({"a.mp4": (10, 1)}) == []  # first sight: maybe still copying
    assert state.scan({"a.mp4": (20, 2)}) == []  # grew
    assert state.scan({"a.mp4": (30, 3)}) == []  # grew
    assert state.scan({"a.mp4": (30, 3)}) == ["a.mp4"]  # stable across two scans
    assert state.scan({"a.mp4": (30, 3)}) == []  # exactly once
    assert state.scan({}) == []  # removed
    assert state.scan({"a.mp4": (30, 3)}) == []  # back, unchanged: still done
    assert state.scan({"a.mp4": (30, 3)}) == []


def test_a_changed_file_is_handed_over_again_and_empty_files_never() -> None:
    state = WatchState(done={"a.mp4": SIG})
    assert state.scan({"a.mp4": SIG, "e.mp4": (0, 5)}) == []
    assert state.scan({"a.mp4": SIG, "e.mp4": (0, 5)}) == []  # done, and empty
    assert state.scan({"a.mp4": (2000, 9), "b.mp4": SIG}) == []
    assert state.scan({"a.mp4": (2000, 9), "b.mp4": SIG}) == ["a.mp4", "b.mp4"]


@pytest.mark.integration
@pytest.mark.slow
def test_a_file_written_slowly_in_chunks_is_added_exactly_once(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = tmp_path / "data"
    source = clip(tmp_path / "slow.mp4", seconds=3).read_bytes()
    (inbox / "notes.txt").write_text("not a video")
    env = cli_env(KUBEVOD_WATCH_INTERVAL="0.5")
    server = LocalServer(data, "--watch", str(inbox), env=env).start()
    try:
        target = inbox / "slow.mp4"
        chunk = len(source) // 8 + 1
        with target.open("wb") as out:
            for offset in range(0, len(source), chunk):  # 8 chunks over ~2.4 s
                out.write(source[offset : offset + chunk])
                out.flush()
                time.sleep(0.3)
                assert server.videos() == [] or offset + chunk >= len(source)
        deadline = time.monotonic() + 30
        while not server.videos() and time.monotonic() < deadline:
            time.sleep(0.2)
        (video,) = server.videos()
        video = server.wait_for(video["id"], lambda v: v["state"] in ("ready", "failed"))
        assert video["state"] == "ready", video
        assert video["title"] == "slow"
        time.sleep(1.5)  # three more scans: nothing new
        assert [v["id"] for v in server.videos()] == [video["id"]]
    finally:
        server.stop()
    # A restart scans the folder again: still exactly one video.
    server = LocalServer(data, "--watch", str(inbox), env=env).start()
    try:
        time.sleep(1.5)
        assert [v["id"] for v in server.videos()] == [video["id"]]
    finally:
        server.stop()
