"""Signed playback end to end: the real API issues the links, the chart's nginx checks them.

A 2 s 320x180 clip with sound and English subtitles is transcoded once by the
real worker (ultrafast x264) into a FileStore + SQLite catalog. The real API
(``create_app`` under uvicorn in a thread) serves it with a signing secret, and
real nginx runs the chart's ``nginx.conf`` with signed URLs on in front of it:
``/v/`` goes to the API's manifest routes and ``/media/`` to the API's own media
route (standing in for MinIO, which the nginx cache tests cover). A player only
ever gets its links from ``/api/videos/{id}`` and follows what the manifests say.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest
from kubevod.api.settings import ApiSettings

from kubevod.backends import open_catalog, open_store
from kubevod.catalog.base import Catalog
from kubevod.jobs import TranscodeJob
from kubevod.models import Video, VideoState
from kubevod.signing import token
from kubevod.store.base import ObjectStore
from tests.chart.nginx_conf import local_values, render
from tests.fixtures.jobs import scheduled
from tests.fixtures.media import make_video
from tests.fixtures.servers import NginxServer
from tests.fixtures.util import free_port, serve_app
from tests.integration.worker_media import fast_settings

pytestmark = pytest.mark.integration

SECRET = "Sg7kQ2vX9pLm4TzW"
SUBTITLES_SRT = "1\n00:00:00,000 --> 00:00:02,000\nSigned captions\n"
#: URIs in playlist tags (EXT-X-MAP, EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF).
TAG_URI = re.compile(r'URI="([^"]+)"')


@dataclass
class Backends:
    root: Path
    store: ObjectStore
    catalog: Catalog
    video: Video


@dataclass
class Api:
    url: str
    port: int
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    """A store and catalog holding one ready video the real worker made."""
    from kubevod.worker.pipeline import run

    root = tmp_path_factory.mktemp("signed")
    srt = root / "subs.srt"
    srt.write_text(SUBTITLES_SRT)
    source = make_video(
        root / "clip.mp4", seconds=2, width=320, height=180,
        extra_input_args=("-i", str(srt)),
        extra_output_args=(
            *("-map", "0:v", "-map", "1:a", "-map", "2:s"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
            *("-c:a", "aac", "-ac", "2", "-c:s", "mov_text", "-metadata:s:s:0", "language=eng"),
        ),
    )  # fmt: skip
    store = open_store((root / "media").as_uri())
    catalog = open_catalog(f"sqlite://{root / 'catalog.db'}")
    video = catalog.create(Video(title="Signed clip", source=str(source)))
    job = TranscodeJob(video_id=video.id, source=str(source), segment_seconds=1.0)
    ready = run(scheduled(catalog, job), store=store, catalog=catalog, scratch=root / "scratch",
                settings=fast_settings())  # fmt: skip
    assert ready.state == VideoState.READY, ready.message
    assert ready.poster_key and ready.trickplay and ready.subtitles
    yield Backends(root, store, catalog, catalog.get(video.id))
    catalog.close()


def _start_api(backends: Backends, secret: str | None) -> Api:
    from kubevod.api.app import create_app

    settings = ApiSettings(data_dir=backends.root, signing_secret=secret)  # type: ignore[arg-type]
    app = create_app(settings, store=backends.store, catalog=backends.catalog)
    served = serve_app(app)
    return Api(served.url, served.port, served.server, served.thread)


@pytest.fixture(scope="module")
def signed_api(backends: Backends) -> Iterator[Api]:
    api = _start_api(backends, SECRET)
    yield api
    api.stop()


def _cache(
    nginx_factory: Callable[[str], NginxServer], api: Api, tmp_path: Path, secret: str
) -> str:
    """The chart's nginx.conf in front of ``api`` (manifests, media and UI); its base URL."""
    values = local_values(
        port=free_port(), api=f"127.0.0.1:{api.port}", media=f"127.0.0.1:{api.port}",
        media_prefix="/media/", access_log=str(tmp_path / "access.log"), signing_secret=secret,
    )  # fmt: skip
    return nginx_factory(render(values)).url


@pytest.fixture
def cache(nginx_factory: Callable[[str], NginxServer], signed_api: Api, tmp_path: Path) -> str:
    return _cache(nginx_factory, signed_api, tmp_path, SECRET)


def _playback(base: str, video_id: str) -> dict[str, Any]:
    shown = httpx.get(f"{base}/api/videos/{video_id}")
    assert shown.status_code == 200, shown.text
    playback: dict[str, Any] = shown.json()["playback"]
    return playback


def _crawl(client: httpx.Client, url: str) -> dict[str, httpx.Response]:
    """Fetch an HLS master and everything it leads to, as a player would; url -> response."""
    seen: dict[str, httpx.Response] = {}
    todo = [url]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        resp = seen[current] = client.get(current)
        if resp.status_code != 200 or not urlsplit(current).path.endswith(".m3u8"):
            continue
        for line in resp.text.splitlines():
            refs = TAG_URI.findall(line) if line.startswith("#") else [line.strip()]
            todo.extend(urljoin(current, ref) for ref in refs if ref)
    return seen


def _with_query(url: str, **params: str | int) -> str:
    parts = urlsplit(url)
    return parts._replace(query=urlencode(params)).geturl()


def test_signed_links_from_the_api_play_through_nginx(cache: str, backends: Backends) -> None:
    vid = backends.video.id
    before = time.time()
    playback = _playback(cache, vid)
    master = urljoin(cache, playback["hls"])
    params = parse_qs(urlsplit(master).query)
    expires = int(params["expires"][0])
    assert params["md5"] == [token(vid, expires, SECRET)]
    assert before + 6 * 3600 <= expires <= time.time() + 6 * 3600 + 300  # the default TTL
    assert httpx.get(urljoin(cache, playback["hls"].split("?")[0])).status_code == 403

    with httpx.Client(timeout=10) as client:
        fetched = _crawl(client, master)
    assert {u: r.status_code for u, r in fetched.items() if r.status_code != 200} == {}
    paths = [urlsplit(u).path for u in fetched]
    assert sum(p.endswith(".m3u8") for p in paths) >= 3  # master, video and audio rungs
    assert sum(p.endswith(".m4s") for p in paths) >= 4  # 2 s of 1 s segments, video + audio
    assert sum(p.endswith("init.mp4") for p in paths) >= 2
    assert any(p.endswith(".vtt") for p in paths)  # the subtitles rendition
    # Every link a manifest hands out carries the same token (one per video).
    assert all(parse_qs(urlsplit(u).query) == params for u in fetched)
    assert fetched[master].text.startswith("#EXTM3U")

    # The DASH manifest, the poster, the thumbnails index and sheets, the captions.
    mpd = httpx.get(urljoin(cache, playback["dash"]))
    assert mpd.status_code == 200 and "md5=" in mpd.text
    poster = httpx.get(urljoin(cache, playback["poster"]))
    assert (poster.status_code, poster.headers["content-type"]) == (200, "image/jpeg")
    vtt_url = urljoin(cache, playback["trickplay"])
    vtt = httpx.get(vtt_url)
    assert vtt.status_code == 200
    sheet = urljoin(vtt_url, re.findall(r"^(\S+\.jpg)#xywh=", vtt.text, re.M)[0])
    assert httpx.get(sheet).status_code == 403  # a relative sheet needs the VTT's query...
    assert httpx.get(_with_query(sheet, **{k: v[0] for k, v in params.items()})).status_code == 200
    [captions] = playback["subtitles"]
    subs = httpx.get(urljoin(cache, captions["url"]))
    assert subs.status_code == 200 and "Signed captions" in subs.text


def test_tampered_and_expired_links_are_refused(cache: str, backends: Backends) -> None:
    vid = backends.video.id
    playback = _playback(cache, vid)
    with httpx.Client(timeout=10) as client:
        fetched = _crawl(client, urljoin(cache, playback["hls"]))
    segment = next(u for u in fetched if u.split("?")[0].endswith(".m4s"))
    urls = [urljoin(cache, playback["hls"]), segment, urljoin(cache, playback["poster"])]
    past = int(time.time()) - 60
    for url in urls:
        md5 = parse_qs(urlsplit(url).query)["md5"][0]
        expires = int(parse_qs(urlsplit(url).query)["expires"][0])
        tampered = ("A" if md5[0] != "A" else "B") + md5[1:]
        assert httpx.get(_with_query(url, md5=tampered, expires=expires)).status_code == 403, url
        # A later expiry with the old token: refused, the token covers the expiry.
        assert httpx.get(_with_query(url, md5=md5, expires=expires + 1)).status_code == 403, url
        assert httpx.get(_with_query(url, expires=expires)).status_code == 403, url
        wrong_secret = token(vid, expires, SECRET + "x")
        assert httpx.get(_with_query(url, md5=wrong_secret, expires=expires)).status_code == 403
        # Properly signed, but expired: 410 Gone.
        expired = _with_query(url, md5=token(vid, past, SECRET), expires=past)
        assert httpx.get(expired).status_code == 410, url
        assert httpx.get(url).status_code == 200, url


def test_without_a_secret_links_carry_no_query_and_play_through_nginx(
    backends: Backends, nginx_factory: Callable[[str], NginxServer], tmp_path: Path
) -> None:
    api = _start_api(backends, None)
    try:
        cache = _cache(nginx_factory, api, tmp_path, "")
        playback = _playback(cache, backends.video.id)
        links = [playback[k] for k in ("hls", "dash", "poster", "trickplay")]
        links += [s["url"] for s in playback["subtitles"]]
        assert all(link and "?" not in link for link in links), links
        with httpx.Client(timeout=10) as client:
            fetched = _crawl(client, urljoin(cache, playback["hls"]))
        assert len(fetched) >= 8
        assert all(r.status_code == 200 and "?" not in u for u, r in fetched.items())
    finally:
        api.stop()


@pytest.mark.browser
def test_watch_page_plays_a_signed_video_through_nginx(
    page: Any, cache: str, backends: Backends
) -> None:
    from tests.browser.ui_helpers import PLAYING

    statuses: list[tuple[int, str]] = []
    page.on("response", lambda r: statuses.append((r.status, r.url)))
    page.goto(f"{cache}/watch/{backends.video.id}")
    page.wait_for_function(PLAYING, timeout=20_000)
    media = [(s, u) for s, u in statuses if "/media/" in u or "/v/" in u]
    assert any(u.split("?")[0].endswith(".m4s") for _, u in media)
    signed = [(s, u) for s, u in media if "md5=" in u]
    assert all(s in (200, 206) for s, _ in signed), signed
    # Only the first visit's <head> preload hint may ask for the unsigned master (403);
    # the page then knows links are signed and does not ask again.
    assert [u.split("?")[0] for _, u in media if "md5=" not in u] in (
        [],
        [f"{cache}/v/{backends.video.id}/master.m3u8"],
    )
    statuses.clear()
    page.reload()
    page.wait_for_function(PLAYING, timeout=20_000)
    # Seek-bar thumbnails: their sheets are relative to the signed VTT and keep its token.
    box = page.locator("#seek").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "() => { const t = document.getElementById('seek-thumb');"
        " return !t.hidden && kubevodPlayer.trickplay?.loaded.has(t.dataset.src); }",
        timeout=10_000,
    )
    assert any(u.split("?")[0].endswith(".jpg") and "/trickplay/" in u for _, u in statuses)
    assert statuses and [(s, u) for s, u in statuses if s >= 400] == []
    assert all("md5=" in u for _, u in statuses if "/media/" in u or "/v/" in u)
