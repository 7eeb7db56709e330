"""On-demand videos and videos still transcoding in real Chromium, against the real API with
local mode's real pool and pipeline: the seek bar shows which parts exist, and never offers
a seek that cannot be answered.

- An on-demand video (20 s, chunks of 4 s) registered by the real pool: the seek bar draws
  exactly its encoded chunks, says "1 of 5 parts encoded" to assistive technology, a seek
  into a part not encoded yet says "Preparing this part…", plays there once the server has
  encoded it, and the band then grows; the library labels it "On demand · 1 of 5 parts".
- A video still transcoding (EVENT playlist): the seek bar marks the rest as out of reach
  and every way of seeking stops at the end of what exists.
- The UI's chunk arithmetic (parts.js) against ``MediaPlan`` itself.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from kubevod.backends import open_catalog, open_store
from kubevod.jobs import TranscodeJob
from kubevod.lifecycle import Lifecycle, queued_entry
from kubevod.local.pool import LocalPool
from kubevod.models import MediaPlan, TrackKind, TranscodePolicy, Video, VideoState, new_video_id
from kubevod.timeline import chunk_of
from tests.browser.conftest import ApiServer, Backends, Transcode, start_api
from tests.browser.ui_helpers import PLAYING, current_time
from tests.fixtures.media import make_video
from tests.integration.worker_media import fast_settings

pytestmark = pytest.mark.browser

#: A segment as the media origin serves it: /media/<id>/<attempt>/<rendition>/<seq>.m4s
SEGMENT_URL = re.compile(r"/media/(?P<id>[^/]+)/g[^/]+/(?P<rendition>[^/]+)/(?P<seq>\d+)\.m4s")

#: Each encoded band of the seek bar: its data and its geometry relative to the track.
#: With the chunks the page was told are encoded (read together: no poll in between).
BANDS = """() => {
  const track = document.querySelector('.seek-track').getBoundingClientRect();
  const bands = [...document.querySelectorAll('#seek-parts .seek-part')].map((b) => {
    const r = b.getBoundingClientRect();
    return {first: +b.dataset.first, last: +b.dataset.last, start: +b.dataset.start,
            end: +b.dataset.end, left: (r.left - track.left) / track.width,
            width: r.width / track.width};
  });
  return {bands, done: kubevodPlayer.video.chunks_done};
}"""


@dataclass
class OnDemandSite:
    """The API with local mode's pool (``chunks=``) on backends of its own."""

    server: ApiServer
    backends: Backends
    pool: LocalPool
    work: Path

    @property
    def url(self) -> str:
        return self.server.url

    def register(self, title: str, seconds: float = 20) -> Video:
        """Add a clip on demand as local mode does; returns it once it is playable."""
        source = make_video(self.work / f"{new_video_id()}.mp4", seconds=seconds, fps=30)
        job = TranscodeJob(
            video_id=new_video_id(),
            source=str(source),
            segment_seconds=2,
            policy=TranscodePolicy.ON_DEMAND,
            title=title,
        )
        Lifecycle(self.backends.catalog, self.backends.store).register(queued_entry(job))
        self.pool.submit(job)
        assert self.pool.wait_for(job.video_id, timeout=120)
        video = self.backends.catalog.get(job.video_id)
        assert video.state == VideoState.READY and video.playable, video.message
        assert video.plan is not None and video.chunks_done == [0]
        return video

    def video(self, video_id: str) -> Video:
        return self.backends.catalog.get(video_id)


@pytest.fixture(scope="module")
def on_demand_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OnDemandSite]:
    root = tmp_path_factory.mktemp("on-demand")
    backends = Backends(
        root=root,
        store=open_store((root / "media").as_uri()),
        catalog=open_catalog(f"sqlite://{root / 'catalog.db'}"),
    )
    pool = LocalPool(
        store=backends.store,
        catalog=backends.catalog,
        scratch=root / "scratch",
        # The pool's default promotion (to a background completion) is never reached here.
        worker_settings=fast_settings(on_demand_chunk_seconds=4),
    )
    pool.start()
    server = start_api(backends, chunks=pool, on_demand_wait_s=30)
    try:
        yield OnDemandSite(server=server, backends=backends, pool=pool, work=root)
    finally:
        server.stop()
        pool.shutdown()
        backends.catalog.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page whose requests all go through ``page.route`` (no service worker fetching)."""
    context = browser.new_context(viewport={"width": 1280, "height": 720}, service_workers="block")
    pg = context.new_page()
    yield pg
    context.close()


class SegmentGate:
    """Holds the player's requests for segments of chunks not let through yet (they never
    reach the server, so the server encodes nothing for them); lets the others pass."""

    def __init__(self, page: Any, video: Video) -> None:
        assert video.plan is not None
        self.chunks = video.plan.chunks()
        self.video_renditions = {r.name for r in video.renditions if r.kind == TrackKind.VIDEO}
        self.open: set[int] = set(video.chunks_done)
        self.asked: list[int] = []  # the chunk of every video segment that reached the server
        page.route(lambda url: SEGMENT_URL.search(url) is not None, self._route)

    def _route(self, route: Any) -> None:
        match = SEGMENT_URL.search(route.request.url)
        assert match is not None
        if match["rendition"] not in self.video_renditions:
            route.continue_()  # audio: encoded whole at registration
            return
        chunk = chunk_of(self.chunks, int(match["seq"])).index
        if chunk in self.open:
            self.asked.append(chunk)
            route.continue_()
        # else: held, unanswered; the player gives it up when it seeks elsewhere


def spans(plan: MediaPlan) -> list[tuple[float, float]]:
    """Each chunk's [start, end) on the player's clock, from the server's own plan."""
    segments = plan.segments()
    out = []
    for chunk in plan.chunks():
        start = segments[chunk.first][0] - plan.offset
        last_start, last_length = segments[chunk.last]
        out.append((start, last_start - plan.offset + last_length))
    return out


def check_bands(page: Any, video: Video) -> list[int]:
    """The seek bar's bands are exactly the chunks the page was last told are encoded,
    neighbours merged, where the server's plan puts them; returns those chunks."""
    assert video.plan is not None
    where = spans(video.plan)
    seen = page.evaluate(BANDS)
    bands, done = seen["bands"], seen["done"]
    runs: list[list[int]] = []
    for index in sorted(done):
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    assert [(b["first"], b["last"]) for b in bands] == [(r[0], r[-1]) for r in runs]
    for band, run in zip(bands, runs, strict=True):
        start, end = where[run[0]][0], where[run[-1]][1]
        assert band["start"] == pytest.approx(start, abs=1e-3)
        assert band["end"] == pytest.approx(end, abs=1e-3)
        assert band["left"] == pytest.approx(start / video.duration, abs=0.005)
        assert band["width"] == pytest.approx((end - start) / video.duration, abs=0.005)
    return sorted(done)


def test_on_demand_parts_on_the_seek_bar_a_seek_into_one_not_encoded_and_the_library(
    page: Any, on_demand_site: OnDemandSite
) -> None:
    video = on_demand_site.register("Made when watched")
    assert video.plan is not None
    total = len(video.plan.chunks())
    assert total == 5, video.plan
    where = spans(video.plan)

    # The library: a small label with the parts, not "Transcoding".
    page.goto(f"{on_demand_site.url}/")
    card = page.locator(f".card[data-id='{video.id}']")
    expect(card.locator(".badge")).to_have_text("On demand · 1 of 5 parts")
    assert "Transcoding" not in card.inner_text()

    # The watch page, with the player kept to the encoded chunk: exactly it is drawn.
    gate = SegmentGate(page, video)
    page.goto(f"{on_demand_site.url}/watch/{video.id}")
    page.wait_for_function(PLAYING, timeout=20_000)
    assert on_demand_site.video(video.id).chunks_done == [0]
    assert check_bands(page, video) == [0]
    seek = page.get_by_role("slider", name="Seek")
    expect(seek).to_have_accessible_description(re.compile(r"^1 of 5 parts encoded"))
    assert page.get_attribute("#seek", "data-parts-done") == "1"
    assert page.locator("#live-badge").is_hidden() and page.locator("#video-state").is_hidden()
    # Hovering over a part not encoded yet says what happens there.
    box = page.locator("#seek").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] / 2)
    expect(page.locator("#seek-time")).to_have_text(re.compile(r"^0:1[34] · encoded when watched$"))

    # Played through to the end of the encoded part (the next is held back, as if its
    # encode took long): the page says it is preparing the next part, not a still frame.
    preparing = page.locator("#player-preparing")
    expect(preparing).to_contain_text("Preparing this part…", timeout=15_000)
    expect(preparing).to_contain_text("Part 2 of 5 is being encoded")
    assert page.get_attribute("#player", "data-preparing") == "1"

    # A seek into the fourth part (13-17 s), not encoded: the page says it is preparing it
    # over a dimmed picture, and plays there once the server has encoded it.
    target_chunk = 3
    target = (where[target_chunk][0] + where[target_chunk][1]) / 2
    gate.open |= {target_chunk, target_chunk + 1}  # the server encodes it on demand
    page.evaluate(
        """() => { window.sawPreparing = [];
          new MutationObserver(() => {
            const box = document.getElementById('player-preparing');
            if (box.textContent) window.sawPreparing.push([box.textContent,
              getComputedStyle(document.querySelector('video')).filter,
              box.checkVisibility()]);
          }).observe(document.getElementById('player-preparing'), {childList: true, subtree: true});
        }"""
    )
    before = page.evaluate("kubevodPlayer.requestedLevels")
    assert max(before) > 0, before  # playing above the lowest rung before the seek
    asked = time.monotonic()
    page.mouse.click(
        box["x"] + box["width"] * target / video.duration, box["y"] + box["height"] / 2
    )
    page.wait_for_function(
        PLAYING.replace("currentTime > 0.1", f"currentTime > {where[target_chunk][0] + 0.1}"),
        timeout=45_000,
    )
    waited = time.monotonic() - asked
    assert where[target_chunk][0] <= current_time(page) < where[target_chunk][1] + 1
    assert waited < 40, waited
    seen = [s for s in page.evaluate("window.sawPreparing") if "Part 4 of 5" in s[0]]
    assert seen, "no 'preparing' state while the part was encoded"
    text, video_filter, visible = seen[0]
    assert text.startswith("Preparing this part…")
    assert visible and "brightness" in video_filter
    expect(preparing).to_be_empty()
    assert page.get_attribute("#player", "data-preparing") is None
    assert target_chunk in gate.asked
    # The first fragment after the seek was the lowest rung's: the one the server encodes
    # first, alone (ABR climbs back from there).
    after = page.evaluate("kubevodPlayer.requestedLevels")[len(before) :]
    assert after and after[0] == 0, after
    assert page.evaluate("kubevodPlayer.errors") == []

    # The band grows to the part encoded, as the server records it.
    page.wait_for_function(
        f"() => [...document.querySelectorAll('#seek-parts .seek-part')]"
        f".some((b) => +b.dataset.first <= {target_chunk} && {target_chunk} <= +b.dataset.last)",
        timeout=15_000,
    )
    shown = check_bands(page, video)
    assert 0 in shown and target_chunk in shown
    assert set(shown) <= set(on_demand_site.video(video.id).chunks_done)
    assert set(shown) <= {0, target_chunk, target_chunk + 1}  # nothing it was not asked for
    expect(seek).to_have_accessible_description(re.compile(r"^[23] of 5 parts encoded"))


def test_a_video_still_transcoding_cannot_be_seeked_past_what_is_made(
    page: Any,
    ui_server: ApiServer,
    ui_backends: Backends,
    transcode_in_background: Callable[..., Transcode],
) -> None:
    # 16 s read at its real speed: about 16 s of transcoding to check the seek bar in.
    run = transcode_in_background(seconds=16, title="Still growing")
    page.goto(f"{ui_server.url}/watch/{run.video_id}")
    page.wait_for_function(PLAYING, timeout=30_000)
    page.keyboard.press("k")
    page.wait_for_function("document.querySelector('video').paused")

    def made() -> float:
        end: float = page.evaluate(
            "(() => { const s = document.querySelector('video').seekable;"
            " return s.length ? s.end(s.length - 1) : 0; })()"
        )
        return end

    def settled() -> None:
        """The seek is done and the picture there is shown."""
        page.wait_for_function(
            "() => { const v = document.querySelector('video');"
            " return !v.seeking && v.readyState >= 2; }",
            timeout=10_000,
        )

    # The rest of the bar is marked out of reach, next to the part made so far.
    ready = page.eval_on_selector("#seek-ready", "e => parseFloat(e.style.width)")
    rest = page.eval_on_selector(
        "#seek-unavailable", "e => [parseFloat(e.style.left), parseFloat(e.style.width)]"
    )
    assert 0 < ready < 100
    assert rest[0] == pytest.approx(ready, abs=2) and sum(rest) == pytest.approx(100, abs=0.01)
    assert page.locator("#time-duration").inner_text() == "0:16"
    box = page.locator("#seek").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.97, y)
    expect(page.locator("#seek-time")).to_contain_text("not transcoded yet")

    # A click near the end of the bar: the player goes to the end of what exists, no further.
    page.mouse.click(box["x"] + box["width"] * 0.97, y)
    settled()
    t = current_time(page)
    assert 0 < t <= made() and t < 0.97 * 16 - 2, (t, made())
    assert float(page.eval_on_selector("#seek-range", "e => e.value")) <= made() + 0.5

    # Dragging the thumb past the end: it stops there.
    page.mouse.move(box["x"] + box["width"] * 0.1, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.99, y, steps=5)
    value = float(page.eval_on_selector("#seek-range", "e => e.value"))
    assert value <= made() + 0.5, (value, made())
    played = page.eval_on_selector("#seek-played", "e => parseFloat(e.style.width)")
    assert played <= 100 * (made() + 0.5) / 16, played
    page.mouse.up()
    settled()
    assert current_time(page) <= made()

    # The keys: 9 (90 %) and L (forward 10 s).
    page.evaluate("document.activeElement.blur()")
    for key in ("0", "9", "l"):
        page.keyboard.press(key)
        settled()
        assert current_time(page) <= made() + 0.01, key

    # Nothing broke: it plays on from there.
    page.keyboard.press("k")
    page.wait_for_function(PLAYING, timeout=15_000)
    assert page.evaluate("kubevodPlayer.errors") == []
    assert page.locator("#player-message").is_hidden()
    # All of it happened while the video was still being made.
    assert ui_backends.catalog.get(run.video_id).state == VideoState.TRANSCODING


@pytest.mark.parametrize(
    "plan",
    [
        MediaPlan(first=2, every=2, fps=30, duration=20.0, chunk_seconds=4),
        MediaPlan(
            first=1, every=4, fps=30000 / 1001, duration=125.37, chunk_seconds=30, offset=0.023
        ),
        MediaPlan(first=6, every=4, fps=25, duration=3.2, chunk_seconds=4),
        MediaPlan(first=2, every=6, fps=24, duration=61.0, chunk_seconds=10, offset=1.5),
        MediaPlan(first=1, every=2.002, fps=12.5, duration=9.01, chunk_seconds=3.3),
        MediaPlan(first=1, every=2, fps=30, duration=40.0, chunk_seconds=8, first_chunk_seconds=3),
    ],
)
def test_the_ui_splits_a_plan_into_the_servers_segments_and_chunks(
    browser: Any, ui_server: ApiServer, plan: MediaPlan
) -> None:
    context = browser.new_context()
    try:
        pg = context.new_page()
        pg.goto(f"{ui_server.url}/ui/manifest.webmanifest")  # any page of the origin
        got = pg.evaluate(
            """async (plan) => { const m = await import('/ui/parts.js');
              const video = {state: 'ready', policy: 'onDemand', plan, chunks_done: [0, 2, 1]};
              const parts = m.videoParts(video);
              return {segments: m.planSegments(plan), chunks: m.chunkSpans(plan),
                      encoded: parts && parts.encoded, text: parts && m.partsText(parts)}; }""",
            plan.model_dump(),
        )
    finally:
        context.close()
    flat = [x for segment in plan.segments() for x in segment]
    assert [x for segment in got["segments"] for x in segment] == pytest.approx(flat, abs=2e-6)
    chunks = plan.chunks()
    assert [(c["index"], c["first"], c["count"], c["last"]) for c in got["chunks"]] == [
        (c.index, c.first, c.count, c.last) for c in chunks
    ]
    flat = [x for span in spans(plan) for x in span]
    assert [x for c in got["chunks"] for x in (c["start"], c["end"])] == pytest.approx(
        flat, abs=2e-6
    )
    done = [i for i in (0, 1, 2) if i < len(chunks)]
    if len(done) == len(chunks):
        assert got["encoded"] is None  # complete: no parts to show
    else:
        assert [(e["first"], e["last"]) for e in got["encoded"]] == [(0, len(done) - 1)]
        assert got["text"] == f"{len(done)} of {len(chunks)} parts encoded"


def test_what_the_ui_counts_as_encoded_while_an_on_demand_video_registers(
    browser: Any, ui_server: ApiServer
) -> None:
    """A seek during the registration is told apart as well (the player then asks for the
    lowest rung first): only the chunks recorded so far are encoded, none at first."""
    plan = MediaPlan(first=2, every=2, fps=30, duration=40.0, chunk_seconds=8)
    context = browser.new_context()
    try:
        pg = context.new_page()
        pg.goto(f"{ui_server.url}/ui/manifest.webmanifest")
        got = pg.evaluate(
            """async (plan) => { const m = await import('/ui/parts.js');
              const at = (video) => [0, 1, 9, 30].map((t) => m.encodedAt(video, t));
              return {
                registering: at({state: 'transcoding', policy: 'onDemand', plan, chunks_done: []}),
                chunk0: at({state: 'ready', policy: 'onDemand', plan, chunks_done: [0]}),
                eager: at({state: 'transcoding', policy: 'eager', plan, chunks_done: []}),
              }; }""",
            plan.model_dump(),
        )
    finally:
        context.close()
    assert got["registering"] == [False, False, False, False]
    assert got["chunk0"] == [True, True, False, False]
    assert got["eager"] == [True, True, True, True]  # not on demand: the UI clamps instead
