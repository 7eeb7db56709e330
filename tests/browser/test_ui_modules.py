"""Table tests of the UI's pure functions (playlist and thumbnail parsing, formatting), run
as the ES modules the browser loads, in real Chromium."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import ApiServer

pytestmark = pytest.mark.browser

MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",DEFAULT=YES,URI="audio.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",URI="subs/0.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=602113,RESOLUTION=320x180,CODECS="avc1.42c00d,mp4a.40.2",AUDIO="audio",SUBTITLES="subs"
180p.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2056233,RESOLUTION=640x360,CODECS="avc1.42c01e,mp4a.40.2",AUDIO="audio",SUBTITLES="subs"
360p.m3u8
"""

MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="/media/abc/g1/180p/init.mp4"
#EXTINF:1.0,
/media/abc/g1/180p/0.m4s
#EXTINF:1.0,
/media/abc/g1/180p/1.m4s
#EXT-X-ENDLIST
"""

THUMBS = """WEBVTT

00:00.000 --> 00:02.000
0.jpg#xywh=0,0,160,90

00:02.000 --> 00:04.000
0.jpg#xywh=160,0,160,90

01:00:00.000 --> 01:00:02.000
sheets/7.jpg#xywh=320,90,160,90

00:09.000 --> 00:10.000
no-fragment.jpg
"""


@pytest.fixture
def modules(page: Any, ui_server: ApiServer) -> Any:
    page.goto(f"{ui_server.url}/ui/manifest.webmanifest")  # any page of the origin
    return page


def call(page: Any, module: str, expression: str, arg: Any = None) -> Any:
    return page.evaluate(
        f"async (arg) => {{ const m = await import('/ui/{module}'); return {expression}; }}", arg
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (59.9, "0:59"), (61, "1:01"), (3600, "1:00:00"), (3725, "1:02:05"), (-3, "0:00")],
)
def test_format_time(modules: Any, seconds: float, text: str) -> None:
    assert call(modules, "common.js", "m.formatTime(arg)", seconds) == text


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("videos/abc/g1/poster.jpg", "/media/abc/g1/poster.jpg"),
        ("videos/abc/g2/trickplay/thumbs.vtt", "/media/abc/g2/trickplay/thumbs.vtt"),
        ("videos/abc/g1/subs/a b.vtt", "/media/abc/g1/subs/a%20b.vtt"),
        ("/already/a/path.jpg", "/already/a/path.jpg"),
        ("https://cdn.example/x.jpg", "https://cdn.example/x.jpg"),
    ],
)
def test_media_url_mirrors_the_media_origin_layout(modules: Any, key: str, url: str) -> None:
    assert call(modules, "common.js", "m.mediaUrl({id: 'abc'}, arg)", key) == url


def test_thumbnail_vtt_cues_resolve_sprites_and_tiles(modules: Any) -> None:
    cues = call(
        modules,
        "trickplay.js",
        "m.parseThumbnailVtt(arg, 'http://h/media/abc/g1/trickplay/thumbs.vtt')",
        THUMBS,
    )
    assert [(c["start"], c["end"]) for c in cues] == [(0, 2), (2, 4), (9, 10), (3600, 3602)]
    assert cues[1]["url"] == "http://h/media/abc/g1/trickplay/0.jpg"
    assert (cues[1]["x"], cues[1]["y"], cues[1]["w"], cues[1]["h"]) == (160, 0, 160, 90)
    assert cues[3]["url"] == "http://h/media/abc/g1/trickplay/sheets/7.jpg"
    assert "x" not in cues[2]


@pytest.mark.parametrize(
    ("t", "start"), [(0, 0), (1.99, 0), (2, 2), (5, 2), (9.5, 9), (4000, 3600)]
)
def test_trickplay_finds_the_cue_for_a_time(modules: Any, t: float, start: float) -> None:
    found = call(
        modules,
        "trickplay.js",
        "(() => { const tp = new m.Trickplay('/x.vtt');"
        " tp.cues = m.parseThumbnailVtt(arg.vtt, 'http://h/x.vtt');"
        " return tp.at(arg.t).start; })()",
        {"vtt": THUMBS, "t": t},
    )
    assert found == start


def test_master_playlist_parsing_and_one_rung_copy(modules: Any) -> None:
    parsed = call(modules, "offline.js", "m.parseMaster(arg, 'http://h/v/abc/master.m3u8')", MASTER)
    variants = parsed["variants"]
    assert [(v["height"], v["bandwidth"]) for v in variants] == [(180, 602113), (360, 2056233)]
    assert variants[0]["attrs"]["CODECS"] == "avc1.42c00d,mp4a.40.2"  # quoted comma kept
    assert variants[1]["url"] == "http://h/v/abc/360p.m3u8"
    assert [m["url"] for m in parsed["media"]] == [
        "http://h/v/abc/audio.m3u8",
        "http://h/v/abc/subs/0.m3u8",
    ]
    single = call(
        modules,
        "offline.js",
        "(() => { const p = m.parseMaster(arg, 'http://h/v/abc/master.m3u8');"
        " return m.singleVariantMaster(p, p.variants[0]); })()",
        MASTER,
    )
    lines = single.strip().splitlines()
    assert lines[:3] == ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    assert sum(line.startswith("#EXT-X-STREAM-INF") for line in lines) == 1
    assert "180p.m3u8" in lines and "360p.m3u8" not in lines
    assert any('TYPE=AUDIO,GROUP-ID="audio"' in line for line in lines)
    assert not any("SUBTITLES" in line for line in lines)  # captions come from <track>s


def test_media_playlist_urls_of_a_finished_playlist(modules: Any) -> None:
    urls = call(
        modules, "offline.js", "m.mediaPlaylistUrls(arg, 'http://h/v/abc/180p.m3u8')", MEDIA
    )
    assert urls == [
        "http://h/media/abc/g1/180p/init.mp4",
        "http://h/media/abc/g1/180p/0.m4s",
        "http://h/media/abc/g1/180p/1.m4s",
    ]


def test_a_growing_playlist_cannot_be_saved(modules: Any) -> None:
    message = call(
        modules,
        "offline.js",
        "(() => { try { m.mediaPlaylistUrls(arg, 'http://h/x.m3u8'); return null; }"
        " catch (e) { return e.message; } })()",
        MEDIA.replace("#EXT-X-ENDLIST\n", ""),
    )
    assert message == "This video is still being transcoded."
