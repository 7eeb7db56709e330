"""The API end to end on FileStore + SqliteCatalog: library, manifests, QoE, health, UI."""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import m3u8
import pytest
from mpegdash.parser import MPEGDASHParser

from kubevod.models import Segment, Video, VideoState
from tests.integration.api_env import ApiEnv, api_env
from tests.unit.manifest_cases import ladder_video, rung

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path) as env:
        yield env


def titled(title: str, *tags: str, video_id: str) -> Video:
    return ladder_video().model_copy(update={"id": video_id, "title": title, "tags": list(tags)})


# --- library ---------------------------------------------------------------------------


async def test_library_pages_through_every_video(api: ApiEnv) -> None:
    for i in range(5):
        api.catalog.create(titled(f"Clip {i}", video_id=f"clip-{i}"))

    first = (await api.client.get("/api/videos", params={"limit": 2, "sort": "title"})).json()
    third = (
        await api.client.get("/api/videos", params={"limit": 2, "offset": 4, "sort": "title"})
    ).json()

    assert first["total"] == 5 and [v["title"] for v in first["items"]] == ["Clip 0", "Clip 1"]
    assert [v["title"] for v in third["items"]] == ["Clip 4"]
    assert (third["offset"], third["limit"]) == (4, 2)


async def test_library_search_by_title_tag_and_state(api: ApiEnv) -> None:
    api.catalog.create(titled("Holiday in Rome", "travel", video_id="rome"))
    api.catalog.create(titled("Birthday party", "family", video_id="party"))
    api.catalog.update("party", state=VideoState.TRANSCODING)

    by_title = (await api.client.get("/api/videos", params={"q": "rome"})).json()
    by_tag = (await api.client.get("/api/videos", params={"tag": "family"})).json()
    by_state = (await api.client.get("/api/videos", params={"state": "transcoding"})).json()

    assert [v["id"] for v in by_title["items"]] == ["rome"]
    assert [v["id"] for v in by_tag["items"]] == ["party"]
    assert [v["id"] for v in by_state["items"]] == ["party"]


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 201}, {"offset": -1}, {"sort": "size"}, {"state": "done"}]
)
async def test_library_rejects_bad_paging_with_422(api: ApiEnv, params: dict[str, object]) -> None:
    resp = await api.client.get("/api/videos", params=params)

    assert resp.status_code == 422


async def test_video_shows_state_progress_renditions_and_playback_urls(api: ApiEnv) -> None:
    video, _ = api.add_video(
        ladder_video().model_copy(update={"poster_key": "videos/demo-1/g1/poster.jpg"})
    )

    body = (await api.client.get(f"/api/videos/{video.id}")).json()

    assert body["state"] == "ready" and body["progress"] == 0.0
    assert [r["name"] for r in body["renditions"]] == ["1080p", "720p", "360p", "audio"]
    assert body["playback"] == {
        "hls": "/v/demo-1/master.m3u8",
        "dash": "/v/demo-1/manifest.mpd",
        "watch": "/watch/demo-1",
        "poster": "/media/demo-1/g1/poster.jpg",
        "trickplay": None,
        "subtitles": [
            {
                "name": "English",
                "language": "en",
                "default": False,
                "url": "/media/demo-1/g1/subs/en.vtt",
            }
        ],
    }


async def test_source_url_credentials_and_queries_are_never_shown(api: ApiEnv) -> None:
    source = "https://me:hunter2@nas.lan/a.mkv?X-Amz-Signature=f00dfeed#t=3"
    api.add_video(ladder_video().model_copy(update={"source": source}))

    body = (await api.client.get("/api/videos/demo-1")).json()
    listing = (await api.client.get("/api/videos")).text

    assert body["source"] == "https://nas.lan/a.mkv"
    assert "hunter2" not in listing and "f00dfeed" not in listing and "me:" not in listing


async def test_unknown_video_is_404_and_malformed_id_is_422(api: ApiEnv) -> None:
    missing = await api.client.get("/api/videos/nosuchvideo")
    malformed = await api.client.get("/api/videos/Not_An_Id")

    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found" and "nosuchvideo" in missing.json()["detail"]
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["path", "video_id"]
    assert malformed.json()["message"] == (
        "video_id: not a video id (lowercase letters, digits and dashes, at most 63)"
    )


async def test_patch_changes_title_and_tags_only(api: ApiEnv) -> None:
    video, _ = api.add_video()

    resp = await api.client.patch(
        f"/api/videos/{video.id}", json={"title": "Renamed", "tags": ["a", "b"]}
    )

    assert resp.status_code == 200
    stored = api.catalog.get(video.id)
    assert (stored.title, stored.tags, stored.state) == ("Renamed", ["a", "b"], VideoState.READY)
    assert resp.json()["title"] == "Renamed"


async def test_delete_removes_objects_and_entry(api: ApiEnv) -> None:
    video, _ = api.add_video()
    api.store.put_bytes("videos/demo-1/poster.jpg", b"jpeg", content_type="image/jpeg")
    api.store.put_bytes("videos/demo-10/keep.jpg", b"jpeg", content_type="image/jpeg")

    resp = await api.client.delete(f"/api/videos/{video.id}")

    assert resp.status_code == 204
    assert list(api.store.list("videos/demo-1/")) == []
    assert [o.key for o in api.store.list("videos/")] == ["videos/demo-10/keep.jpg"]
    assert (await api.client.get(f"/api/videos/{video.id}")).status_code == 404
    assert (await api.client.delete(f"/api/videos/{video.id}")).status_code == 404


async def test_writes_need_the_bearer_token_when_one_is_set(tmp_path: Path) -> None:
    async with api_env(tmp_path, api_token="s3cr3t-token") as env:
        video, _ = env.add_video()
        url = f"/api/videos/{video.id}"

        anonymous = await env.client.patch(url, json={"title": "x"})
        wrong = await env.client.delete(url, headers={"Authorization": "Bearer nope"})
        reading = await env.client.get(url)
        right = await env.client.patch(
            url, json={"title": "x"}, headers={"Authorization": "Bearer s3cr3t-token"}
        )

    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert reading.status_code == 200
    assert right.status_code == 200 and right.json()["title"] == "x"


async def test_adding_videos_exists_only_with_an_ingestor(api: ApiEnv) -> None:
    resp = await api.client.post("/api/videos", json={"source": "/tmp/x.mp4"})
    schema = (await api.client.get("/openapi.json")).json()

    assert resp.status_code == 405
    assert "post" not in schema["paths"]["/api/videos"]


async def test_add_and_delete_with_the_local_ingestor(tmp_path: Path) -> None:
    from kubevod.backends import open_catalog, open_store
    from kubevod.local.ingest import LocalIngestor
    from kubevod.local.pool import LocalPool
    from tests.fixtures.media import make_video

    source = make_video(tmp_path / "clip.mp4", seconds=1, width=160, height=90, fps=10)
    store = open_store((tmp_path / "media").as_uri())
    catalog = open_catalog(f"sqlite://{tmp_path / 'catalog.db'}")
    # The pool is never started: the job stays queued, which is all this test needs.
    pool = LocalPool(store=store, catalog=catalog, scratch=tmp_path / "scratch")
    ingestor = LocalIngestor(catalog=catalog, store=store, runner=pool)
    try:
        async with api_env(tmp_path, catalog=catalog, store=store, ingestor=ingestor) as env:
            added = await env.client.post(
                "/api/videos", json={"source": str(source), "title": "Clip", "tags": ["t"]}
            )
            broken = await env.client.post("/api/videos", json={"source": str(tmp_path / "no.mp4")})
            video_id = added.json()["id"]
            queued = video_id in pool.busy()
            deleted = await env.client.delete(f"/api/videos/{video_id}")
    finally:
        catalog.close()

    assert added.status_code == 202
    assert added.json()["state"] == "queued" and added.json()["title"] == "Clip"
    assert broken.status_code == 422 and "no.mp4" in broken.json()["detail"]
    assert deleted.status_code == 204
    assert queued and video_id not in pool.busy()  # the queued transcode was cancelled


async def test_add_takes_a_policy_and_refuses_an_unknown_one_with_422(tmp_path: Path) -> None:
    from kubevod.backends import open_catalog, open_store
    from kubevod.local.ingest import LocalIngestor
    from tests.fixtures.jobs import RecordingRunner
    from tests.fixtures.media import make_video

    source = make_video(tmp_path / "clip.mp4", seconds=1, width=160, height=90, fps=10)
    store = open_store((tmp_path / "media").as_uri())
    catalog = open_catalog(f"sqlite://{tmp_path / 'catalog.db'}")
    runner = RecordingRunner()
    ingestor = LocalIngestor(catalog=catalog, store=store, runner=runner)
    try:
        async with api_env(tmp_path, catalog=catalog, store=store, ingestor=ingestor) as env:
            bad = await env.client.post(
                "/api/videos", json={"source": str(source), "policy": "lazy"}
            )
            added = await env.client.post(
                "/api/videos", json={"source": str(source), "policy": "onDemand"}
            )
            schema = (await env.client.get("/openapi.json")).json()
    finally:
        catalog.close()

    assert bad.status_code == 422
    assert bad.json()["message"] == "policy: Input should be 'eager' or 'onDemand'"
    assert added.status_code == 202 and added.json()["policy"] == "onDemand"
    assert [(job.video_id, job.policy) for job in runner.jobs] == [(added.json()["id"], "onDemand")]
    body = schema["paths"]["/api/videos"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/IngestRequest"}
    policy = schema["components"]["schemas"]["IngestRequest"]["properties"]["policy"]
    assert {"$ref": "#/components/schemas/TranscodePolicy"} in policy["anyOf"]
    assert schema["components"]["schemas"]["TranscodePolicy"]["enum"] == ["eager", "onDemand"]


# --- manifests -------------------------------------------------------------------------


async def test_master_playlist_lists_the_ladder(api: ApiEnv) -> None:
    video, _ = api.add_video()

    resp = await api.client.get(f"/v/{video.id}/master.m3u8")

    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/vnd.apple.mpegurl"
    parsed = m3u8.loads(resp.text)
    assert [p.uri for p in parsed.playlists] == ["360p.m3u8", "720p.m3u8", "1080p.m3u8"]


async def test_ready_media_playlist_is_vod_and_cacheable(api: ApiEnv) -> None:
    video, _ = api.add_video()

    resp = await api.client.get(f"/v/{video.id}/720p.m3u8")

    parsed = m3u8.loads(resp.text)
    assert parsed.playlist_type == "vod" and parsed.is_endlist and len(parsed.segments) == 3
    assert resp.headers["cache-control"] == "public, max-age=60"
    assert resp.headers["last-modified"].endswith(" GMT")
    # every URI in it can be fetched from the media route
    for uri in [parsed.segment_map[0].uri, *(s.uri for s in parsed.segments[:1])]:
        if uri.endswith("init.mp4"):
            api.store.put_bytes("videos/demo-1/g1/720p/init.mp4", b"init", content_type="video/mp4")
        assert (await api.client.get(uri)).status_code == 200


async def test_transcoding_media_playlist_is_event_and_grows(api: ApiEnv) -> None:
    video, _ = api.add_video(ladder_video(VideoState.TRANSCODING), durations=[4.0])
    url = f"/v/{video.id}/720p.m3u8"

    before = await api.client.get(url)
    api.catalog.add_segment(  # the next segment arrives
        video.id, Segment(rendition="720p", seq=1, duration=4.0, key="videos/demo-1/g1/720p/1.m4s")
    )
    after = await api.client.get(url, headers={"If-None-Match": before.headers["etag"]})

    first = m3u8.loads(before.text)
    assert first.playlist_type == "event" and not first.is_endlist and len(first.segments) == 1
    assert before.headers["cache-control"] == "no-cache"
    assert "last-modified" not in before.headers
    assert after.status_code == 200 and len(m3u8.loads(after.text).segments) == 2


async def test_ready_playlist_follows_a_new_generation(api: ApiEnv) -> None:
    video, _ = api.add_video()
    url = f"/v/{video.id}/720p.m3u8"
    first = m3u8.loads((await api.client.get(url)).text)

    api.catalog.clear_segments(video.id)
    api.catalog.update(video.id, generation=2)
    for seq in range(2):
        api.catalog.add_segment(
            video.id,
            Segment(
                rendition="720p", seq=seq, duration=5.0, key=f"videos/demo-1/g2/720p/{seq}.m4s"
            ),
        )
    second = m3u8.loads((await api.client.get(url)).text)

    assert first.segments[0].uri == "/media/demo-1/g1/720p/0.m4s"
    assert [s.uri for s in second.segments] == [
        "/media/demo-1/g2/720p/0.m4s",
        "/media/demo-1/g2/720p/1.m4s",
    ]
    assert second.target_duration == 5


async def test_unchanged_manifest_revalidates_with_304(api: ApiEnv) -> None:
    video, _ = api.add_video()
    first = await api.client.get(f"/v/{video.id}/master.m3u8")

    again = await api.client.get(
        f"/v/{video.id}/master.m3u8", headers={"If-None-Match": first.headers["etag"]}
    )

    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


async def test_dash_manifest_is_served_as_dash_xml(api: ApiEnv) -> None:
    video, _ = api.add_video()

    resp = await api.client.get(f"/v/{video.id}/manifest.mpd")

    assert resp.headers["content-type"] == "application/dash+xml"
    mpd = MPEGDASHParser.parse(resp.text)
    assert mpd.media_presentation_duration == "PT10.000S"


async def test_subtitle_playlist_points_at_the_vtt(api: ApiEnv) -> None:
    video, _ = api.add_video()

    ok = await api.client.get(f"/v/{video.id}/subtitles/0.m3u8")
    missing = await api.client.get(f"/v/{video.id}/subtitles/3.m3u8")

    assert m3u8.loads(ok.text).segments[0].uri == "/media/demo-1/g1/subs/en.vtt"
    assert missing.status_code == 404


async def test_manifests_say_why_a_video_cannot_play(api: ApiEnv) -> None:
    api.catalog.create(Video(id="queued", state=VideoState.QUEUED))
    api.catalog.create(
        Video(
            id="broken",
            state=VideoState.FAILED,
            message="no video stream",
            renditions=[rung(360, 1)],
        )
    )
    api.add_video()

    queued = await api.client.get("/v/queued/master.m3u8")
    queued_mpd = await api.client.get("/v/queued/manifest.mpd")
    failed = await api.client.get("/v/broken/master.m3u8")
    no_rung = await api.client.get("/v/demo-1/4320p.m3u8")
    bad_rung = await api.client.get("/v/demo-1/BAD!.m3u8")
    unknown = await api.client.get("/v/ghost/master.m3u8")

    assert queued.status_code == 409 and "nothing to play yet" in queued.json()["detail"]
    assert queued_mpd.status_code == 409
    assert failed.status_code == 409 and "no video stream" in failed.json()["detail"]
    assert no_rung.status_code == 404
    assert bad_rung.status_code == 422
    assert unknown.status_code == 404


async def test_manifests_point_at_a_configured_media_origin(tmp_path: Path) -> None:
    async with api_env(tmp_path, media_base_url="https://cdn.example/media") as env:
        video, _ = env.add_video()
        text = (await env.client.get(f"/v/{video.id}/360p.m3u8")).text

    assert "https://cdn.example/media/demo-1/g1/360p/0.m4s" in text


async def test_signed_manifest_signs_what_it_lists(api: ApiEnv) -> None:
    video, _ = api.add_video()
    signed = {"md5": "AbC-_9", "expires": "2000000000"}

    master = m3u8.loads((await api.client.get(f"/v/{video.id}/master.m3u8", params=signed)).text)
    media = m3u8.loads((await api.client.get(f"/v/{video.id}/720p.m3u8", params=signed)).text)
    plain = m3u8.loads((await api.client.get(f"/v/{video.id}/720p.m3u8")).text)
    forged = await api.client.get(f"/v/{video.id}/720p.m3u8", params={"md5": "a b", "expires": "1"})

    assert master.playlists[0].uri == "360p.m3u8?md5=AbC-_9&expires=2000000000"
    assert media.segments[0].uri == "/media/demo-1/g1/720p/0.m4s?md5=AbC-_9&expires=2000000000"
    assert plain.segments[0].uri == "/media/demo-1/g1/720p/0.m4s"
    assert forged.status_code == 422


# --- backends down ---------------------------------------------------------------------


async def test_catalog_down_gives_503_with_retry_after(tmp_path: Path) -> None:
    async with api_env(tmp_path, retry_after_s=7) as env:
        env.add_video()
        env.catalog.close()
        listing = await env.client.get("/api/videos")
        manifest = await env.client.get("/v/demo-1/master.m3u8")
        ready = await env.client.get("/readyz")

    for resp in (listing, manifest, ready):
        assert resp.status_code == 503
        assert resp.headers["retry-after"] == "7"
    assert listing.json()["error"] == "unavailable"
    assert ready.json()["ready"] is False and ready.json()["store"] == "ok"


async def test_store_gone_makes_the_api_unready(api: ApiEnv) -> None:
    assert (await api.client.get("/readyz")).json() == {
        "ready": True,
        "catalog": "ok",
        "store": "ok",
    }

    shutil.rmtree(api.root / "media")
    resp = await api.client.get("/readyz")

    assert resp.status_code == 503
    assert resp.json()["store"].startswith("unavailable")
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}


# --- QoE and metrics -------------------------------------------------------------------


def beacon(**fields: object) -> dict[str, object]:
    return {
        "video_id": "demo-1",
        "session": "s1",
        "startup_ms": 800,
        "watch_ms": 9000,
        "rebuffer_ms": 1000,
        "rebuffer_count": 1,
        "switches": 2,
        **fields,
    }


async def test_qoe_beacon_is_recorded_and_becomes_metrics(api: ApiEnv) -> None:
    api.add_video()

    resp = await api.client.post(
        "/api/qoe", content=json.dumps(beacon()), headers={"Content-Type": "text/plain"}
    )
    # the player reports running totals again later in the same session
    later = beacon(watch_ms=19_000, rebuffer_ms=1500, rebuffer_count=2, errors=["decode"])
    await api.client.post("/api/qoe", json=later)
    stats = (await api.client.get("/api/videos/demo-1/qoe")).json()
    metrics = (await api.client.get("/metrics")).text

    assert resp.status_code == 204
    assert stats["sessions"] == 1 and stats["switches"] == 2
    assert "kubevod_qoe_startup_seconds_count 1.0" in metrics
    assert "kubevod_qoe_sessions_total 1.0" in metrics
    assert "kubevod_qoe_beacons_total 2.0" in metrics
    assert "kubevod_qoe_watch_seconds_total 19.0" in metrics
    assert "kubevod_qoe_rebuffer_seconds_total 1.5" in metrics
    assert "kubevod_qoe_rebuffer_count_sum 2.0" in metrics
    assert "kubevod_qoe_bitrate_switches_sum 2.0" in metrics
    assert "kubevod_qoe_player_errors_total 1.0" in metrics
    assert 'kubevod_qoe_rebuffer_ratio_bucket{le="0.1"} 2.0' in metrics


async def test_qoe_rejects_oversized_invalid_and_unknown(api: ApiEnv) -> None:
    api.add_video()

    big = await api.client.post("/api/qoe", json=beacon(errors=["x" * 9000]))
    invalid = await api.client.post("/api/qoe", json=beacon(startup_ms=-5))
    garbage = await api.client.post("/api/qoe", content=b"{not json")
    unknown = await api.client.post("/api/qoe", json=beacon(video_id="ghost"))

    assert big.status_code == 413 and "8192" in big.json()["detail"]
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["startup_ms"]
    assert garbage.status_code == 422
    assert unknown.status_code == 404
    assert api.catalog.qoe_stats("demo-1").sessions == 0


async def test_qoe_limit_holds_for_chunked_bodies_without_length(api: ApiEnv) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1024  # never sends Content-Length; stopped after 8 KiB

    resp = await api.client.post("/api/qoe", content=chunks())

    assert resp.status_code == 413


async def test_metrics_count_requests_by_route_template(api: ApiEnv) -> None:
    video, _ = api.add_video()
    await api.client.get(f"/v/{video.id}/720p.m3u8")
    await api.client.get(f"/v/{video.id}/360p.m3u8")
    await api.client.get("/no/such/page")

    text = (await api.client.get("/metrics")).text

    assert (
        'kubevod_api_requests_total{method="GET",route="/v/{video_id}/{rendition}.m3u8",'
        'status="200"} 2.0' in text
    )
    assert 'route="unmatched",status="404"' in text
    assert 'kubevod_manifest_render_seconds_count{kind="hls_media"} 2.0' in text
    assert "/v/demo-1/" not in text


# --- settings, CORS, compression, UI, OpenAPI ---


@pytest.mark.parametrize(
    "env",
    [
        {"api_token": "changeme"},
        {"store_url": "s3://minioadmin:minioadmin@minio:9000/kubevod"},
        {"catalog_url": "mongodb://root:password@mongo:27017/kubevod"},
    ],
)
def test_placeholder_secrets_are_refused_outside_development(env: dict[str, str]) -> None:
    from kubevod.api.settings import ApiSettings
    from pydantic import ValidationError

    ApiSettings(environment="development", **env)  # fine on a laptop
    with pytest.raises(ValidationError, match="placeholder"):
        ApiSettings(environment="production", **env)


def test_settings_come_from_kubevod_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubevod.api.settings import ApiSettings

    monkeypatch.setenv("KUBEVOD_MEDIA_BASE_URL", "https://cdn.example/media")
    monkeypatch.setenv("KUBEVOD_CORS_ORIGINS", '["https://tv.example"]')

    settings = ApiSettings()

    assert settings.media_base_url == "https://cdn.example/media"
    assert settings.cors_origins == ["https://tv.example"]


async def test_cors_allows_only_configured_origins(tmp_path: Path) -> None:
    async with api_env(tmp_path, cors_origins=["https://tv.example"]) as env:
        env.add_video()
        allowed = await env.client.options(
            "/media/demo-1/g1/720p/0.m4s",
            headers={
                "Origin": "https://tv.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "range",
            },
        )
        other = await env.client.get("/api/videos", headers={"Origin": "https://evil.example"})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://tv.example"
    assert "access-control-allow-origin" not in other.headers


# --- compression, UI, OpenAPI ----------------------------------------------------------


async def test_text_is_gzipped_but_media_never(api: ApiEnv) -> None:
    api.add_video()
    cues = b"WEBVTT\n\n" + b"00:00.000 --> 00:01.000\nhi\n\n" * 100
    api.store.put_bytes("videos/demo-1/g1/subs/en.vtt", cues, content_type="text/vtt")

    library = await api.client.get("/api/videos", headers={"Accept-Encoding": "gzip"})
    vtt = await api.client.get("/media/demo-1/g1/subs/en.vtt", headers={"Accept-Encoding": "gzip"})

    assert library.headers["content-encoding"] == "gzip"
    assert json.loads(library.content)["total"] == 1  # httpx already decoded it
    assert "content-encoding" not in vtt.headers
    assert vtt.headers["content-type"].startswith("text/vtt")
    assert not vtt.content.startswith(gzip.compress(b"")[:2])


@pytest.fixture
def ui_dir(tmp_path: Path) -> Path:
    ui = tmp_path / "ui"
    (ui / "vendor").mkdir(parents=True)
    (ui / "index.html").write_text("<!doctype html><title>Library</title>")
    (ui / "watch.html").write_text("<!doctype html><title>Watch</title>")
    (ui / "app.js").write_text("export const x = 1;")
    (ui / "vendor" / "hls.min.js").write_text("/* hls */")
    (ui / "sw.js").write_text("self.addEventListener('fetch', () => {});")
    return ui


async def test_ui_pages_assets_and_service_worker(tmp_path: Path, ui_dir: Path) -> None:
    async with api_env(tmp_path, ui_dir=ui_dir) as env:
        home = await env.client.get("/")
        watch = await env.client.get("/watch/demo-1")
        asset = await env.client.get("/ui/app.js")
        vendor = await env.client.get("/ui/vendor/hls.min.js")
        worker = await env.client.get("/sw.js")
        missing = await env.client.get("/ui/nope.js")
        escape = await env.client.get("/ui/..%2F..%2Fcatalog.db")

    assert "Library" in home.text and home.headers["content-type"].startswith("text/html")
    assert "Watch" in watch.text
    assert asset.headers["content-type"].startswith("text/javascript")
    assert asset.headers["cache-control"] == "no-cache" and "etag" in asset.headers
    assert vendor.headers["cache-control"] == "public, max-age=86400"
    assert worker.headers["service-worker-allowed"] == "/"
    assert worker.headers["cache-control"] == "no-cache"
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert escape.status_code in (404, 422)


async def test_shipped_ui_is_served(api: ApiEnv) -> None:
    from kubevod.api.ui import UI_DIR

    if not (UI_DIR / "index.html").exists():
        pytest.skip("the web UI files are not in the package yet")
    resp = await api.client.get("/")

    assert resp.status_code == 200 and "<html" in resp.text.lower()


async def test_openapi_documents_every_api_route(api: ApiEnv) -> None:
    paths = (await api.client.get("/openapi.json")).json()["paths"]

    assert {
        "/api/videos",
        "/api/videos/{video_id}",
        "/api/videos/{video_id}/qoe",
        "/v/{video_id}/master.m3u8",
        "/v/{video_id}/{rendition}.m3u8",
        "/v/{video_id}/subtitles/{index}.m3u8",
        "/v/{video_id}/manifest.mpd",
        "/media/{video_id}/{path}",
        "/api/qoe",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(paths)
    assert set(paths["/api/videos/{video_id}"]) == {"get", "patch", "delete"}
    assert "404" in paths["/api/videos/{video_id}"]["get"]["responses"]


def test_kubevod_api_entry_point_serves_with_default_backends(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import urllib.request

    from tests.fixtures.util import free_port, wait_for_port

    port = free_port()
    env = {
        **os.environ,
        "KUBEVOD_PORT": str(port),
        "KUBEVOD_DATA_DIR": str(tmp_path / "data"),
        "KUBEVOD_ENVIRONMENT": "production",
        "KUBEVOD_API_TOKEN": "a-real-secret-0f9e",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubevod.api.main"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            ready = json.loads(resp.read())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/videos", timeout=5) as resp:
            library = json.loads(resp.read())
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0].decode(errors="replace")

    assert ready == {"ready": True, "catalog": "ok", "store": "ok"}, output
    assert library["total"] == 0
    assert (tmp_path / "data" / "catalog.db").exists()
