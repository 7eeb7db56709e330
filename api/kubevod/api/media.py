"""The media fallback origin: ``GET``/``HEAD /media/{id}/{path}`` from the object store.

Serves object ``videos/<id>/<path>`` (only keys under ``MEDIA_ROOT``, and no
``logs`` folder) with byte ranges (single, suffix,
multiple), validators (ETag, Last-Modified, 304) and immutable caching for
segments. In the cluster nginx serves these paths straight from MinIO and
this route is only the fallback; in local mode it is the origin. Bodies are
streamed with ``store.iter_range`` so a big file never sits in memory, in
``BODY_CHUNK`` blocks: each block is read in the threadpool (a hop of its own),
so a 4 s segment at 5 Mb/s (2.5 MB) costs five hops rather than the store's
default ten (docs/benchmarks-api.md, local mode).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from kubevod.api.deps import PlaybackDep, ServicesDep, VideoId
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

from kubevod import ondemand
from kubevod.errors import InvalidInput, NotFound, Unavailable
from kubevod.manifests.common import media_key
from kubevod.models import IMMUTABLE, TranscodePolicy, Video, VideoState
from kubevod.store.base import ObjectInfo, ObjectStore, check_key

router = APIRouter(tags=["playback"])

_MUTABLE_MEDIA = "public, max-age=300"
#: Bytes read per threadpool hop while streaming a body.
BODY_CHUNK = 512 * 1024
#: A path component the media origin never serves (see ``_object_key``).
LOGS_DIR = "logs"


def _object_key(video_id: str, path: str) -> str:
    """The store key behind ``/media/<video_id>/<path>``; InvalidInput (422) when unsafe."""
    parts = path.split("/")
    if any(len(p.encode()) > 255 for p in parts):
        raise InvalidInput("a path component is longer than 255 bytes")
    if LOGS_DIR in parts:
        # Logs are not media: one signature must never open them (old layouts kept
        # them at videos/<id>/g<n>/logs/; they now live under logs/, outside MEDIA_ROOT).
        raise NotFound(f"no media object {path!r}")
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
        if not key.startswith(prefix + "/"):
            key = check_key(f"{prefix}/{path}")
        try:
            return store.stat(key)
        except NotFound as missing:
            return _encoded_on_demand(services, video, key, missing)


def _encoded_on_demand(
    services: ServicesDep, video: Video, key: str, missing: NotFound
) -> ObjectInfo:
    """A planned segment that is not encoded yet: the request waits for it (bounded; then
    503, and players retry). An on-demand video's chunk goes to the front of the
    scheduler's queue first; an eager video's (spread over pods) is on its way anyway.
    NotFound for anything else."""
    chunk = ondemand.wanted_chunk(video, key)
    if chunk is None:
        raise missing
    if video.policy == TranscodePolicy.ON_DEMAND:
        if services.chunks is None:
            raise missing
        services.chunks.want(video, chunk)
    gone = _Gone(services, video)
    found = ondemand.wait_for(services.store, key, services.settings.on_demand_wait_s, give_up=gone)
    if found is None and gone.reason is not None:
        raise NotFound(gone.reason)
    if found is None:
        raise Unavailable(
            f"segment {key.rsplit('/', 2)[-2]}/{key.rsplit('/', 1)[-1]} of video {video.id} is "
            "being encoded; ask again in a moment"
        )
    return found


class _Gone:
    """Whether a waiting request should stop: its video was deleted, failed (its chunk
    could not be encoded from the source), was requeued or moved on to another
    generation (asked at most twice a second)."""

    def __init__(self, services: ServicesDep, video: Video) -> None:
        self.services, self.video = services, video
        self.reason: str | None = None
        self._next = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + 0.5
        try:
            current = self.services.catalog.get(self.video.id)
        except NotFound:
            self.reason = f"video {self.video.id} was deleted"
            return True
        # Transcoding is its registration still at work (its first chunk, the audio).
        if current.generation != self.video.generation or current.state not in _COMING:
            self.reason = f"video {self.video.id} is {current.state}: {current.message}"
            return True
        return False


#: States in which a planned segment is still on its way.
_COMING = frozenset({VideoState.TRANSCODING, VideoState.READY})


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
        yield from store.iter_range(info.key, r.start, r.end, BODY_CHUNK)
    yield multipart_trailer(boundary)


_MEDIA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"video/mp4": {}}, "description": "The whole object"},
    206: {"content": {"video/mp4": {}}, "description": "The requested byte range(s)"},
    304: {"description": "Not modified"},
    **responses(401, 404, 416, 422, 503),  # 503: an on-demand segment still being encoded
}


@router.get(
    "/media/{video_id}/{path:path}",
    response_class=Response,
    operation_id="get_media_object",
    dependencies=[PlaybackDep],
    responses=_MEDIA_RESPONSES,
)
@router.head(
    "/media/{video_id}/{path:path}",
    response_class=Response,
    operation_id="head_media_object",
    dependencies=[PlaybackDep],
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
            store.iter_range(info.key, chunk=BODY_CHUNK), headers=headers, media_type=content_type
        )
    if len(ranges) == 1:
        (r,) = ranges
        headers["Content-Range"] = r.content_range(info.size)
        headers["Content-Length"] = str(r.length)
        if head:
            return Response(status_code=206, headers=headers, media_type=content_type)
        return StreamingResponse(
            store.iter_range(info.key, r.start, r.end, BODY_CHUNK),
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
