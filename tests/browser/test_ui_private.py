"""A private library in the browser: signed URLs on and a token set.

The UI takes the token from the ``#token=`` link ``kubevod serve`` prints, keeps it
in localStorage, drops it from the address bar and sends it on its API reads; the
player then follows the signed links the API handed out, which need no header.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kubevod.models import Video
from tests.browser.conftest import ApiServer
from tests.browser.ui_helpers import PLAYING

pytestmark = pytest.mark.browser

TOKEN = "Hq3zN7vKc1Rt9XwLp5Bm"
SECRET = "Ls8dF2kWq6Yn4TzR"


def test_a_private_library_asks_for_the_link_then_lists_and_plays_with_it(
    page: Any, serve_api: Callable[..., ApiServer], ready_video: Video
) -> None:
    server = serve_api(api_token=TOKEN, signing_secret=SECRET)
    api_calls: list[tuple[str, str | None, int]] = []
    page.on(
        "requestfinished",
        lambda r: api_calls.append(
            (r.url, r.all_headers().get("authorization"), r.response().status)
        ),
    )

    page.goto(f"{server.url}/")
    page.get_by_text("This library is private").wait_for(timeout=10_000)
    assert ready_video.title not in page.inner_text("main")

    page.goto("about:blank")  # the printed link opened afresh, not a same-page hash change
    page.goto(f"{server.url}/#token={TOKEN}")
    page.get_by_text(ready_video.title).first.wait_for(timeout=10_000)
    assert page.evaluate("location.hash") == ""  # not left in the address bar or history
    assert page.evaluate("localStorage.getItem('kubevod.token')") == TOKEN
    listings = [(auth, status) for url, auth, status in api_calls if "/api/videos?" in url]
    assert (f"Bearer {TOKEN}", 200) in listings, api_calls

    statuses: list[tuple[int, str]] = []
    page.on("response", lambda r: statuses.append((r.status, r.url)))
    page.goto(f"{server.url}/watch/{ready_video.id}")
    page.wait_for_function(PLAYING, timeout=20_000)
    media = [(s, u) for s, u in statuses if "/v/" in u or "/media/" in u]
    assert any(u.split("?")[0].endswith(".m4s") for _, u in media)
    signed = [(s, u) for s, u in media if "md5=" in u]
    assert signed and all(s in (200, 206) for s, _ in signed), signed
    # Only watch.html's <head> preload hint asks for the unsigned master (401, unused).
    unsigned = [u.split("?")[0] for _, u in media if "md5=" not in u]
    assert unsigned in ([], [f"{server.url}/v/{ready_video.id}/master.m3u8"]), unsigned
