"""The API on the cluster's backends: S3Store on a real MinIO and MongoCatalog on FerretDB."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import m3u8
import pytest

from kubevod.backends import open_catalog, open_store
from kubevod.models import new_video_id
from tests.integration.api_env import ApiEnv, api_env
from tests.unit.manifest_cases import ladder_video

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(tmp_path: Path, minio: Any, mongo_url: str) -> AsyncIterator[ApiEnv]:
    catalog = open_catalog(mongo_url)
    store = open_store(minio.store_url)
    try:
        async with api_env(tmp_path, catalog=catalog, store=store, retry_after_s=3) as env:
            yield env
    finally:
        catalog.close()


def fresh_video() -> Any:
    # The bucket is shared by the whole session: every test works under its own id.
    return ladder_video().model_copy(update={"id": new_video_id(), "title": "On S3"})


async def test_playlists_and_segments_come_from_s3_and_mongo(api: ApiEnv) -> None:
    video, _ = api.add_video(fresh_video())

    master = await api.client.get(f"/v/{video.id}/master.m3u8")
    media = m3u8.loads((await api.client.get(f"/v/{video.id}/720p.m3u8")).text)
    first = await api.client.get(media.segments[0].uri)
    ranged = await api.client.get(media.segments[1].uri, headers={"Range": "bytes=-4"})
    cached = await api.client.get(
        media.segments[0].uri, headers={"If-None-Match": first.headers["etag"]}
    )

    assert master.status_code == 200 and len(m3u8.loads(master.text).playlists) == 3
    assert len(media.segments) == 3 and media.is_endlist
    assert first.status_code == 200 and first.content == b"720p:0" * 100
    assert first.headers["content-type"] == "video/mp4"
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert ranged.status_code == 206 and ranged.content == (b"720p:1" * 100)[-4:]
    assert cached.status_code == 304


async def test_library_search_and_delete_on_real_backends(api: ApiEnv) -> None:
    video, _ = api.add_video(fresh_video())

    found = (await api.client.get("/api/videos", params={"q": "on s3"})).json()
    deleted = await api.client.delete(f"/api/videos/{video.id}")

    assert [v["id"] for v in found["items"]] == [video.id]
    assert deleted.status_code == 204
    assert list(api.store.list(f"videos/{video.id}/")) == []
    assert (await api.client.get(f"/api/videos/{video.id}")).status_code == 404


async def test_store_outage_is_503_with_retry_after_and_recovers(api: ApiEnv, minio: Any) -> None:
    video, _ = api.add_video(fresh_video())
    url = f"/media/{video.id}/g1/720p/0.m4s"

    minio.stop()
    try:
        started = time.monotonic()
        ready = await api.client.get("/readyz")
        media = await api.client.get(url)
        waited = time.monotonic() - started
        # manifests come from the catalog alone and keep working
        manifest = await api.client.get(f"/v/{video.id}/720p.m3u8")
    finally:
        minio.start()

    assert ready.status_code == 503 and ready.headers["retry-after"] == "3"
    assert ready.json()["catalog"] == "ok" and ready.json()["store"].startswith("unavailable")
    assert media.status_code == 503 and media.headers["retry-after"] == "3"
    assert manifest.status_code == 200
    assert waited < 30
    assert (await api.client.get(url)).status_code == 200
