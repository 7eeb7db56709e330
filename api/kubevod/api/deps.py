"""Dependencies the routes share: the backends, the "load it or 404" video, the token check.

Routes declare what they need with the ``Annotated`` aliases below and stay
a few lines long. The (blocking) catalog is only ever called in the threadpool.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from kubevod.api.errors import Unauthorized
from kubevod.api.manifest_cache import ManifestCache
from kubevod.api.metrics import Metrics
from kubevod.api.settings import ApiSettings
from starlette.concurrency import run_in_threadpool

from kubevod.catalog.base import Catalog
from kubevod.jobs import Ingestor
from kubevod.models import RENDITION_PATTERN, VIDEO_ID_PATTERN, Video
from kubevod.store.base import ObjectStore


@dataclass(frozen=True)
class Services:
    """What one app instance works with; stored on ``app.state.services``."""

    settings: ApiSettings
    store: ObjectStore
    catalog: Catalog
    ingestor: Ingestor | None
    metrics: Metrics
    manifests: ManifestCache


async def get_services(request: Request) -> Services:
    """The app's services (async: a plain function would cost a threadpool hop per request)."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

VideoId = Annotated[
    str,
    Path(
        pattern=VIDEO_ID_PATTERN,
        max_length=63,
        description="Video id: lowercase letters, digits and dashes",
        examples=["3f2a9c01b7de"],
    ),
]
RenditionName = Annotated[
    str,
    Path(pattern=RENDITION_PATTERN, max_length=32, description="Rendition name such as 720p"),
]


async def load_video(video_id: VideoId, services: ServicesDep) -> Video:
    """The video with this id, or a 404 (NotFound) for an unknown one (read in the threadpool)."""
    return await run_in_threadpool(services.catalog.get, video_id)


VideoDep = Annotated[Video, Depends(load_video)]


async def signed_query(
    md5: Annotated[
        str | None,
        Query(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Signed-URL token (checked by nginx)"),
    ] = None,
    expires: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,12}$", description="Signed-URL expiry, unix time")
    ] = None,
) -> str:
    """The signed-URL query a manifest was fetched with, to append to every URI it lists.

    nginx checks the token (one per video, DESIGN.md §7); the API only passes it on,
    so segments fetched through a signed manifest are signed too.
    """
    return urlencode({"md5": md5, "expires": expires}) if md5 and expires else ""


SignedQuery = Annotated[str, Depends(signed_query)]

_bearer = HTTPBearer(auto_error=False, description="KUBEVOD_API_TOKEN, when one is set")


async def require_token(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let the request through when no token is configured or the bearer token matches."""
    expected = services.settings.api_token
    if expected is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise Unauthorized("a valid bearer token is required (Authorization: Bearer <token>)")


TokenDep = Depends(require_token)
