"""Playback manifests: HLS playlists and the DASH MPD, rendered from the catalog.

Rendering is done by the pure functions in :mod:`kubevod.manifests`. A ready
video's manifests are cacheable for ``manifest_max_age_s``; a transcoding
video's are ``no-cache`` (EVENT playlists grow). Every manifest carries an ETag
and answers If-None-Match with 304.

Serving a manifest is the API's hottest path, so a request does as little as it
can: the routes are ``async``, and while the catalog's version has not moved
(see :mod:`kubevod.api.manifest_cache`) the entry and the rendered bytes come
from memory: no catalog read, no threadpool hop, no render. Otherwise the
threadpool reads what is missing (the entry; then, unless the rendered bytes
are still good, the segments and the render), and the results are stamped with
the version seen before the reads, so a segment recorded meanwhile is listed on
the next request. The rendered bytes of a ready video
are keyed by its id, generation and ``updated_at`` as well, so a catalog
without a cheap version (MongoDB) reads only the entry per request.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Path, Request, Response
from kubevod.api.deps import (
    SIGNED_EXPIRES,
    SIGNED_MD5,
    PlaybackDep,
    RenditionName,
    ServicesDep,
    SignedQuery,
    VideoId,
    playback_allowed,
    signed_query_string,
)
from kubevod.api.deps import Services as Services
from kubevod.api.errors import responses
from kubevod.api.http_semantics import etag_matches, quote_etag
from kubevod.api.manifest_cache import Answer, ManifestCache, build_answer
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from kubevod import telemetry
from kubevod.errors import Conflict, NotFound
from kubevod.manifests import dash, hls
from kubevod.models import Segment, Video, VideoState

router = APIRouter(tags=["playback"])


def _playable(video: Video) -> None:
    if video.state == VideoState.FAILED:
        raise Conflict(f"video {video.id} failed to transcode: {video.message or 'no details'}")


@dataclass(frozen=True)
class Manifest:
    """What one manifest route serves (pure description; no I/O).

    Attributes:
        kind: metric and span label (``hls_master``, ``hls_media``, ``hls_subtitles``, ``dash``).
        media_type: the Content-Type.
        check: raises NotFound/Conflict when the video cannot have this manifest.
        render: (video, segments) to text; ValueError when there is nothing to play yet.
        rendition: the segments it lists: None for none, "" for every rendition's.
        variant: what else tells this manifest apart (rendition, track index).
    """

    kind: str
    media_type: str
    check: Callable[[Video], None]
    render: Callable[[Video, Sequence[Segment]], str]
    rendition: str | None = None
    variant: Hashable = None


def _render(
    services: Services, video: Video, manifest: Manifest, segments: Sequence[Segment]
) -> Answer:
    attributes = {"kubevod.video.id": video.id, "kubevod.manifest.kind": manifest.kind}
    with telemetry.span("manifest.render", attributes=attributes, tracer_name=__name__):
        started = time.perf_counter()
        try:
            body = manifest.render(video, segments).encode()
        except ValueError as exc:
            raise Conflict(f"nothing to play yet: {exc}") from exc
        elapsed = time.perf_counter() - started
    services.metrics.manifest_render.labels(manifest.kind).observe(elapsed)
    etag = quote_etag(hashlib.md5(body, usedforsecurity=False).hexdigest())
    ready = video.state == VideoState.READY
    max_age = services.settings.manifest_max_age_s
    return build_answer(
        body, etag, manifest.media_type, video.updated_at if ready else None, max_age
    )


async def _serve(
    request: Request, services: Services, video_id: str, manifest: Manifest, query: str
) -> Response:
    """Answer one manifest request: from memory while the catalog's version holds, else
    after one threadpool trip that reads what is missing and renders.

    Args:
        request: for If-None-Match.
        services: backends, settings, metrics, cache.
        video_id: the video.
        manifest: which manifest, and how to check, load and render it.
        query: the signed-URL query the renderer appends to URIs (part of the cache key).
    """
    cache = services.manifests
    catalog = services.catalog
    version = cache.version()  # before any read: a write after it shows on the next request
    video = cache.video(video_id, version)
    if video is None:
        video = await run_in_threadpool(catalog.get, video_id)
        cache.put_video(video, version)
    manifest.check(video)
    rendered = cached(cache, video, manifest.kind, manifest.variant, query, version)
    if rendered is None:
        entry = video

        def load_and_render() -> Answer:
            segments: list[Segment] = []
            if manifest.rendition is not None:
                segments = catalog.segments(entry.id, manifest.rendition or None)
            return _render(services, entry, manifest, segments)

        rendered = await run_in_threadpool(load_and_render)
        if video.state == VideoState.READY or version is not None:
            cache.put(cache_key(video, manifest.kind, manifest.variant, query), rendered, version)
    return AnswerResponse(rendered, request.headers.get("if-none-match"))


def cache_key(video: Video, kind: str, variant: Hashable, query: str) -> Hashable:
    """What a rendered manifest depends on besides the catalog version (the app's settings
    are fixed): the manifest, the entry's generation and ``updated_at``, the signed query."""
    return (kind, variant, video.id, video.generation, video.updated_at, query)


def cached(
    cache: ManifestCache,
    video: Video,
    kind: str,
    variant: Hashable,
    query: str,
    version: Hashable | None,
) -> Answer | None:
    """The rendered manifest, when still true: any version for a ready video (its key
    names its generation and ``updated_at``), the same version otherwise."""
    ready = video.state == VideoState.READY
    if not ready and version is None:
        return None
    answer: Answer | None = cache.get(
        cache_key(video, kind, variant, query), None if ready else version
    )
    return answer


class AnswerResponse(Response):
    """A prepared manifest answer: 200 with the body, or 304 when If-None-Match matches.

    Args:
        answer: the rendered manifest.
        if_none_match: the request's If-None-Match.
        gzipped: None to send the plain answer (the route's: TextGZip around it
            then does its part); else whether the client takes gzip, to send the
            answer as TextGZip would have (the fast path, outside it).
    """

    def __init__(
        self, answer: Answer, if_none_match: str | None, gzipped: bool | None = None
    ) -> None:
        self.background = None
        if if_none_match is not None and etag_matches(if_none_match, answer.etag):
            self.status_code, self.body = 304, b""
            self.raw_headers = list(answer.not_modified_headers)
            return
        self.status_code = 200
        if gzipped is None:
            self.body, headers = answer.body, answer.headers
        else:
            self.body, headers = answer.encoded(gzipped)
        self.raw_headers = list(headers)  # a copy: middleware may add to it


_MANIFEST_RESPONSES = responses(401, 404, 409, 503)
_M3U8: dict[int | str, dict[str, Any]] = {
    200: {"content": {hls.CONTENT_TYPE: {}}, "description": "HLS playlist"}
}
_MPD: dict[int | str, dict[str, Any]] = {
    200: {"content": {dash.CONTENT_TYPE: {}}, "description": "DASH MPD"}
}


@router.get(
    "/v/{video_id}/master.m3u8",
    response_class=Response,
    dependencies=[PlaybackDep],
    responses={**_M3U8, **_MANIFEST_RESPONSES},
)
async def master_playlist(
    request: Request, video_id: VideoId, services: ServicesDep, query: SignedQuery
) -> Response:
    """The HLS master playlist: every rung, the audio group, the subtitle tracks."""
    manifest = Manifest(
        "hls_master",
        hls.CONTENT_TYPE,
        _playable,
        lambda video, _: hls.render_master(video, query=query),
    )
    return await _serve(request, services, video_id, manifest, query)


@router.get(
    "/v/{video_id}/manifest.mpd",
    response_class=Response,
    dependencies=[PlaybackDep],
    responses={**_MPD, **_MANIFEST_RESPONSES},
)
async def dash_manifest(
    request: Request, video_id: VideoId, services: ServicesDep, query: SignedQuery
) -> Response:
    """The DASH MPD over the same CMAF segments (static; see kubevod.manifests.dash)."""
    base = services.settings.media_base_url
    manifest = Manifest(
        "dash",
        dash.CONTENT_TYPE,
        _playable,
        lambda video, segments: dash.render_mpd(video, segments, media_base=base, query=query),
        rendition="",
    )
    return await _serve(request, services, video_id, manifest, query)


@router.get(
    "/v/{video_id}/subtitles/{index}.m3u8",
    response_class=Response,
    dependencies=[PlaybackDep],
    responses={**_M3U8, **_MANIFEST_RESPONSES},
)
async def subtitle_playlist(
    request: Request,
    video_id: VideoId,
    services: ServicesDep,
    query: SignedQuery,
    index: int = Path(ge=0, le=1000, description="Position of the track in the video's subtitles"),
) -> Response:
    """The HLS media playlist of one WebVTT track."""

    def check(video: Video) -> None:
        if index >= len(video.subtitles):
            raise NotFound(f"video {video.id} has no subtitle track {index}")

    base = services.settings.media_base_url
    manifest = Manifest(
        "hls_subtitles",
        hls.CONTENT_TYPE,
        check,
        lambda video, _: hls.render_subtitles(video, index, media_base=base, query=query),
        variant=index,
    )
    return await _serve(request, services, video_id, manifest, query)


@router.get(
    "/v/{video_id}/{rendition}.m3u8",
    response_class=Response,
    dependencies=[PlaybackDep],
    responses={**_M3U8, **_MANIFEST_RESPONSES},
)
async def media_playlist(
    request: Request,
    video_id: VideoId,
    rendition: RenditionName,
    services: ServicesDep,
    query: SignedQuery,
) -> Response:
    """The media playlist of one rendition: EVENT while transcoding, VOD once ready."""

    def check(video: Video) -> None:
        _playable(video)
        if rendition not in {r.name for r in video.renditions}:
            raise NotFound(f"video {video.id} has no rendition {rendition!r}")

    base = services.settings.media_base_url
    manifest = Manifest(
        "hls_media",
        hls.CONTENT_TYPE,
        check,
        lambda video, segments: hls.render_media(
            video, rendition, segments, media_base=base, query=query
        ),
        rendition=rendition,
        variant=rendition,
    )
    return await _serve(request, services, video_id, manifest, query)


# --- the fast path ---------------------------------------------------------------------

MASTER = "/v/{video_id}/master.m3u8"
DASH = "/v/{video_id}/manifest.mpd"
SUBTITLES = "/v/{video_id}/subtitles/{index}.m3u8"
MEDIA = "/v/{video_id}/{rendition}.m3u8"
ROUTE_TEMPLATES = (MASTER, DASH, SUBTITLES, MEDIA)


def parse_manifest_path(path: str) -> tuple[str, str, Hashable, str] | None:
    """``(video_id, kind, variant, route template)`` of a manifest path, None for any other
    path (pure). Matches as the routes above do, in their order; ids and names are checked
    by the cache lookup, which only holds ones a route accepted."""
    if not path.startswith("/v/"):
        return None
    video_id, slash, rest = path[3:].partition("/")
    if not slash or not video_id:
        return None
    if rest == "master.m3u8":
        return video_id, "hls_master", None, MASTER
    if rest == "manifest.mpd":
        return video_id, "dash", None, DASH
    if rest.startswith("subtitles/") and rest.endswith(".m3u8"):
        index = rest[10:-5]
        if index.isdigit() and str(int(index)) == index:
            return video_id, "hls_subtitles", int(index), SUBTITLES
        return None
    if rest.endswith(".m3u8") and "/" not in rest and len(rest) > 5:
        return video_id, "hls_media", rest[:-5], MEDIA
    return None


def signed_query_of(query_string: bytes) -> tuple[str, str | None, str | None] | None:
    """``(query, md5, expires)`` as :func:`kubevod.api.deps.signed_query` would make them from
    a raw query string, or None when only the route can tell (anything but one valid ``md5``
    and one valid ``expires``)."""
    if not query_string:
        return "", None, None
    params = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    values = dict(params)
    if len(values) != len(params) or not set(values) <= {"md5", "expires"}:
        return None
    md5, expires = values.get("md5"), values.get("expires")
    if md5 is not None and not SIGNED_MD5.fullmatch(md5):
        return None
    if expires is not None and not SIGNED_EXPIRES.fullmatch(expires):
        return None
    return signed_query_string(md5, expires), md5, expires


class CachedManifests:
    """Pure ASGI middleware: answer a manifest ``GET`` from memory, before routing.

    Only when the answer is already known at the catalog's current version (see
    :func:`_serve`); anything else (a miss, an error, a query the route must
    validate, a HEAD) goes on to the route, which fills the cache. It sits inside
    the Host/Origin guard, CORS and the metrics, so those apply as to any route,
    and just outside gzip, whose work it does once per answer instead of once per
    request (:meth:`Answer.encoded`); it names the route in the scope for the
    metrics' label and the server span.

    Args:
        app: the rest of the stack.
        services: the app's services (settings, cache).
        routes: the manifest routes by path template.
    """

    def __init__(self, app: ASGIApp, *, services: Services, routes: dict[str, Any]) -> None:
        self.app = app
        self.services = services
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            answer = self.lookup(scope)
            if answer is not None:
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def lookup(self, scope: Scope) -> AnswerResponse | None:
        parsed = parse_manifest_path(scope["path"])
        if parsed is None:
            return None
        video_id, kind, variant, template = parsed
        signed = signed_query_of(scope["query_string"])
        if signed is None:
            return None
        query, md5, expires = signed
        cache = self.services.manifests
        version = cache.version()
        if version is None:
            return None
        video = cache.video(video_id, version)
        if video is None:
            return None
        answer = cached(cache, video, kind, variant, query, version)
        if answer is None:
            return None
        authorization = if_none_match = None
        gzipped = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"accept-encoding":
                gzipped = gzipped or b"gzip" in value  # as Starlette's GZipMiddleware reads it
        settings = self.services.settings
        if not playback_allowed(settings, video_id, authorization, md5, expires, time.time()):
            return None  # the route answers the 401
        scope["route"] = self.routes[template]
        return AnswerResponse(answer, if_none_match, gzipped)
