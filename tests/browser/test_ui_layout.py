"""The library and the player on a phone and on a TV-sized screen: nothing overflows, every
control is a comfortable touch target (44 px), and the UI scales up for the sofa.

Screenshots land in the test's tmp folder (or in $KUBEVOD_SCREENSHOTS) for a person to look at.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from kubevod.models import Video
from tests.browser.conftest import ApiServer
from tests.browser.ui_helpers import open_player

pytestmark = pytest.mark.browser

SCREENS: dict[str, dict[str, Any]] = {
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
    "tv": {"viewport": {"width": 1920, "height": 1080}},
}

#: Visible interactive elements smaller than 44x44 CSS px, as "tag#id.class WxH" strings.
SMALL_TARGETS = """() => {
  const out = [];
  for (const el of document.querySelectorAll('a, button, input, select, [role^=menuitem]')) {
    if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    const r = el.getBoundingClientRect();
    if (r.bottom < 0 || r.right < 0 || r.top > innerHeight || r.left > innerWidth) continue;
    if (r.width < 44 || r.height < 44)
      out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} ${r.width}x${r.height}`);
  }
  return out;
}"""

NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= innerWidth"


def screenshot(page: Any, folder: Path, name: str) -> None:
    out = Path(os.environ.get("KUBEVOD_SCREENSHOTS") or folder)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f"{name}.png"))


@pytest.mark.parametrize("screen", sorted(SCREENS))
def test_library_and_player_fit_the_screen(
    browser: Any, ui_server: ApiServer, ready_video: Video, screen: str, tmp_path: Path
) -> None:
    context = browser.new_context(**SCREENS[screen], service_workers="block")
    try:
        page = context.new_page()
        page.goto(f"{ui_server.url}/")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.card img')].every(i => i.naturalWidth > 0)"
            " && document.querySelector('.card')"
        )
        screenshot(page, tmp_path, f"library-{screen}")
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
        assert page.evaluate(SMALL_TARGETS) == []
        if screen == "tv":
            # Readable from a distance: the rem-based UI is scaled up, text is large.
            assert (
                page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
                >= 20
            )
            columns = page.evaluate(
                "getComputedStyle(document.getElementById('grid'))"
                ".gridTemplateColumns.split(' ').length"
            )
            assert 4 <= columns <= 7

        open_player(page, ui_server.url, ready_video.id)
        page.wait_for_timeout(300)  # let the first frame settle for the screenshot
        screenshot(page, tmp_path, f"player-{screen}")
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
        assert page.evaluate(SMALL_TARGETS) == []
        player = page.locator("#player").bounding_box()
        assert player["width"] >= SCREENS[screen]["viewport"]["width"] * 0.85

        page.click("#btn-quality") if screen == "tv" else page.tap("#btn-quality")
        page.locator("#menu-quality").wait_for()
        screenshot(page, tmp_path, f"player-menu-{screen}")
        assert page.evaluate(SMALL_TARGETS) == []
    finally:
        context.close()
