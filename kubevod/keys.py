"""The object-store key layout: the one place that spells it (worker, operator, API, local mode).

::

    videos/<id>/g<generation>-<run>/<rendition>/init.mp4, <seq>.m4s   media (public, immutable)
    videos/<id>/g<generation>-<run>/poster.jpg, trickplay/, subs/
    logs/<id>/g<generation>-<run>/ffmpeg.log                            a failed run's log (private)

``run`` is new for every attempt (a pod retry, a GPU-to-software fallback, a
local requeue), so a retry never rewrites a key that nginx or a browser already
holds as immutable: the new attempt writes new keys, and the catalog's
``prefix`` moves to them when it starts. Logs live outside ``videos/``, the
only prefix the cache, the API's ``/media`` and signed URLs serve.
"""

from __future__ import annotations

import re
import secrets

MEDIA_ROOT = "videos/"
LOGS_ROOT = "logs/"
_RUN_RE = re.compile(r"^g(\d+)(?:-[0-9a-f]+)?$")


def new_run() -> str:
    """A fresh attempt token (8 hex digits)."""
    return secrets.token_hex(4)


def video_root(video_id: str) -> str:
    """Prefix of every generation and attempt of a video's media (what a delete removes)."""
    return f"{MEDIA_ROOT}{video_id}/"


def logs_root(video_id: str) -> str:
    """Prefix of every log kept for a video."""
    return f"{LOGS_ROOT}{video_id}/"


def media_prefix(video_id: str, generation: int, run: str | None = None) -> str:
    """Prefix (no trailing slash) of one attempt's media; without ``run``, the generation's
    placeholder that the operator records before any attempt starts."""
    name = f"g{generation}" if run is None else f"g{generation}-{run}"
    return f"{video_root(video_id)}{name}"


def segment_key(prefix: str, rendition: str, seq: int) -> str:
    """Where segment ``seq`` of ``rendition`` lies under an attempt's media prefix."""
    return f"{prefix.rstrip('/')}/{rendition}/{seq}.m4s"


def init_key(prefix: str, rendition: str) -> str:
    """Where the init segment of ``rendition`` lies under an attempt's media prefix."""
    return f"{prefix.rstrip('/')}/{rendition}/init.mp4"


def attempt_run(prefix: str) -> str | None:
    """The attempt token of a media prefix (``videos/<id>/g3-1a2b3c4d``), None for a
    generation's placeholder (``videos/<id>/g3``)."""
    name = prefix.rstrip("/").rsplit("/", 1)[-1]
    if _RUN_RE.match(name) and "-" in name:
        return name.split("-", 1)[1]
    return None


def log_key(video_id: str, generation: int, run: str) -> str:
    """Where a failed attempt's ffmpeg log tail is kept."""
    return f"{logs_root(video_id)}g{generation}-{run}/ffmpeg.log"


def attempt_generation(name: str) -> int | None:
    """The generation of an attempt folder name (``g3`` or ``g3-1a2b3c4d``), None otherwise."""
    match = _RUN_RE.match(name)
    return int(match.group(1)) if match else None
