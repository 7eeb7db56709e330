"""Playback manifests: HLS playlists and the DASH MPD, rendered from the catalog per request.

Rendering is done by the pure functions in :mod:`kubevod.manifests`. A ready
video's manifests are cacheable for ``manifest_max_age_s``; a transcoding
video's are ``no-cache`` (EVENT playlists grow). Every manifest carries an ETag
and answers If-None-Match with 304.

The rendered bytes of ready videos are also kept in a small in-process LRU,
keyed by the video's id, generation and ``updated_at``: a ready video's
segments never change without the entry changing, so a hit skips the
segment query and the render and costs one catalog read.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Hashable
from typing import Any

from fastapi import APIRouter, Path, Request, Response
from kubevod.api.deps import PlaybackDep, RenditionName, ServicesDep, SignedQuery, VideoDep
from kubevod.api.errors import responses
from kubevod.api.http_semantics import etag_matches, http_date, quote_etag
from starlette.concurrency import run_in_threadpool

from kubevod import telemetry
from kubevod.errors import Conflict, NotFound
from kubevod.manifests import dash, hls
from kubevod.models import Segment, Video, VideoState

router = APIRouter(tags=["playback"])

_NO_CACHE = "no-cache"


def _playable(video: Video) -> None:
    if video.state == VideoState.FAILED:
        raise Conflict(f"video {video.id} failed to transcode: {video.message or 'no details'}")


async def _manifest(
    request: Request,
    services: ServicesDep,
    video: Video,
    kind: str,
    media_type: str,
    render: Callable[[list[Segment]], str],
    load: Callable[[], list[Segment]] | None = None,
    variant: Hashable = None,
    query: str = "",
) -> Response:
    """Serve one manifest: from the cache, or load segments and render in the threadpool.

    Args:
        request: for If-None-Match.
        services: backends, settings, metrics, cache.
        video: the loaded catalog entry.
        kind: metric label (``hls_master``, ``hls_media``, ``hls_subtitles``, ``dash``).
        media_type: the Content-Type.
        render: pure renderer from the loaded segments to text.
        load: reads the segments it needs from the catalog (None: none needed).
        variant: what else tells this manifest apart (rendition, track index).
        query: the signed-URL query the renderer appends to URIs (part of the cache key).
    """
    ready = video.state == VideoState.READY
    base = services.settings.media_base_url
    key = (kind, variant, video.id, video.generation, video.updated_at, base, query)
    cached = services.manifests.get(key) if ready else None
    if cached is None:

        def work() -> tuple[bytes, str]:
            segments = load() if load is not None else []
            attributes = {"kubevod.video.id": video.id, "kubevod.manifest.kind": kind}
            with telemetry.span("manifest.render", attributes=attributes, tracer_name=__name__):
                started = time.perf_counter()
                try:
                    body = render(segments).encode()
                except ValueError as exc:
                    raise Conflict(f"nothing to play yet: {exc}") from exc
                elapsed = time.perf_counter() - started
            services.metrics.manifest_render.labels(kind).observe(elapsed)
            return body, quote_etag(hashlib.md5(body, usedforsecurity=False).hexdigest())

        cached = await run_in_threadpool(work)
        if ready:
            services.manifests.put(key, cached)
    body, etag = cached
    cache_control = (
        f"public, max-age={services.settings.manifest_max_age_s}" if ready else _NO_CACHE
    )
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if ready:  # a growing EVENT playlist has no meaningful date; its ETag is enough
        headers["Last-Modified"] = http_date(video.updated_at)
    inm = request.headers.get("if-none-match")
    if inm is not None and etag_matches(inm, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


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
    request: Request, video: VideoDep, services: ServicesDep, query: SignedQuery
) -> Response:
    """The HLS master playlist: every rung, the audio group, the subtitle tracks."""
    _playable(video)
    return await _manifest(
        request,
        services,
        video,
        "hls_master",
        hls.CONTENT_TYPE,
        lambda _: hls.render_master(video, query=query),
        query=query,
    )


@router.get(
    "/v/{video_id}/manifest.mpd",
    response_class=Response,
    dependencies=[PlaybackDep],
    responses={**_MPD, **_MANIFEST_RESPONSES},
)
async def dash_manifest(
    request: Request, video: VideoDep, services: ServicesDep, query: SignedQuery
) -> Response:
    """The DASH MPD over the same CMAF segments (static; see kubevod.manifests.dash)."""
    _playable(video)
    base = services.settings.media_base_url
    return await _manifest(
        request,
        services,
        video,
        "dash",
        dash.CONTENT_TYPE,
        lambda segments: dash.render_mpd(video, segments, media_base=base, query=query),
        load=lambda: services.catalog.segments(video.id),
        query=query,
    )


@router.get(
    "/v/{video_id}/subtitles/{index}.m3u8",
    response_class=Response,
    dependencies=[PlaybackDep],
    responses={**_M3U8, **_MANIFEST_RESPONSES},
)
async def subtitle_playlist(
    request: Request,
    video: VideoDep,
    services: ServicesDep,
    query: SignedQuery,
    index: int = Path(ge=0, le=1000, description="Position of the track in the video's subtitles"),
) -> Response:
    """The HLS media playlist of one WebVTT track."""
    if index >= len(video.subtitles):
        raise NotFound(f"video {video.id} has no subtitle track {index}")
    base = services.settings.media_base_url
    return await _manifest(
        request,
        services,
        video,
        "hls_subtitles",
        hls.CONTENT_TYPE,
        lambda _: hls.render_subtitles(video, index, media_base=base, query=query),
        variant=index,
        query=query,
    )


@router.get(
    "/v/{video_id}/{rendition}.m3u8",
    response_class=Response,
    dependencies=[PlaybackDep],
    responses={**_M3U8, **_MANIFEST_RESPONSES},
)
async def media_playlist(
    request: Request,
    video: VideoDep,
    rendition: RenditionName,
    services: ServicesDep,
    query: SignedQuery,
) -> Response:
    """The media playlist of one rendition: EVENT while transcoding, VOD once ready."""
    _playable(video)
    if rendition not in {r.name for r in video.renditions}:
        raise NotFound(f"video {video.id} has no rendition {rendition!r}")
    base = services.settings.media_base_url
    return await _manifest(
        request,
        services,
        video,
        "hls_media",
        hls.CONTENT_TYPE,
        lambda segments: hls.render_media(video, rendition, segments, media_base=base, query=query),
        load=lambda: services.catalog.segments(video.id, rendition),
        variant=rendition,
        query=query,
    )
