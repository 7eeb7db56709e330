"""Playback under network conditions a viewer meets: a video still being transcoded, no
network at all (a video saved for offline), and a link slower than the top rung needs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kubevod.models import Video, VideoState
from tests.browser.conftest import ApiServer, Backends, Transcode
from tests.browser.ui_helpers import PLAYING, open_player, player_state, wait_advance

pytestmark = pytest.mark.browser


def test_a_video_still_transcoding_starts_playing_before_it_is_finished(
    page: Any,
    ui_server: ApiServer,
    ui_backends: Backends,
    transcode_in_background: Callable[..., Transcode],
) -> None:
    # 12 s of source read at its real speed: the transcode takes about 12 s.
    run = transcode_in_background(seconds=12)
    page.goto(f"{ui_server.url}/")
    card = page.locator(f".card[data-id='{run.video_id}']")
    card.wait_for()
    assert card.locator(".badge").inner_text() in ("Queued",) or card.locator(
        ".badge"
    ).inner_text().startswith("Transcoding")

    page.goto(f"{ui_server.url}/watch/{run.video_id}")
    page.wait_for_function(PLAYING, timeout=30_000)
    # Playing while the worker is still at it, from an EVENT playlist (no ENDLIST yet).
    assert ui_backends.catalog.get(run.video_id).state == VideoState.TRANSCODING
    assert page.evaluate("kubevodPlayer.hls.levels[kubevodPlayer.hls.currentLevel].details.live")
    assert page.locator("#live-badge").is_visible()
    assert page.locator("#video-state").inner_text().startswith("Transcoding")
    # The seek bar spans the whole source; the part made so far is marked on it.
    assert page.locator("#time-duration").inner_text() == "0:12"
    ready = page.eval_on_selector("#seek-ready", "e => parseFloat(e.style.width)")
    assert 0 < ready < 100
    wait_advance(page, 1.0)


def test_a_saved_video_plays_with_the_network_off(
    page: Any, serve_api: Callable[..., ApiServer], ready_video: Video
) -> None:
    server = serve_api()
    open_player(page, server.url, ready_video.id)
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=10_000)
    page.hover("#player")
    page.click("#btn-save")
    page.click("#menu-save [data-height='180']")
    page.wait_for_function("kubevodPlayer.offline && kubevodPlayer.offline.rendition === '180p'")
    assert page.get_attribute("#btn-save", "aria-label") == "Saved for offline (180p)"

    # No network: the browser is offline and the server is gone (service workers' own
    # fetches are not covered by the browser's offline switch, a stopped server is).
    server.stop()
    page.context.set_offline(True)
    page.reload()
    page.wait_for_function(PLAYING, timeout=20_000)
    wait_advance(page, 1.5)
    state = player_state(page)
    assert [level["height"] for level in state["levels"]] == [180]
    assert page.locator("#video-title").inner_text() == "Test pattern"

    page.goto(server.url + "/")  # the library lists what is on this device
    page.locator(f".card[data-id='{ready_video.id}'] .badge-offline").wait_for()


def test_throttled_network_drops_to_a_lower_rung_instead_of_stalling(
    browser: Any, ui_server: ApiServer, ready_video: Video
) -> None:
    # Service workers fetch outside the page's DevTools throttling: keep them out of this one.
    context = browser.new_context(viewport={"width": 1280, "height": 720}, service_workers="block")
    try:
        page = context.new_page()
        # The last visit measured a fast network, so playback starts on the top rung...
        page.add_init_script("localStorage.setItem('kubevod:bandwidth', '50000000')")
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        # ...but now the link carries 900 kb/s: enough for 180p + audio, not for 360p.
        rate = 900_000 / 8
        conditions = {"offline": False, "latency": 40}
        cdp.send(
            "Network.emulateNetworkConditions",
            {**conditions, "downloadThroughput": rate, "uploadThroughput": rate},
        )
        open_player(page, ui_server.url, ready_video.id, timeout_ms=30_000)
        wait_advance(page, 3.0, timeout_ms=20_000)
        state = player_state(page)
        by_height = {level["height"]: level["index"] for level in state["levels"]}
        requested = page.evaluate("kubevodPlayer.requestedLevels")
        assert requested[0] == by_height[360], requested
        assert state["loadedLevels"][-1] == by_height[180], state["loadedLevels"]
        stalls = page.evaluate("kubevodPlayer.qoe.rebufferCount")
        assert stalls <= 1, f"{stalls} rebuffers"
    finally:
        context.close()
