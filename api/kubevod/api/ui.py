"""Serves the web UI: static files under ``api/kubevod/api/ui/``, no build step.

``/`` is the library, ``/watch/{id}`` the player, ``/ui/...`` the assets and
``/sw.js`` the service worker (served from the root so its scope can be the
whole site). Files are revalidated on every use (``no-cache`` + ETag), so a new
release is picked up at once; hls.js under ``/ui/vendor/`` is versioned by
the project's scripts and cached for a day.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from kubevod.api.deps import ServicesDep, VideoId

from kubevod.errors import InvalidInput, NotFound

UI_DIR = Path(__file__).resolve().parent / "ui"

router = APIRouter(include_in_schema=False)

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


async def _ui_root(services: ServicesDep) -> Path:
    return (services.settings.ui_dir or UI_DIR).resolve()


UiRoot = Annotated[Path, Depends(_ui_root)]


def ui_file(
    root: Path, relative: str, *, cache: str = "no-cache", extra: dict[str, str] | None = None
) -> FileResponse:
    """A file of the UI folder; NotFound (404) when absent, InvalidInput (422) when outside it."""
    target = (root / relative).resolve()
    if root not in target.parents:
        raise InvalidInput(f"not a UI path: {relative!r}")
    if not target.is_file():
        raise NotFound(f"no UI file {relative!r}")
    if relative.startswith("vendor/"):
        cache = "public, max-age=86400"
    headers = {"Cache-Control": cache, "X-Content-Type-Options": "nosniff", **(extra or {})}
    return FileResponse(target, media_type=_TYPES.get(target.suffix), headers=headers)


@router.get("/")
def library_page(root: UiRoot) -> FileResponse:
    """The library page."""
    return ui_file(root, "index.html")


@router.get("/watch/{video_id}")
def watch_page(video_id: VideoId, root: UiRoot) -> FileResponse:
    """The player page (it reads the id from its own URL)."""
    return ui_file(root, "watch.html")


@router.get("/sw.js")
def service_worker(root: UiRoot) -> FileResponse:
    """The service worker, allowed to control the whole origin."""
    return ui_file(root, "sw.js", extra={"Service-Worker-Allowed": "/"})


@router.get("/ui/{path:path}")
def ui_asset(path: str, root: UiRoot) -> FileResponse:
    """Any other UI asset (scripts, styles, icons, the web app manifest, hls.js)."""
    return ui_file(root, path)
