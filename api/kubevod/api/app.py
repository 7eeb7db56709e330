"""The FastAPI application factory.

``create_app`` wires settings, backends, middleware, the error handler and
the routers. Backends passed in (local mode, tests) are used as they are and
left open; backends opened here from the settings' URLs are closed on shutdown.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from kubevod.api import errors, health, library, media, metrics, playback, qoe, ui
from kubevod.api.deps import Services
from kubevod.api.guard import RequestGuard
from kubevod.api.manifest_cache import (
    GZIP_LEVEL,
    GZIP_MINIMUM_SIZE,
    ManifestCache,
    version_probe,
)
from kubevod.api.metrics import Metrics, MetricsMiddleware
from kubevod.api.qoe_limits import RateLimiter, SessionCap
from kubevod.api.settings import ApiSettings
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from kubevod.__about__ import __version__
from kubevod.backends import open_catalog, open_store
from kubevod.catalog.base import Catalog
from kubevod.jobs import Ingestor
from kubevod.ondemand import CatalogWants, ChunkScheduler
from kubevod.store.base import ObjectStore

DESCRIPTION = """\
Self-hosted video on demand: the library, HLS/DASH manifests rendered from the
catalog, the media fallback origin, player QoE intake, health and metrics.
"""


#: Newer FastAPI makes its own request spans, metrics and logs once a tracer provider is
#: set. kubevod makes its server spans itself, at the process edge (kubevod.api.tracing,
#: in kubevod-api and in local mode), so FastAPI's stay
#: off: a request never gets two server spans, nor pays for spans nobody asked for.
NO_NATIVE_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


class TextGZip:
    """gzip for text responses, never for ``/media/`` (ranges of media must stay byte-exact)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=GZIP_MINIMUM_SIZE, compresslevel=GZIP_LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/media/"):
            await self.app(scope, receive, send)
        else:
            await self.gzip(scope, receive, send)


def create_app(
    settings: ApiSettings | None = None,
    *,
    store: ObjectStore | None = None,
    catalog: Catalog | None = None,
    ingestor: Ingestor | None = None,
    chunks: ChunkScheduler | None = None,
) -> FastAPI:
    """Build the API.

    Args:
        settings: validated settings; read from ``KUBEVOD_*`` when None.
        store: the object store; opened from ``settings.store_url`` when None.
        catalog: the catalog; opened from ``settings.catalog_url`` when None.
        ingestor: local mode's ingestor; ``POST /api/videos`` exists only with one.
        chunks: who encodes the chunk of an on-demand video that a request for a
            segment not encoded yet needs (the request waits for it): local mode's
            pool; when None, the catalog's chunk wants, which the cluster's warm chunk
            workers take (``kubevod.ondemand.CatalogWants``).

    Returns:
        The ASGI application.
    """
    settings = settings or ApiSettings()
    owned: list[Catalog] = []
    if catalog is None:
        catalog = open_catalog(settings.resolved_catalog_url())
        owned.append(catalog)
    if store is None:
        store = open_store(settings.resolved_store_url())

    manifests = ManifestCache(version_probe(catalog))

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        manifests.close()
        for opened in owned:
            opened.close()

    app = FastAPI(
        title="kubevod",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        **NO_NATIVE_TELEMETRY,
    )
    services = Services(
        settings=settings,
        store=store,
        catalog=catalog,
        ingestor=ingestor,
        metrics=Metrics(),
        manifests=manifests,
        qoe_rate=RateLimiter(settings.qoe_rate_per_s, settings.qoe_burst, settings.qoe_max_clients),
        qoe_sessions=SessionCap(settings.qoe_max_sessions_per_video),
        chunks=chunks
        if chunks is not None
        else CatalogWants(catalog, promote_after_seconds=settings.on_demand_promote_after_s),
    )
    app.state.services = services

    errors.install(app, retry_after_s=settings.retry_after_s)
    app.include_router(library.router)
    if ingestor is not None:
        app.include_router(library.ingest_router())
    app.include_router(playback.router)
    app.include_router(media.router)
    app.include_router(qoe.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(ui.router)

    # Outermost last: metrics see every request, including gzip and CORS answers.
    app.add_middleware(TextGZip)
    # Manifests known at the catalog's current version, answered before routing (and
    # compressed once, not per request: it does what TextGZip would).
    manifest_routes = {r.path: r for r in playback.router.routes if isinstance(r, APIRoute)}
    app.add_middleware(
        playback.CachedManifests,
        services=services,
        routes={t: manifest_routes[t] for t in playback.ROUTE_TEMPLATES},
    )
    # Host allowlist and the cross-origin write check, before any route (DNS rebinding, CSRF).
    app.add_middleware(
        RequestGuard,
        allowed_hosts=settings.allowed_hosts,
        cors_origins=settings.cors_origins,
        any_origin_paths=frozenset({qoe.PATH}),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "POST", "PATCH", "DELETE"],
            # traceparent/tracestate: a player on another origin continues its trace here.
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Range",
                "If-None-Match",
                "traceparent",
                "tracestate",
            ],
            expose_headers=["Content-Range", "Content-Length", "ETag", "Accept-Ranges"],
            max_age=600,
        )
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    return app
