"""A real API on FileStore + SqliteCatalog in a temporary folder, driven over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from kubevod.api.app import create_app
from kubevod.api.settings import ApiSettings

from kubevod.backends import open_catalog, open_store
from kubevod.catalog.base import Catalog
from kubevod.jobs import Ingestor
from kubevod.models import IMMUTABLE, Segment, Video
from kubevod.store.base import ObjectStore
from tests.unit.manifest_cases import ladder_video, segments_for


@dataclass
class ApiEnv:
    app: FastAPI
    client: httpx.AsyncClient
    store: ObjectStore
    catalog: Catalog
    root: Path

    def add_video(
        self, video: Video | None = None, durations: list[float] | None = None
    ) -> tuple[Video, list[Segment]]:
        """Record a video and its segments in the catalog, and put the segments in the store."""
        video = self.catalog.create(video or ladder_video())
        segments = segments_for(video, durations if durations is not None else [4.0, 4.0, 2.0])
        for seg in segments:
            self.catalog.add_segment(video.id, seg)
            self.store.put_bytes(
                seg.key,
                f"{seg.rendition}:{seg.seq}".encode() * 100,
                content_type="video/mp4",
                cache_control=IMMUTABLE,
            )
        return video, segments


@asynccontextmanager
async def api_env(
    root: Path,
    *,
    ingestor: Ingestor | None = None,
    catalog: Catalog | None = None,
    store: ObjectStore | None = None,
    **settings: Any,
) -> AsyncIterator[ApiEnv]:
    """Start the app on real embedded backends under ``root``; close them afterwards."""
    store = store or open_store((root / "media").as_uri())
    owned = catalog is None
    catalog = catalog or open_catalog(f"sqlite://{root / 'catalog.db'}")
    app = create_app(ApiSettings(**settings), store=store, catalog=catalog, ingestor=ingestor)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://kubevod.test") as client:
            yield ApiEnv(app=app, client=client, store=store, catalog=catalog, root=root)
    finally:
        if owned:
            catalog.close()
