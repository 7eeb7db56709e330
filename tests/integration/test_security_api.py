"""The API as a stranger meets it: the real ``kubevod-api`` process under uvicorn.

Issue 13, items 3, 7 and 9: production refuses to start without a token and
refuses every write without it; with signed URLs on the library, details,
manifests and media need a token or the video's own signature; ``/media``
never serves a log; QoE intake is rate-limited per client, capped per video
and clamped, as ``/metrics`` shows. The API runs on the embedded defaults
(SQLite + a file store) in a temporary folder that the test fills directly.
Clients are all on 127.0.0.1; other addresses appear only in X-Forwarded-For,
which uvicorn trusts from 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from kubevod import keys
from kubevod.backends import open_catalog, open_store
from kubevod.models import IMMUTABLE, Video
from tests.fixtures.util import ServerProcess, free_port
from tests.unit.manifest_cases import ladder_video, segments_for

pytestmark = pytest.mark.integration

TOKEN = "Xr4vN8qLm2Tz6KpW9sJd"
VIEWER = "Vq7cR3nYh5Lb1MxA0eGu"
SECRET = "Pk2mW9xQ4vTz7LrN"
LOG_TEXT = b"ffmpeg -i http://10.0.0.5/private.mkv: secret log line\n"


@dataclass
class Api:
    url: str
    data: Path
    process: ServerProcess
    video: Video

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kwargs)


def _env(data: Path, port: int, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBEVOD_", "OTEL_"))}
    env.update({"KUBEVOD_PORT": str(port), "KUBEVOD_DATA_DIR": str(data), **settings})
    return env


def _fill(data: Path) -> Video:
    """One ready video with segments, a poster, and its logs where old and new layouts kept them."""
    store = open_store((data / "media").resolve().as_uri())
    catalog = open_catalog(f"sqlite://{(data / 'catalog.db').resolve()}")
    try:
        video = catalog.create(ladder_video())
        for seg in segments_for(video, [4.0, 4.0, 2.0]):
            catalog.add_segment(video.id, seg)
            store.put_bytes(seg.key, b"\0" * 512, content_type="video/mp4", cache_control=IMMUTABLE)
        for key in (
            f"{video.media_prefix()}/logs/ffmpeg.log",
            keys.log_key(video.id, 1, "0badcafe"),
        ):
            store.put_bytes(key, LOG_TEXT, content_type="text/plain")  # the old layout, the new
        return video
    finally:
        catalog.close()


def start_api(root: Path, **settings: str) -> Api:
    data = root / f"api-{free_port()}"
    data.mkdir()
    video = _fill(data)
    port = free_port()
    process = ServerProcess(
        "kubevod-api",
        [sys.executable, "-m", "kubevod.api.main"],
        data / "api.log",
        env=_env(data, port, **settings),
    ).start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        process.check_alive()
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return Api(url, data, process, video)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"kubevod-api not up:\n{process.log_tail()}")


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """Production, a token, a viewer token and signed URLs: a private library."""
    api = start_api(
        tmp_path_factory.mktemp("private"),
        KUBEVOD_ENVIRONMENT="production",
        KUBEVOD_API_TOKEN=TOKEN,
        KUBEVOD_VIEWER_TOKEN=VIEWER,
        KUBEVOD_SIGNING_SECRET=SECRET,
    )
    try:
        yield api
    finally:
        api.process.stop()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- write access ---------------------------------------------------------------------


def test_production_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kubevod.api.main"],
        env=_env(tmp_path, free_port(), KUBEVOD_ENVIRONMENT="production"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert "refusing to start" in done.stderr and "KUBEVOD_API_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


def _write_routes(api: Api) -> list[tuple[str, str]]:
    """Every state-changing (method, path) the running API documents, QoE aside."""
    paths = api.get("/openapi.json").json()["paths"]
    out = []
    for path, operations in paths.items():
        for method in operations:
            if method.upper() in ("POST", "PUT", "PATCH", "DELETE") and path != "/api/qoe":
                out.append((method.upper(), path.replace("{video_id}", api.video.id)))
    return out


def test_every_write_needs_the_token_in_production(private: Api) -> None:
    routes = _write_routes(private)
    with httpx.Client(base_url=private.url, timeout=10) as http:
        answers = {
            (method, path, name): http.request(method, path, json={"title": "x"}, headers=h)
            for method, path in routes
            for name, h in {
                "none": {},
                "wrong": _bearer(TOKEN[:-1] + "Y"),
                "viewer": _bearer(VIEWER),
                "basic": {"Authorization": f"Basic {TOKEN}"},
            }.items()
        }
        patched = http.patch(
            f"/api/videos/{private.video.id}", json={"title": "Renamed"}, headers=_bearer(TOKEN)
        )

    one = f"/api/videos/{private.video.id}"
    assert {("PATCH", one), ("DELETE", one)} <= set(routes)
    assert {k: r.status_code for k, r in answers.items()} == dict.fromkeys(answers, 401)
    assert patched.status_code == 200 and patched.json()["title"] == "Renamed"


def test_in_the_cluster_a_delete_points_to_the_videoasset_and_removes_nothing(
    tmp_path: Path,
) -> None:
    """The chart runs the API with a read-only store user: the operator deletes media."""
    api = start_api(
        tmp_path, KUBEVOD_ENVIRONMENT="production", KUBEVOD_API_TOKEN=TOKEN,
        KUBEVOD_MANAGED_BY_OPERATOR="true",
    )  # fmt: skip
    try:
        one = f"/api/videos/{api.video.id}"
        gone = httpx.delete(api.url + one, headers=_bearer(TOKEN), timeout=10)
        assert gone.status_code == 409
        assert "kubectl delete videoasset" in gone.json()["detail"]
        assert api.get(one, headers=_bearer(TOKEN)).status_code == 200
        assert (api.data / "media" / "videos" / api.video.id).is_dir()
    finally:
        api.process.stop()


# --- private playback -----------------------------------------------------------------


def _signed(url: str) -> dict[str, str]:
    query = parse_qs(urlsplit(url).query)
    return {"md5": query["md5"][0], "expires": query["expires"][0]}


def test_a_private_library_needs_a_token_to_list_or_show(private: Api) -> None:
    vid = private.video.id
    anonymous = private.get("/api/videos")
    details = private.get(f"/api/videos/{vid}")
    stats = private.get(f"/api/videos/{vid}/qoe")
    as_viewer = private.get("/api/videos", headers=_bearer(VIEWER))
    as_owner = private.get(f"/api/videos/{vid}", headers=_bearer(TOKEN))

    assert (anonymous.status_code, details.status_code, stats.status_code) == (401, 401, 401)
    assert "md5=" not in anonymous.text + details.text
    assert "private" in anonymous.json()["detail"]
    assert as_viewer.status_code == 200 and as_viewer.json()["total"] == 1
    assert as_owner.status_code == 200
    assert "md5=" in as_owner.json()["playback"]["hls"]


def test_manifests_and_media_need_a_token_or_the_videos_signature(private: Api) -> None:
    vid = private.video.id
    playback = private.get(f"/api/videos/{vid}", headers=_bearer(VIEWER)).json()["playback"]
    signed = _signed(playback["hls"])
    master = f"/v/{vid}/master.m3u8"
    segment = "/media/" + segments_for(private.video, [4.0])[0].key.removeprefix("videos/")
    tampered = {
        **signed,
        "md5": signed["md5"][:-2] + ("AA" if signed["md5"][-2:] != "AA" else "BB"),
    }
    expired = {**signed, "expires": "1000"}

    assert private.get(master).status_code == 401
    assert private.get(master, params=tampered).status_code == 401
    assert private.get(master, params=expired).status_code == 401
    assert private.get(f"/v/{vid}/manifest.mpd").status_code == 401
    assert private.get(master, headers=_bearer(VIEWER)).status_code == 200
    listed = private.get(master, params=signed)
    assert listed.status_code == 200 and f"md5={signed['md5']}" in listed.text
    media_playlist = re.search(r"^([^#\s]\S*\.m3u8\S*)$", listed.text, re.M)
    assert media_playlist is not None
    assert httpx.get(httpx.URL(private.url + master).join(media_playlist[1])).status_code == 200
    assert private.get(segment).status_code == 401
    assert private.get(segment, params=signed).status_code == 200


def test_media_never_serves_logs_even_with_a_signature(private: Api) -> None:
    vid = private.video.id
    shown = private.get(f"/api/videos/{vid}", headers=_bearer(TOKEN)).json()
    signed = _signed(shown["playback"]["hls"])
    old_layout = private.video.media_prefix().removeprefix("videos/") + "/logs/ffmpeg.log"
    new_layout = keys.log_key(vid, 1, "0badcafe")
    attempts = [
        f"/media/{old_layout}",
        f"/media/{new_layout}",  # /media/logs/<id>/...: video id "logs" names videos/logs/
        f"/media/{vid}/%2e%2e/%2e%2e/{new_layout}",
        f"/media/{vid}/..%2f..%2f{new_layout}",
    ]
    with httpx.Client(base_url=private.url, timeout=10) as http:
        answers = {path: http.get(path, params=signed, headers=_bearer(TOKEN)) for path in attempts}

    for path, response in answers.items():
        assert response.status_code in (404, 422), (path, response.status_code)
        assert b"secret log line" not in response.content, path


def test_a_library_declared_public_lists_without_a_token(tmp_path: Path) -> None:
    api = start_api(
        tmp_path,
        KUBEVOD_ENVIRONMENT="production",
        KUBEVOD_API_TOKEN=TOKEN,
        KUBEVOD_SIGNING_SECRET=SECRET,
        KUBEVOD_PUBLIC_LIBRARY="true",
    )
    try:
        listing = api.get("/api/videos")
        delete = httpx.delete(f"{api.url}/api/videos/{api.video.id}", timeout=10)
    finally:
        api.process.stop()

    assert listing.status_code == 200 and "md5=" in listing.text
    assert delete.status_code == 401  # public to watch, still private to change


# --- QoE intake -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def qoe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api = start_api(
        tmp_path_factory.mktemp("qoe"),
        KUBEVOD_QOE_RATE_PER_S="0.01",
        KUBEVOD_QOE_BURST="5",
        KUBEVOD_QOE_MAX_SESSIONS_PER_VIDEO="2",
    )
    try:
        yield api
    finally:
        api.process.stop()


def _metric(api: Api, name: str) -> float:
    text = api.get("/metrics").text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match[1]) if match else 0.0


def _beacon(api: Api, client: str, **fields: Any) -> httpx.Response:
    body = {"video_id": api.video.id, "session": "s1", **fields}
    return httpx.post(
        f"{api.url}/api/qoe", json=body, headers={"X-Forwarded-For": client}, timeout=10
    )


def test_qoe_beacons_past_a_clients_burst_get_429_and_others_go_on(qoe: Api) -> None:
    flood = [_beacon(qoe, "192.0.2.50", session="flood").status_code for _ in range(8)]
    limited = _beacon(qoe, "192.0.2.50", session="flood")
    neighbour = _beacon(qoe, "192.0.2.51", session="other")

    assert flood == [204] * 5 + [429] * 3
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert neighbour.status_code == 204
    assert _metric(qoe, 'kubevod_qoe_beacons_dropped_total{reason="rate_limited"}') == 4


def test_qoe_sessions_past_the_cap_are_accepted_but_not_counted(qoe: Api) -> None:
    # the flood test's sessions ("flood", "other") already fill the cap of 2
    before = _metric(qoe, "kubevod_qoe_sessions_total")
    third = _beacon(qoe, "192.0.2.60", session="third", watch_ms=5000)
    again = _beacon(qoe, "192.0.2.61", session="other", watch_ms=9000)
    stats = qoe.get(f"/api/videos/{qoe.video.id}/qoe").json()

    assert (third.status_code, again.status_code) == (204, 204)
    assert stats["sessions"] == 2
    assert _metric(qoe, "kubevod_qoe_sessions_total") == before == 2
    assert _metric(qoe, 'kubevod_qoe_beacons_dropped_total{reason="session_cap"}') == 1
    assert _metric(qoe, "kubevod_qoe_watch_seconds_total") == pytest.approx(9)


def test_qoe_values_are_clamped_before_they_reach_the_metrics(qoe: Api) -> None:
    watch_before = _metric(qoe, "kubevod_qoe_watch_seconds_total")
    answer = _beacon(
        qoe,
        "192.0.2.70",
        session="flood",  # a session already counted: the cap lets it go on
        startup_ms=500_000,
        watch_ms=80_000_000,  # 22 h: more than the 6 h a session may count
        rebuffer_count=50_000,
        rendition="made-up",
    )

    assert answer.status_code == 204, answer.text
    assert _metric(qoe, "kubevod_qoe_startup_seconds_sum") == 60
    assert _metric(qoe, "kubevod_qoe_watch_seconds_total") - watch_before == pytest.approx(6 * 3600)
    assert _metric(qoe, "kubevod_qoe_rebuffer_count_sum") == 1000
    clamped = {
        field: _metric(qoe, f'kubevod_qoe_values_clamped_total{{field="{field}"}}')
        for field in ("startup_ms", "watch_ms", "rebuffer_count", "rendition")
    }
    assert clamped == dict.fromkeys(clamped, 1.0)


# --- what an outage tells a stranger --------------------------------------------------


async def test_an_outage_tells_a_stranger_nothing_about_the_backends(tmp_path: Path) -> None:
    from tests.integration.api_env import api_env

    async with api_env(tmp_path, api_token=TOKEN) as env:
        env.add_video()
        env.catalog.close()  # every later catalog call raises Unavailable, with the reason
        stranger = await env.client.get("/api/videos")
        owner = await env.client.get("/api/videos", headers=_bearer(TOKEN))

    assert stranger.status_code == owner.status_code == 503
    assert stranger.json()["detail"] == "a backend is unavailable right now; retry later"
    assert owner.json()["detail"] != stranger.json()["detail"]
    assert str(tmp_path) not in stranger.text
