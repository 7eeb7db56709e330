"""The player page in real Chromium against the real API and a video the real worker made."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from kubevod.models import Video
from tests.browser.conftest import ApiServer
from tests.browser.ui_helpers import PLAYING, current_time, open_player, player_state, wait_advance

pytestmark = pytest.mark.browser


def test_watch_page_plays_and_the_clock_advances(
    page: Any, ui_server: ApiServer, ready_video: Video
) -> None:
    open_player(page, ui_server.url, ready_video.id)
    wait_advance(page, 1.0)
    state = player_state(page)
    assert state["mode"] == "hls.js"
    assert state["errors"] == []
    assert page.locator("#video-title").inner_text() == "Test pattern"
    assert page.locator("#time-duration").inner_text() == "0:08"


def test_each_quality_level_can_be_forced_from_the_menu(
    page: Any, ui_server: ApiServer, ready_video: Video
) -> None:
    open_player(page, ui_server.url, ready_video.id)
    levels = player_state(page)["levels"]
    assert sorted(level["height"] for level in levels) == [180, 360]
    for level in sorted(levels, key=lambda lv: -lv["bitrate"]) + levels:
        page.hover("#player")
        page.click("#btn-quality")
        page.click(f"#menu-quality [data-level='{level['index']}']")
        # The next fragments come from the chosen rung and the picture has its size.
        page.wait_for_function(
            f"() => kubevodPlayer.loadedLevels.at(-1) === {level['index']}"
            f" && document.querySelector('video').videoHeight === {level['height']}",
            timeout=10_000,
        )
    page.hover("#player")
    page.click("#btn-quality")
    page.click("#menu-quality [data-level='-1']")
    assert page.evaluate("kubevodPlayer.hls.autoLevelEnabled") is True
    assert page.get_attribute("#btn-quality", "aria-label") == "Quality: Auto"


def test_trickplay_thumbnails_show_on_seek_bar_hover(
    page: Any, ui_server: ApiServer, ready_video: Video
) -> None:
    sprites: list[Any] = []
    page.on("response", lambda r: sprites.append(r) if "/trickplay/" in r.url else None)
    open_player(page, ui_server.url, ready_video.id)
    box = page.locator("#seek").bounding_box()
    positions = []
    for fraction in (0.15, 0.8):
        page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)
        page.wait_for_function(
            "() => { const t = document.getElementById('seek-thumb');"
            " return !document.getElementById('seek-preview').hidden && !t.hidden"
            " && kubevodPlayer.trickplay?.loaded.has(t.dataset.src); }",
            timeout=10_000,
        )
        positions.append(page.eval_on_selector("#seek-thumb", "t => t.style.backgroundPosition"))
    assert positions[0] != positions[1], "different times must show different tiles"
    images = [r for r in sprites if r.url.split("?")[0].endswith(".jpg")]
    assert images and all(r.status == 200 for r in images)
    assert images[0].header_value("content-type") == "image/jpeg"


def test_keyboard_shortcuts_and_resume_where_the_viewer_left_off(
    page: Any, ui_server: ApiServer, ready_video: Video
) -> None:
    open_player(page, ui_server.url, ready_video.id)
    page.keyboard.press("k")
    page.wait_for_function("document.querySelector('video').paused")
    page.keyboard.press("7")  # 70 % of 8 s
    page.wait_for_function("Math.abs(document.querySelector('video').currentTime - 5.6) < 0.3")
    page.keyboard.press("ArrowLeft")  # back 5 s
    page.wait_for_function("Math.abs(document.querySelector('video').currentTime - 0.6) < 0.3")
    page.keyboard.press("l")  # forward 10 s, clamped to the end
    page.wait_for_function("document.querySelector('video').currentTime > 7.5")
    page.keyboard.press("5")  # 50 %
    page.wait_for_function("Math.abs(document.querySelector('video').currentTime - 4.0) < 0.3")
    page.keyboard.press("m")
    assert page.evaluate("document.querySelector('video').muted") is True
    page.keyboard.press("m")
    page.keyboard.press(" ")
    page.wait_for_function("!document.querySelector('video').paused")
    page.keyboard.press(" ")
    page.wait_for_function("document.querySelector('video').paused")
    left_at = current_time(page)

    page.reload()
    page.wait_for_function(PLAYING, timeout=20_000)
    assert current_time(page) >= left_at - 0.5
    assert "Resuming at 0:04" in page.locator("#toast").inner_text()


def test_library_lists_the_video_with_poster_and_finds_it_by_title(
    page: Any, ui_server: ApiServer, ready_video: Video
) -> None:
    page.goto(f"{ui_server.url}/")
    card = page.locator(f".card[data-id='{ready_video.id}']")
    card.wait_for()
    assert card.locator(".card-title").inner_text() == "Test pattern"
    assert card.locator(".duration").inner_text() == "0:08"
    page.wait_for_function(
        f"() => document.querySelector(\".card[data-id='{ready_video.id}'] img\")?.naturalWidth > 0"
    )
    page.fill("#q", "no such video")
    page.locator(".empty").wait_for()
    assert card.count() == 0
    page.fill("#q", "PATTERN")
    card.wait_for()

    page.goto(f"{ui_server.url}/?tag=no-such-tag")  # the tag links of the watch page
    page.locator(".empty").wait_for()
    page.click("#library-count .chip")  # removes the filter
    card.wait_for()
    assert page.url == f"{ui_server.url}/"
    card.click()
    page.wait_for_url(f"**/watch/{ready_video.id}")
    page.wait_for_function(PLAYING, timeout=20_000)


def test_qoe_beacons_reach_the_api(page: Any, ui_server: ApiServer, ready_video: Video) -> None:
    before = httpx.get(f"{ui_server.url}/api/videos/{ready_video.id}/qoe").json()["sessions"]
    open_player(page, ui_server.url, ready_video.id)
    wait_advance(page, 0.5)
    page.goto(f"{ui_server.url}/")  # pagehide sends the final beacon
    deadline = time.monotonic() + 10
    while True:
        stats = httpx.get(f"{ui_server.url}/api/videos/{ready_video.id}/qoe").json()
        if stats["sessions"] > before or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert stats["sessions"] > before
    assert stats["startup_ms_avg"] is not None and stats["startup_ms_avg"] > 0


def test_captions_menu_shows_and_hides_the_webvtt_subtitles(
    page: Any, ui_server: ApiServer, ready_video: Video
) -> None:
    assert [s.language for s in ready_video.subtitles] == ["eng"]
    open_player(page, ui_server.url, ready_video.id)
    page.keyboard.press("k")
    page.keyboard.press("1")  # 0.8 s: inside the first cue
    page.hover("#player")
    page.click("#btn-cc")
    page.click("#menu-cc [data-lang='eng']")
    page.wait_for_function(
        "() => { const t = [...document.querySelector('video').textTracks]"
        ".find(t => t.mode === 'showing');"
        " return t && t.activeCues && t.activeCues.length"
        " && t.activeCues[0].text === 'Hello from the captions'; }",
        timeout=10_000,
    )
    assert page.get_attribute("#btn-cc", "aria-pressed") == "true"
    page.keyboard.press("c")  # the shortcut turns them off again
    page.wait_for_function(
        "[...document.querySelector('video').textTracks].every(t => t.mode !== 'showing')"
    )
    assert page.get_attribute("#btn-cc", "aria-pressed") == "false"


def test_native_hls_plays_where_there_is_no_media_source_extensions(
    page: Any, ui_server: ApiServer, ready_video: Video
) -> None:
    # As on an iPhone: no MSE, so the browser's own HLS player gets the master playlist.
    page.add_init_script("delete window.MediaSource; delete window.ManagedMediaSource;")
    open_player(page, ui_server.url, ready_video.id)
    wait_advance(page, 1.0)
    assert player_state(page)["mode"] == "native"
    assert page.locator("#btn-quality").is_hidden()
