"""The one place where domain errors become HTTP responses.

Every :class:`kubevod.errors.KubevodError` a route lets escape is turned into
a JSON body ``{"detail": "<message a person understands>", "error": "<kind>"}``:
Unauthorized 401 (with ``WWW-Authenticate``), Forbidden 403, NotFound 404,
InvalidInput 422, Conflict 409, Unavailable 503 with ``Retry-After``. Errors
whose message is for the owner only (``KubevodError.public_detail``: source
errors, outages) show that fixed line instead to anyone else. Request validation errors
keep FastAPI's own 422 shape (the one the OpenAPI schema documents) and add a
``message`` line a person can read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from kubevod.errors import Conflict, InvalidInput, KubevodError, NotFound, Unavailable

log = logging.getLogger(__name__)


class Unauthorized(KubevodError):
    """The bearer token is missing or wrong (401)."""


class Forbidden(KubevodError):
    """The caller is known but may not do this (403)."""


#: Domain error -> (HTTP status, short machine-readable kind). Subclasses match their base.
STATUS: list[tuple[type[KubevodError], int, str]] = [
    (Unauthorized, 401, "unauthorized"),
    (Forbidden, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (InvalidInput, 422, "invalid_input"),
    (Conflict, 409, "conflict"),
    (Unavailable, 503, "unavailable"),
]


class ErrorBody(BaseModel):
    """What every error response carries."""

    detail: str
    error: str


def error_response(
    status: int, kind: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON error response in the API's one error shape."""
    return JSONResponse(
        ErrorBody(detail=detail, error=kind).model_dump(), status_code=status, headers=headers
    )


def status_of(exc: KubevodError) -> tuple[int, str]:
    """The HTTP status and kind of a domain error (500 ``internal`` for an unknown kind)."""
    for cls, status, kind in STATUS:
        if isinstance(exc, cls):
            return status, kind
    return 500, "internal"


#: What a person should read when a path parameter does not match its pattern.
_PATTERN_HINTS = {
    "video_id": "not a video id (lowercase letters, digits and dashes, at most 63)",
    "rendition": "not a rendition name (such as 720p or audio)",
}


def validation_message(errors: Sequence[Any]) -> str:
    """One readable line for FastAPI's list of validation errors."""
    parts = []
    for error in errors:
        loc = [str(x) for x in error.get("loc", ())]
        field = loc[-1] if loc else "request"
        if error.get("type") == "string_pattern_mismatch" and field in _PATTERN_HINTS:
            parts.append(f"{field}: {_PATTERN_HINTS[field]}")
        else:
            where = ".".join(loc[1:]) if len(loc) > 1 else field
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI, *, retry_after_s: int) -> None:
    """Register the domain-error handler and a readable request-validation handler."""

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = jsonable_encoder(exc.errors())
        # FastAPI's documented shape, plus one line a person can read
        return JSONResponse({"detail": errors, "message": validation_message(errors)}, 422)

    app.add_exception_handler(RequestValidationError, invalid)

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, KubevodError)
        status, kind = status_of(exc)
        headers = None
        if status == 503:
            headers = {"Retry-After": str(retry_after_s)}
        elif status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc)
        detail = str(exc) or kind.replace("_", " ")
        if exc.public_detail is not None and not _caller_is_owner(request):
            # The precise reason names paths, files and ports: the owner's, not a stranger's.
            log.info("%s %s (shown to a non-owner as %r): %s", request.method,
                     request.url.path, exc.public_detail, exc)  # fmt: skip
            detail = exc.public_detail
        return error_response(status, kind, detail, headers)

    app.add_exception_handler(KubevodError, handle)


def _caller_is_owner(request: Request) -> bool:
    from kubevod.api.deps import is_owner  # deps imports this module's Unauthorized

    return is_owner(request, request.app.state.services.settings)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error statuses a route can return.

    422 is documented as either shape: FastAPI's request validation errors or a
    domain InvalidInput (``ErrorBody``) raised while handling a valid request.
    """
    text = {
        401: "Missing or wrong bearer token",
        403: "Not allowed for this caller",
        404: "No such video or object",
        409: "Not possible in the video's current state",
        413: "Body too large",
        416: "Range not satisfiable",
        422: "Invalid request",
        503: "A backend is unreachable; retry after Retry-After seconds",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for s in statuses:
        out[s] = {"model": ErrorBody, "description": text.get(s, "Error")}
        if s == 422:
            either = {
                "anyOf": [
                    {"$ref": "#/components/schemas/HTTPValidationError"},
                    {"$ref": "#/components/schemas/ErrorBody"},
                ]
            }
            out[s] = {"description": text[s], "content": {"application/json": {"schema": either}}}
    return out
