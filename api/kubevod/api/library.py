"""The library JSON API: list, search, show, edit, delete and (local mode) add videos."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from kubevod.api.deps import ReaderDep, ServicesDep, TokenDep, VideoDep
from kubevod.api.errors import responses
from kubevod.api.views import VideoView, VideoViewPage, view
from starlette.concurrency import run_in_threadpool

from kubevod.catalog.base import SortKey
from kubevod.errors import Conflict
from kubevod.jobs import IngestRequest
from kubevod.lifecycle import Lifecycle
from kubevod.models import QoeStats, VideoPatch, VideoState

router = APIRouter(prefix="/api/videos", tags=["library"])


@router.get(
    "", response_model=VideoViewPage, dependencies=[ReaderDep], responses=responses(401, 503)
)
def list_videos(
    services: ServicesDep,
    q: Annotated[str | None, Query(max_length=200, description="Title or tag contains")] = None,
    tag: Annotated[str | None, Query(max_length=100, description="Exact tag")] = None,
    state: VideoState | None = None,
    sort: SortKey = "-created",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> VideoViewPage:
    """One page of the library, newest first unless ``sort`` says otherwise."""
    page = services.catalog.list(
        query=q or None, tag=tag or None, state=state, sort=sort, offset=offset, limit=limit
    )
    return VideoViewPage(
        items=[view(v, services.settings) for v in page.items],
        total=page.total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get(
    "/{video_id}",
    response_model=VideoView,
    dependencies=[ReaderDep],
    responses=responses(401, 404, 503),
)
def get_video(video: VideoDep, services: ServicesDep) -> VideoView:
    """Everything known about one video, with its playback URLs."""
    return view(video, services.settings)


@router.get(
    "/{video_id}/qoe",
    response_model=QoeStats,
    dependencies=[ReaderDep],
    responses=responses(401, 404, 503),
)
def get_video_qoe(video: VideoDep, services: ServicesDep) -> QoeStats:
    """Aggregated player beacons of one video."""
    return services.catalog.qoe_stats(video.id)


@router.patch(
    "/{video_id}",
    response_model=VideoView,
    dependencies=[TokenDep],
    responses=responses(401, 403, 404, 503),
)
def patch_video(video: VideoDep, patch: VideoPatch, services: ServicesDep) -> VideoView:
    """Change the title, description or tags of a video."""
    fields = patch.model_dump(exclude_unset=True, exclude_none=True)
    lifecycle = Lifecycle(services.catalog, services.store)
    updated = lifecycle.update_metadata(video.id, **fields) if fields else video
    return view(updated, services.settings)


@router.delete(
    "/{video_id}",
    status_code=204,
    response_class=Response,
    dependencies=[TokenDep],
    responses=responses(401, 403, 404, 409, 503),
)
def delete_video(video: VideoDep, services: ServicesDep) -> Response:
    """Stop any transcode, delete every stored object of the video, then its catalog entry."""
    if services.settings.managed_by_operator:
        raise Conflict(
            f"video {video.id} is declared by a VideoAsset: delete it with "
            "`kubectl delete videoasset <name>`, and the operator removes its media"
        )
    if services.ingestor is not None:
        services.ingestor.cancel(video.id)
    # Objects first: if the store is down the entry stays, and the DELETE can be retried.
    Lifecycle(services.catalog, services.store).purge(video.id)
    return Response(status_code=204)


def ingest_router() -> APIRouter:
    """``POST /api/videos``, mounted only when the app has an ingestor (local mode)."""
    add = APIRouter(prefix="/api/videos", tags=["library"])

    @add.post(
        "",
        status_code=202,
        response_model=VideoView,
        dependencies=[TokenDep],
        responses=responses(401, 403, 409, 422, 503),
    )
    async def add_video(request: IngestRequest, services: ServicesDep) -> VideoView:
        """Add a video from a path or URL; it is queued for transcoding (202)."""
        assert services.ingestor is not None
        video = await run_in_threadpool(services.ingestor.ingest, request)
        return view(video, services.settings)

    return add
