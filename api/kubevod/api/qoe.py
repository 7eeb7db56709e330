"""QoE intake: player beacons, size-limited and validated, into the catalog and metrics.

Players send beacons with ``navigator.sendBeacon`` (often ``text/plain``), so
the body is read as raw JSON whatever its content type, with a hard size
limit checked before anything is parsed. A token bucket per client address
comes first, then a session cap per video and clamped values
(:mod:`kubevod.api.qoe_limits`).
"""

from __future__ import annotations

import math
import time

from fastapi import APIRouter, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from kubevod.api.deps import ServicesDep
from kubevod.api.errors import error_response, responses
from kubevod.api.qoe_limits import Clamps, clamp_beacon
from kubevod.api.settings import ApiSettings
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from kubevod.models import QoeBeacon

router = APIRouter(tags=["qoe"])

#: Where beacons go; exempt from the cross-origin write check (``kubevod.api.guard``).
PATH = "/api/qoe"


class BodyTooLarge(Exception):
    """The request body passed the configured limit."""


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, or BodyTooLarge as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


@router.post(
    PATH,
    status_code=204,
    response_class=Response,
    responses={
        **responses(404, 413, 503),
        429: {"description": "Too many beacons from this client; retry after Retry-After"},
        422: {
            "description": "The beacon is not valid JSON or breaks a field's rule",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
            },
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": QoeBeacon.model_json_schema()}},
        }
    },
)
async def post_qoe(request: Request, services: ServicesDep) -> Response:
    """Record one player beacon (startup, stalls, switches, errors) for a video."""
    settings = services.settings
    client = request.client.host if request.client else "unknown"
    wait = services.qoe_rate.take(client, time.monotonic())
    if wait > 0:
        services.metrics.qoe_dropped.labels("rate_limited").inc()
        return error_response(
            429,
            "rate_limited",
            "too many QoE beacons from this address; slow down",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )
    limit = settings.qoe_max_bytes
    try:
        body = await read_limited(request, limit)
    except BodyTooLarge:
        return error_response(413, "too_large", f"a QoE beacon may be at most {limit} bytes")
    try:
        beacon = QoeBeacon.model_validate_json(body)
    except ValidationError as exc:
        # FastAPI's own 422 shape, so clients parse one format for every validation error
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        return JSONResponse(jsonable_encoder({"detail": errors}), status_code=422)
    video = await run_in_threadpool(services.catalog.get, beacon.video_id)  # NotFound -> 404
    beacon, clamped = clamp_beacon(beacon, _clamps(settings), {r.name for r in video.renditions})
    for name in clamped:
        services.metrics.qoe_clamped.labels(name).inc()
    cap, now = services.qoe_sessions, time.monotonic()
    if cap.needs_count(video.id, now):
        stats = await run_in_threadpool(services.catalog.qoe_stats, video.id)
        cap.set_count(video.id, stats.sessions, now)
    if not cap.admits(video.id, beacon.session):
        services.metrics.qoe_dropped.labels("session_cap").inc()
        return Response(status_code=204)  # accepted, not counted (see kubevod.api.qoe_limits)
    previous = await run_in_threadpool(services.catalog.record_qoe, beacon)
    cap.recorded(video.id, beacon.session, new=previous is None)
    services.metrics.observe_beacon(beacon, previous)
    return Response(status_code=204)


def _clamps(settings: ApiSettings) -> Clamps:
    return Clamps(
        max_startup_ms=settings.qoe_max_startup_ms,
        max_session_ms=settings.qoe_max_session_s * 1000,
        max_events=settings.qoe_max_events,
    )
