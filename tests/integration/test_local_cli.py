"""Local mode end to end, as a new user would: ``kubevod serve`` on a fresh data
folder, ``kubevod add`` of a generated file, the library from the terminal,
and playback files over HTTP. Real processes, real ffmpeg, no mocks."""

from __future__ import annotations

import functools
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.util import free_port
from tests.integration.local_mode import (
    LocalServer,
    clip,
    download_everything,
    kubevod,
    library,
    nas_server,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-cli")


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[LocalServer]:
    with nas_server(workdir / "data") as server:
        yield server


@pytest.fixture(scope="module")
def added(server: LocalServer, workdir: Path) -> dict[str, Any]:
    """``kubevod add`` of a 3 s clip, waited for until ready; its output and video."""
    source = clip(workdir / "holiday.mp4", seconds=3)
    done = kubevod("add", str(source), "--tag", "family", "--data", str(server.data), "--json")
    assert done.returncode == 0, done.stderr + server.log()
    return {"source": source, "stderr": done.stderr, "video": json.loads(done.stdout)}


def test_add_shows_progress_to_100_percent_and_lists_the_video_ready(
    server: LocalServer, added: dict[str, Any]
) -> None:
    video = added["video"]
    assert "100%" in added["stderr"]
    assert f"Ready: {server.url}/watch/{video['id']}" in added["stderr"]
    assert video["state"] == "ready" and video["playable"]
    assert video["title"] == "holiday" and video["tags"] == ["family"]
    (item,) = [v for v in library(server.data) if v["id"] == video["id"]]
    assert item["state"] == "ready"
    assert item["duration"] == pytest.approx(3, abs=0.2)


def test_master_playlist_and_every_segment_download(
    server: LocalServer, added: dict[str, Any]
) -> None:
    assert download_everything(server.url, added["video"]["id"]) > 10_000


def test_show_prints_the_video_and_json_matches_the_api(
    server: LocalServer, added: dict[str, Any]
) -> None:
    video_id = added["video"]["id"]
    table = kubevod("show", video_id, "--data", str(server.data))
    assert table.returncode == 0, table.stderr
    assert "ready" in table.stdout and "holiday" in table.stdout
    as_json = json.loads(kubevod("show", video_id, "--server", server.url, "--json").stdout)
    assert as_json == server.video(video_id)
    missing = kubevod("show", "0123456789ab", "--data", str(server.data))
    assert missing.returncode != 0 and "no video" in missing.stderr


def test_two_adds_of_the_same_file_make_one_video(
    server: LocalServer, added: dict[str, Any], workdir: Path
) -> None:
    before = len(library(server.data))
    copy = shutil.copy(added["source"], workdir / "holiday-copy.mp4")
    for source in (added["source"], copy):
        again = kubevod("add", str(source), "--data", str(server.data), "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["id"] == added["video"]["id"]
    assert len(library(server.data)) == before


def _assert_nothing_playable(server: LocalServer, before: list[str]) -> None:
    items = server.videos()
    assert [v["id"] for v in items] == before
    assert all(v["state"] == "ready" for v in items)


def test_broken_file_fails_at_add_with_a_one_line_reason(
    server: LocalServer, added: dict[str, Any], workdir: Path
) -> None:
    before = [v["id"] for v in server.videos()]
    broken = workdir / "broken.mp4"
    broken.write_bytes(added["source"].read_bytes()[:2000])  # truncated: no moov atom
    done = kubevod("add", str(broken), "--data", str(server.data))
    assert done.returncode != 0
    reason = done.stderr.strip()
    assert reason.startswith("error: ") and "\n" not in reason
    assert "broken.mp4" in reason
    _assert_nothing_playable(server, before)


def test_unreachable_url_fails_at_add_with_a_one_line_reason(server: LocalServer) -> None:
    before = [v["id"] for v in server.videos()]
    url = f"http://127.0.0.1:{free_port()}/movie.mp4"  # nothing listens there
    done = kubevod("add", url, "--server", server.url)
    assert done.returncode != 0
    reason = done.stderr.strip()
    assert reason.startswith("error: ") and "\n" not in reason
    assert "refused" in reason.lower() or "cannot fetch" in reason.lower()
    _assert_nothing_playable(server, before)


def test_add_of_an_http_url_is_fetched_and_transcoded(server: LocalServer, workdir: Path) -> None:
    folder = workdir / "www"
    folder.mkdir()
    clip(folder / "remote.mp4", seconds=1)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    web = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{web.server_port}/remote.mp4"
        done = kubevod("add", url, "--server", server.url, "--json")
        assert done.returncode == 0, done.stderr + server.log()
        video = json.loads(done.stdout)
        assert (video["state"], video["title"], video["source"]) == ("ready", "remote", url)
        again = kubevod("add", url, "--server", server.url, "--no-wait", "--json")
        assert json.loads(again.stdout)["id"] == video["id"]  # the same URL: the same video
    finally:
        web.shutdown()
        web.server_close()


def test_missing_file_fails_with_the_path_in_the_reason(server: LocalServer) -> None:
    done = kubevod("add", "/no/such/movie.mkv", "--data", str(server.data))
    assert done.returncode != 0
    assert done.stderr.strip() == "error: /no/such/movie.mkv: no such file"


def test_rm_removes_the_video_and_its_media(server: LocalServer, workdir: Path) -> None:
    source = clip(workdir / "short.mp4", seconds=1, audio=False)
    done = kubevod("add", str(source), "--data", str(server.data), "--no-wait", "--json")
    assert done.returncode == 0, done.stderr
    video_id = json.loads(done.stdout)["id"]
    server.wait_for(video_id, lambda v: v["state"] in ("ready", "failed"))
    assert (server.data / "media" / "videos" / video_id).exists()
    gone = kubevod("rm", video_id, "--data", str(server.data))
    assert gone.returncode == 0, gone.stderr
    assert video_id not in [v["id"] for v in library(server.data)]
    assert httpx.get(f"{server.url}/api/videos/{video_id}").status_code == 404
    assert not (server.data / "media" / "videos" / video_id).exists()


def test_add_without_a_server_transcodes_in_the_foreground_or_queues_for_serve(
    workdir: Path,
) -> None:
    data = workdir / "offline"
    source = clip(workdir / "offline.mp4", seconds=2)
    done = kubevod("add", str(source), "--data", str(data), "--title", "Offline", "--json")
    assert done.returncode == 0, done.stderr
    video = json.loads(done.stdout)
    assert (video["state"], video["title"]) == ("ready", "Offline")
    assert "100% ready" in done.stderr
    items = library(data)
    assert [(v["id"], v["state"]) for v in items] == [(video["id"], "ready")]
    # --no-wait with no server only registers it; the next `serve` transcodes it.
    later = clip(workdir / "later.mp4", seconds=1)
    queued = kubevod("add", str(later), "--data", str(data), "--no-wait", "--json")
    assert queued.returncode == 0, queued.stderr
    assert json.loads(queued.stdout)["state"] == "queued"
    server = LocalServer(data).start()
    try:
        done = server.wait_for(json.loads(queued.stdout)["id"], lambda v: v["state"] == "ready")
        assert done["playable"]
    finally:
        server.stop()


@pytest.mark.browser
def test_chromium_plays_the_added_video_from_the_printed_link(
    server: LocalServer, added: dict[str, Any], page: Any
) -> None:
    video_id = added["video"]["id"]
    page.goto(f"{server.url}/watch/{video_id}")
    page.wait_for_function(
        "() => { const v = document.querySelector('video');"
        " return v && !v.paused && v.readyState >= 3 && v.currentTime > 1.0; }",
        timeout=20_000,
    )
