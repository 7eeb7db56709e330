"""QoE intake: player beacons, size-limited and validated, into the catalog and metrics.

Players send beacons with ``navigator.sendBeacon`` (often ``text/plain``), so
the body is read as raw JSON whatever its content type, with a hard size
limit checked before anything is parsed.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from kubevod.api.deps import ServicesDep
from kubevod.api.errors import error_response, responses
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from kubevod.models import QoeBeacon

router = APIRouter(tags=["qoe"])


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
    "/api/qoe",
    status_code=204,
    response_class=Response,
    responses={
        **responses(404, 413, 503),
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
    limit = services.settings.qoe_max_bytes
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
    await run_in_threadpool(services.catalog.get, beacon.video_id)  # NotFound -> 404
    previous = await run_in_threadpool(services.catalog.record_qoe, beacon)
    services.metrics.observe_beacon(beacon, previous)
    return Response(status_code=204)
