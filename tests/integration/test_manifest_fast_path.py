"""Manifests answered from memory (kubevod.api.manifest_cache, the fast path in
kubevod.api.playback): the same answers as the routes, never stale, never past auth.

The app runs on a real SqliteCatalog; "another replica" is a second SqliteCatalog
on the same file, writing as the worker or another API process would. A request
served from memory reads nothing from the catalog, which the tests check by making
the app's catalog refuse every read.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import m3u8
import pytest
from kubevod.api.app import create_app
from kubevod.api.settings import ApiSettings

from kubevod.backends import open_catalog, open_store
from kubevod.models import Segment, VideoState
from kubevod.signing import UrlSigner
from tests.unit.manifest_cases import ladder_video, segments_for

pytestmark = pytest.mark.integration

TOKEN = "Xr4vN8qLm2Tz6KpW9sJd"
SECRET = "Pk2mW9xQ4vTz7LrN"
MEDIA = "/v/demo-1/720p.m3u8"
MANIFESTS = [
    "/v/demo-1/master.m3u8",
    MEDIA,
    "/v/demo-1/audio.m3u8",
    "/v/demo-1/subtitles/0.m3u8",
    "/v/demo-1/manifest.mpd",
]


class Env:
    def __init__(self, root: Path, **settings: Any) -> None:
        self.url = f"sqlite://{root / 'catalog.db'}"
        self.catalog = open_catalog(self.url)
        self.other = open_catalog(self.url)  # another replica, the worker
        self.app = create_app(
            ApiSettings(**settings), store=open_store(root.as_uri()), catalog=self.catalog
        )
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://kubevod.test"
        )

    def add(self, state: VideoState, durations: list[float]) -> None:
        video = self.other.create(ladder_video(state))
        for seg in segments_for(video, durations):
            self.other.add_segment(video.id, seg)

    def no_reads(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """From now on the app's catalog refuses reads: what still answers came from memory."""

        def refuse(*_: object, **__: object) -> None:
            raise AssertionError("the catalog was read")

        for name in ("get", "segments"):
            monkeypatch.setattr(self.catalog, name, refuse)

    def renders(self) -> float:
        registry = self.app.state.services.metrics.registry
        return sum(
            float(s.value)
            for m in registry.collect()
            for s in m.samples
            if s.name == "kubevod_manifest_render_seconds_count"
        )

    async def close(self) -> None:
        await self.client.aclose()
        for catalog in (self.catalog, self.other):
            catalog.close()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    env = Env(tmp_path)
    try:
        yield env
    finally:
        await env.close()


async def test_answers_from_memory_are_the_routes_answers(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.add(VideoState.READY, [4.0, 4.0, 2.0])
    plain = {"accept-encoding": "identity"}
    zipped = {"accept-encoding": "gzip, deflate"}
    first = {p: (await env.client.get(p, headers=plain)) for p in MANIFESTS}
    first_gz = {p: (await env.client.get(p, headers=zipped)) for p in MANIFESTS}
    env.no_reads(monkeypatch)

    for path in MANIFESTS:
        again = await env.client.get(path, headers=plain)
        again_gz = await env.client.get(path, headers=zipped)
        assert again.status_code == first[path].status_code == 200, path
        assert again.content == first[path].content, path
        assert dict(again.headers) == dict(first[path].headers), path
        assert again_gz.content == first_gz[path].content, path  # httpx decodes gzip
        want = {k: v for k, v in first_gz[path].headers.items() if k != "content-length"}
        assert {k: v for k, v in again_gz.headers.items() if k != "content-length"} == want
        assert again_gz.headers.get("content-encoding") == first_gz[path].headers.get(
            "content-encoding"
        ), path


async def test_gzip_from_memory_is_valid_gzip_of_the_manifest(env: Env) -> None:
    env.add(VideoState.READY, [4.0] * 40)
    await env.client.get(MEDIA)
    transport = httpx.ASGITransport(app=env.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kubevod.test") as raw:
        request = raw.build_request("GET", MEDIA, headers={"accept-encoding": "gzip"})
        answer = await raw.send(request, stream=True)
        body = b"".join([chunk async for chunk in answer.aiter_raw()])
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.headers["vary"] == "Accept-Encoding"
    assert int(answer.headers["content-length"]) == len(body)
    assert gzip.decompress(body).decode().count("#EXTINF") == 40


async def test_revalidation_from_memory_is_a_304(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.add(VideoState.READY, [4.0, 2.0])
    first = await env.client.get(MEDIA)
    env.no_reads(monkeypatch)

    again = await env.client.get(MEDIA, headers={"If-None-Match": first.headers["etag"]})
    changed = await env.client.get(MEDIA, headers={"If-None-Match": '"other"'})

    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["last-modified"] == first.headers["last-modified"]
    assert changed.status_code == 200 and changed.content == first.content


async def test_event_playlist_lists_a_segment_the_moment_another_writer_records_it(
    env: Env,
) -> None:
    env.add(VideoState.TRANSCODING, [4.0])
    before = [await env.client.get(MEDIA) for _ in range(3)]  # the last two from memory
    renders = env.renders()

    env.other.add_segment(
        "demo-1", Segment(rendition="720p", seq=1, duration=4.0, key="videos/demo-1/g1/720p/1.m4s")
    )
    after = await env.client.get(MEDIA, headers={"If-None-Match": before[0].headers["etag"]})
    again = await env.client.get(MEDIA)

    assert renders == 1, "the repeated requests were answered from memory"
    assert all(len(m3u8.loads(r.text).segments) == 1 for r in before)
    assert before[-1].headers["cache-control"] == "no-cache"
    assert after.status_code == 200 and len(m3u8.loads(after.text).segments) == 2
    assert again.text == after.text and env.renders() == 2


async def test_the_end_of_a_transcode_turns_the_playlist_into_vod_at_once(env: Env) -> None:
    env.add(VideoState.TRANSCODING, [4.0, 4.0])
    assert m3u8.loads((await env.client.get(MEDIA)).text).playlist_type == "event"
    await env.client.get(MEDIA)

    env.other.update("demo-1", state=VideoState.READY, progress=100.0)
    done = await env.client.get(MEDIA)

    parsed = m3u8.loads(done.text)
    assert parsed.playlist_type == "vod" and parsed.is_endlist
    assert done.headers["cache-control"] == "public, max-age=60"


async def test_a_deleted_video_is_gone_on_the_next_request(env: Env) -> None:
    env.add(VideoState.READY, [4.0])
    for _ in range(2):
        assert (await env.client.get(MEDIA)).status_code == 200

    env.other.delete("demo-1")

    assert (await env.client.get(MEDIA)).status_code == 404


async def test_metrics_label_answers_from_memory_by_route(env: Env) -> None:
    env.add(VideoState.READY, [4.0])
    for _ in range(3):
        await env.client.get(MEDIA)
    text = (await env.client.get("/metrics")).text
    assert (
        'kubevod_api_requests_total{method="GET",route="/v/{video_id}/{rendition}.m3u8",'
        'status="200"} 3.0'
    ) in text


async def test_a_private_library_is_checked_on_every_answer_from_memory(tmp_path: Path) -> None:
    env = Env(
        tmp_path,
        environment="production",
        api_token=TOKEN,
        signing_secret=SECRET,
        allowed_hosts=["kubevod.test"],
    )
    try:
        env.add(VideoState.READY, [4.0, 4.0])
        signed = UrlSigner(SECRET, 3600).query("demo-1", time.time())
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        filled = [await env.client.get(MEDIA, headers=bearer) for _ in range(2)]
        signed_ok = [await env.client.get(f"{MEDIA}?{signed}") for _ in range(2)]
        anonymous = await env.client.get(MEDIA)
        wrong = await env.client.get(MEDIA, headers={"Authorization": "Bearer nope"})
        forged = await env.client.get(f"{MEDIA}?md5=AAAAAAAAAAAAAAAAAAAAAA&expires=9999999999")
        other_host = await env.client.get(MEDIA, headers={**bearer, "Host": "evil.example"})
    finally:
        await env.close()

    assert [r.status_code for r in filled + signed_ok] == [200] * 4
    assert signed in m3u8.loads(signed_ok[-1].text).segments[0].uri
    assert signed not in filled[-1].text
    assert anonymous.status_code == wrong.status_code == forged.status_code == 401
    assert other_host.status_code == 421
