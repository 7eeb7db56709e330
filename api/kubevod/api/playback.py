"""Playback: HLS and DASH manifests rendered per request, and the media fallback route.

Manifests come from the catalog through the pure renderers in
:mod:`kubevod.manifests`. A ready video's manifests are cacheable for
``manifest_max_age_s``; a transcoding video's are ``no-cache`` (EVENT playlists
grow). Every manifest carries an ETag and answers If-None-Match with 304.

``/media/{id}/{path}`` serves object ``videos/<id>/<path>`` from the store with
byte ranges and validators. In the cluster nginx serves these paths from
MinIO and this route is only the fallback; in local mode it is the origin.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import StreamingResponse
from kubevod.api.deps import RenditionName, ServicesDep, VideoDep, VideoId
from kubevod.api.errors import error_response, responses
from kubevod.api.http_semantics import (
    ByteRange,
    RangeNotSatisfiable,
    content_type_for,
    http_date,
    if_range_allows,
    multipart_headers,
    multipart_length,
    multipart_trailer,
    not_modified,
    parse_range,
    quote_etag,
)

from kubevod.errors import Conflict, InvalidInput, NotFound
from kubevod.manifests import dash, hls
from kubevod.manifests.common import media_key
from kubevod.models import IMMUTABLE, Video, VideoState
from kubevod.store.base import ObjectInfo, ObjectStore, check_key

router = APIRouter(tags=["playback"])

_NO_CACHE = "no-cache"
_MUTABLE_MEDIA = "public, max-age=300"


def _playable(video: Video) -> None:
    if video.state == VideoState.FAILED:
        raise Conflict(f"video {video.id} failed to transcode: {video.message or 'no details'}")


def _manifest(
    request: Request,
    services: ServicesDep,
    video: Video,
    kind: str,
    media_type: str,
    render: Callable[[], str],
) -> Response:
    """Render, time, validate and cache-label one manifest."""
    started = time.perf_counter()
    try:
        text = render()
    except ValueError as exc:
        raise Conflict(f"nothing to play yet: {exc}") from exc
    services.metrics.manifest_render.labels(kind).observe(time.perf_counter() - started)
    body = text.encode()
    etag = quote_etag(hashlib.md5(body, usedforsecurity=False).hexdigest())
    ready = video.state == VideoState.READY
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={services.settings.manifest_max_age_s}"
        if ready
        else _NO_CACHE,
    }
    inm = request.headers.get("if-none-match")
    if inm is not None and not_modified({"if-none-match": inm}, etag, video.updated_at):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


_MANIFEST_RESPONSES = responses(404, 409, 503)
_M3U8: dict[int | str, dict[str, Any]] = {
    200: {"content": {hls.CONTENT_TYPE: {}}, "description": "HLS playlist"}
}


@router.get(
    "/v/{video_id}/master.m3u8", response_class=Response, responses={**_M3U8, **_MANIFEST_RESPONSES}
)
def master_playlist(request: Request, video: VideoDep, services: ServicesDep) -> Response:
    """The HLS master playlist: every rung, the audio group, the subtitle tracks."""
    _playable(video)
    return _manifest(
        request, services, video, "hls_master", hls.CONTENT_TYPE, lambda: hls.render_master(video)
    )


@router.get(
    "/v/{video_id}/manifest.mpd",
    response_class=Response,
    responses={
        200: {"content": {dash.CONTENT_TYPE: {}}, "description": "DASH MPD"},
        **_MANIFEST_RESPONSES,
    },
)
def dash_manifest(request: Request, video: VideoDep, services: ServicesDep) -> Response:
    """The DASH MPD over the same CMAF segments (static; see kubevod.manifests.dash)."""
    _playable(video)
    segments = services.catalog.segments(video.id)
    base = services.settings.media_base_url
    return _manifest(
        request,
        services,
        video,
        "dash",
        dash.CONTENT_TYPE,
        lambda: dash.render_mpd(video, segments, media_base=base),
    )


@router.get(
    "/v/{video_id}/subtitles/{index}.m3u8",
    response_class=Response,
    responses={**_M3U8, **_MANIFEST_RESPONSES},
)
def subtitle_playlist(
    request: Request,
    video: VideoDep,
    services: ServicesDep,
    index: int = Path(ge=0, le=1000, description="Position of the track in the video's subtitles"),
) -> Response:
    """The HLS media playlist of one WebVTT track."""
    if index >= len(video.subtitles):
        raise NotFound(f"video {video.id} has no subtitle track {index}")
    base = services.settings.media_base_url
    return _manifest(
        request,
        services,
        video,
        "hls_subtitles",
        hls.CONTENT_TYPE,
        lambda: hls.render_subtitles(video, index, media_base=base),
    )


@router.get(
    "/v/{video_id}/{rendition}.m3u8",
    response_class=Response,
    responses={**_M3U8, **_MANIFEST_RESPONSES},
)
def media_playlist(
    request: Request, video: VideoDep, rendition: RenditionName, services: ServicesDep
) -> Response:
    """The media playlist of one rendition: EVENT while transcoding, VOD once ready."""
    _playable(video)
    if rendition not in {r.name for r in video.renditions}:
        raise NotFound(f"video {video.id} has no rendition {rendition!r}")
    segments = services.catalog.segments(video.id, rendition)
    base = services.settings.media_base_url
    return _manifest(
        request,
        services,
        video,
        "hls_media",
        hls.CONTENT_TYPE,
        lambda: hls.render_media(video, rendition, segments, media_base=base),
    )


# --- media objects ---------------------------------------------------------------------


def _object_key(video_id: str, path: str) -> str:
    """The store key behind ``/media/<video_id>/<path>``; InvalidInput (422) when unsafe."""
    parts = path.split("/")
    if any(len(p.encode()) > 255 for p in parts):
        raise InvalidInput("a path component is longer than 255 bytes")
    return check_key(media_key(video_id, path))


def _stat(store: ObjectStore, services: ServicesDep, video_id: str, path: str) -> ObjectInfo:
    """Metadata of the object at ``path``.

    A path without a generation (``720p/0.m4s`` rather than ``g1/720p/0.m4s``)
    is resolved against the video's current media prefix, so links written
    relative to ``Video.media_prefix()`` work as well.
    """
    key = _object_key(video_id, path)
    try:
        return store.stat(key)
    except NotFound:
        video = services.catalog.get(video_id)
        prefix = video.media_prefix()
        if key.startswith(prefix + "/"):
            raise
        return store.stat(check_key(f"{prefix}/{path}"))


def _cache_control(info: ObjectInfo) -> str:
    if info.cache_control:
        return info.cache_control
    return IMMUTABLE if info.key.endswith((".m4s", ".mp4")) else _MUTABLE_MEDIA


def _multipart(
    store: ObjectStore,
    info: ObjectInfo,
    content_type: str,
    ranges: list[ByteRange],
    boundary: str,
) -> Iterator[bytes]:
    for r in ranges:
        yield multipart_headers(boundary, content_type, info.size, r)
        yield from store.iter_range(info.key, r.start, r.end)
    yield multipart_trailer(boundary)


_MEDIA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"video/mp4": {}}, "description": "The whole object"},
    206: {"content": {"video/mp4": {}}, "description": "The requested byte range(s)"},
    304: {"description": "Not modified"},
    **responses(404, 416, 422, 503),
}


@router.get(
    "/media/{video_id}/{path:path}",
    response_class=Response,
    operation_id="get_media_object",
    responses=_MEDIA_RESPONSES,
)
@router.head(
    "/media/{video_id}/{path:path}",
    response_class=Response,
    operation_id="head_media_object",
    responses=_MEDIA_RESPONSES,
)
def media_object(request: Request, video_id: VideoId, path: str, services: ServicesDep) -> Response:
    """A stored media object, with byte ranges, validators and immutable caching."""
    store = services.store
    info = _stat(store, services, video_id, path)
    content_type = content_type_for(info.key, info.content_type)
    headers = {
        "ETag": quote_etag(info.etag),
        "Last-Modified": http_date(info.last_modified),
        "Cache-Control": _cache_control(info),
        "Accept-Ranges": "bytes",
    }
    lowered = {k.lower(): v for k, v in request.headers.items()}
    if not_modified(lowered, info.etag, info.last_modified):
        return Response(status_code=304, headers=headers)
    head = request.method == "HEAD"
    ranges = None
    if if_range_allows(lowered.get("if-range"), info.etag, info.last_modified):
        try:
            ranges = parse_range(lowered.get("range"), info.size)
        except RangeNotSatisfiable:
            return error_response(
                416,
                "range_not_satisfiable",
                f"the object is {info.size} bytes long; no requested range overlaps it",
                {**headers, "Content-Range": f"bytes */{info.size}"},
            )
    if ranges is None:
        headers["Content-Length"] = str(info.size)
        if head:
            return Response(status_code=200, headers=headers, media_type=content_type)
        return StreamingResponse(
            store.iter_range(info.key), headers=headers, media_type=content_type
        )
    if len(ranges) == 1:
        (r,) = ranges
        headers["Content-Range"] = r.content_range(info.size)
        headers["Content-Length"] = str(r.length)
        if head:
            return Response(status_code=206, headers=headers, media_type=content_type)
        return StreamingResponse(
            store.iter_range(info.key, r.start, r.end),
            status_code=206,
            headers=headers,
            media_type=content_type,
        )
    boundary = secrets.token_hex(16)
    multipart_type = f"multipart/byteranges; boundary={boundary}"
    headers["Content-Length"] = str(multipart_length(boundary, content_type, info.size, ranges))
    if head:
        return Response(status_code=206, headers=headers, media_type=multipart_type)
    return StreamingResponse(
        _multipart(store, info, content_type, ranges, boundary),
        status_code=206,
        headers=headers,
        media_type=multipart_type,
    )
