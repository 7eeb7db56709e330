"""Dependencies the routes share: the backends, the "load it or 404" video, the token check.

Routes declare what they need with the ``Annotated`` aliases below and stay
a few lines long. The (blocking) catalog is only ever called in the threadpool.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from kubevod.api.errors import Forbidden, Unauthorized
from kubevod.api.manifest_cache import ManifestCache
from kubevod.api.metrics import Metrics
from kubevod.api.qoe_limits import RateLimiter, SessionCap
from kubevod.api.settings import ApiSettings
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool

from kubevod.catalog.base import Catalog
from kubevod.jobs import Ingestor
from kubevod.models import RENDITION_PATTERN, VIDEO_ID_PATTERN, Video
from kubevod.ondemand import ChunkScheduler
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
    qoe_rate: RateLimiter
    qoe_sessions: SessionCap
    #: Encodes the chunk of an on-demand video a viewer reached (local mode's pool).
    chunks: ChunkScheduler | None = None


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


#: What a signed-URL query's values look like (anything else is a 422).
SIGNED_MD5 = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SIGNED_EXPIRES = re.compile(r"^[0-9]{1,12}$")


def signed_query_string(md5: str | None, expires: str | None) -> str:
    """The query to append to every URI a manifest lists: both values, or nothing (pure)."""
    return urlencode({"md5": md5, "expires": expires}) if md5 and expires else ""


async def signed_query(
    md5: Annotated[
        str | None,
        Query(pattern=SIGNED_MD5.pattern, description="Signed-URL token (checked by nginx)"),
    ] = None,
    expires: Annotated[
        str | None,
        Query(pattern=SIGNED_EXPIRES.pattern, description="Signed-URL expiry, unix time"),
    ] = None,
) -> str:
    """The signed-URL query a manifest was fetched with, to append to every URI it lists.

    nginx checks the token (one per video, docs/architecture.md §7); the API only passes it on,
    so segments fetched through a signed manifest are signed too.
    """
    return signed_query_string(md5, expires)


SignedQuery = Annotated[str, Depends(signed_query)]

_bearer = HTTPBearer(auto_error=False, description="KUBEVOD_API_TOKEN, when one is set")


def bearer_value(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, None without one."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def bearer_token(request: Request) -> str | None:
    """The token of the request's ``Authorization: Bearer <token>`` header, None without one."""
    return bearer_value(request.headers.get("authorization"))


def token_matches(given: str | None, expected: SecretStr | None) -> bool:
    """True when a token is configured and ``given`` is it (constant-time compare)."""
    if expected is None or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def is_loopback(address: str | None) -> bool:
    """True for a loopback IP address (127.0.0.0/8, ::1, ::ffff:127.x)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def is_owner(request: Request, settings: ApiSettings) -> bool:
    """Whether the caller owns this server and may read the precise reason of an error.

    With a token configured: the caller presents it. Without one (local mode on
    loopback): the caller connects from this machine. Behind a reverse proxy the
    client address is the one uvicorn took from a trusted ``X-Forwarded-For``.
    """
    if settings.api_token is not None:
        return token_matches(bearer_token(request), settings.api_token)
    return is_loopback(request.client.host if request.client else None)


def may_read(request: Request, settings: ApiSettings) -> bool:
    """Whether the caller may list a private library (``ApiSettings.private_library``)."""
    if not settings.private_library():
        return True
    given = bearer_token(request)
    return token_matches(given, settings.api_token) or token_matches(given, settings.viewer_token)


_PRIVATE = "this library is private: send Authorization: Bearer <token>"


async def require_token(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Writes need the owner: the bearer token when one is set, else a caller on this machine.

    Without a token (local mode on loopback, development) a client elsewhere, e.g.
    behind a reverse proxy that sends ``X-Forwarded-For``, may read but not change
    anything, nor make the server fetch or open a source of its choosing.
    """
    expected = services.settings.api_token
    if expected is not None:
        if not token_matches(credentials.credentials if credentials else None, expected):
            raise Unauthorized("a valid bearer token is required (Authorization: Bearer <token>)")
        return
    if not is_owner(request, services.settings):
        raise Forbidden("changes from another machine need an API token (KUBEVOD_API_TOKEN)")


async def require_reader(
    request: Request,
    services: ServicesDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """A private library's listing and details: the API or viewer token (401 otherwise)."""
    if not may_read(request, services.settings):
        raise Unauthorized(_PRIVATE)


def playback_allowed(
    settings: ApiSettings,
    video_id: str,
    authorization: str | None,
    md5: str | None,
    expires: str | None,
    now: float,
) -> bool:
    """Whether a request may fetch this video's manifests and media (pure but for ``now``).

    Everyone may, unless the library is private; then the API or viewer token
    (``Authorization: Bearer <token>``), or this video's valid signed query.
    """
    if not settings.private_library():
        return True
    given = bearer_value(authorization)
    if token_matches(given, settings.api_token) or token_matches(given, settings.viewer_token):
        return True
    signer = settings.url_signer()
    return signer is not None and signer.verify(video_id, md5, expires, now)


PRIVATE_PLAYBACK = _PRIVATE + ", or use the signed links its details give"


async def require_playback(
    request: Request,
    video_id: VideoId,
    services: ServicesDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """A private video's manifests and media: a token, or this video's valid signature.

    Players fetch manifests and segments without headers, so the signed query the
    (token-protected) details handed out is enough; the API checks it itself, as
    nginx does, so reaching the API past the cache opens nothing.
    """
    params = request.query_params
    if not playback_allowed(
        services.settings,
        video_id,
        request.headers.get("authorization"),
        params.get("md5"),
        params.get("expires"),
        time.time(),
    ):
        raise Unauthorized(PRIVATE_PLAYBACK)


TokenDep = Depends(require_token)
ReaderDep = Depends(require_reader)
PlaybackDep = Depends(require_playback)
