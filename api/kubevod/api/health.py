"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: backends reachable)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from kubevod.api.deps import ServicesDep
from pydantic import BaseModel

from kubevod.errors import KubevodError

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Per-backend state; ``ready`` is true only when every backend answered."""

    ready: bool
    catalog: str
    store: str


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up (never touches a backend, so a slow catalog cannot kill pods)."""
    return Health()


def _check(ping: Callable[[], None]) -> str:
    try:
        ping()
    except KubevodError as exc:
        return f"unavailable: {exc}"
    except Exception as exc:  # a backend bug must still read as "not ready", never a 500
        return f"unavailable: {type(exc).__name__}: {exc}"
    return "ok"


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A backend is unreachable"}},
)
def readyz(services: ServicesDep) -> JSONResponse:
    """Ready when the catalog and the object store both answer (else 503 + Retry-After)."""
    result = Readiness(
        ready=False, catalog=_check(services.catalog.ping), store=_check(services.store.ping)
    )
    ok = result.catalog == "ok" and result.store == "ok"
    result.ready = ok
    headers = None if ok else {"Retry-After": str(services.settings.retry_after_s)}
    return JSONResponse(result.model_dump(), status_code=200 if ok else 503, headers=headers)
