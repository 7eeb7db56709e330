"""Rules shared by every Catalog backend, so the contract holds the same way in each.

Pure functions only: how fields are normalised before storage (UTC datetimes at
millisecond precision, which is what MongoDB keeps), how ``update`` validates,
how progress is clamped, how QoE beacons are aggregated, and the times of
chunk wants and their leases.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from kubevod.errors import InvalidInput
from kubevod.models import QoeBeacon, QoeStats, Video, now

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

#: Largest page a listing returns.
MAX_LIMIT = 1000
_SORT_FIELDS = {"created": "created_at", "title": "title", "duration": "duration"}


def utc_ms(value: datetime) -> datetime:
    """``value`` as aware UTC truncated to milliseconds (naive values are taken as UTC)."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def to_ms(value: datetime) -> int:
    """Milliseconds since the epoch of ``value`` (exact, unlike ``timestamp() * 1000``)."""
    return (utc_ms(value) - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """The aware UTC datetime ``ms`` milliseconds after the epoch."""
    return _EPOCH + timedelta(milliseconds=ms)


#: When background wants are asked (``want_chunks(background=True)``): long before any
#: viewer's, so every viewer's want is taken first.
BACKGROUND_ASKED = datetime(2000, 1, 1, tzinfo=UTC)


def is_background(asked_at: datetime) -> bool:
    """Whether a want was asked in the background, not by a viewer (pure)."""
    return asked_at < BACKGROUND_ASKED + timedelta(days=365)


def want_times(chunks: Sequence[int], background: bool = False) -> list[tuple[int, datetime]]:
    """``(chunk, asked_at)`` for one ``want_chunks`` call, the first chunk the newest.

    ``chunks[i]`` is asked ``i`` milliseconds before now (at millisecond precision),
    so the first in the list sorts as the most wanted; a chunk listed twice keeps
    its first place. Background wants count from ``BACKGROUND_ASKED`` instead of now.
    """
    base = BACKGROUND_ASKED + len(chunks) * _MS if background else utc_ms(now())
    seen: dict[int, datetime] = {}
    for i, chunk in enumerate(chunks):
        seen.setdefault(int(chunk), base - i * _MS)
    return list(seen.items())


def lease_end(lease_seconds: float) -> tuple[datetime, datetime]:
    """``(now, now + lease_seconds)`` at millisecond precision, for ``take_chunk``."""
    if not math.isfinite(lease_seconds) or lease_seconds < 0:
        raise InvalidInput("lease_seconds must be a finite number >= 0")
    start = utc_ms(now())
    return start, utc_ms(start + timedelta(seconds=lease_seconds))


def normalize(video: Video) -> Video:
    """The video exactly as a catalog will hand it back."""
    return video.model_copy(
        update={"created_at": utc_ms(video.created_at), "updated_at": utc_ms(video.updated_at)}
    )


def apply_update(video: Video, fields: dict[str, Any]) -> Video:
    """Validate ``fields`` against the model and return the updated, normalised video.

    Args:
        video: the stored video.
        fields: top-level field names and new values; ``id`` cannot change.

    Returns:
        The new video with ``updated_at`` set to now.
    """
    unknown = sorted(set(fields) - set(Video.model_fields))
    if unknown:
        raise InvalidInput(f"unknown video fields: {', '.join(unknown)}")
    if "id" in fields and fields["id"] != video.id:
        raise InvalidInput("a video's id cannot change")
    data = video.model_dump()
    data.update(fields)
    if "updated_at" not in fields:
        data["updated_at"] = now()
    try:
        return normalize(Video.model_validate(data))
    except ValidationError as exc:
        raise InvalidInput(f"invalid video fields: {_one_line(exc)}") from exc


def clamp_progress(progress: float) -> float:
    """Percent clamped to 0..100 (NaN counts as 0)."""
    if math.isnan(progress):
        return 0.0
    return min(100.0, max(0.0, float(progress)))


def check_page(offset: int, limit: int) -> None:
    """Raise InvalidInput for a negative offset or a limit outside 0..MAX_LIMIT."""
    if offset < 0:
        raise InvalidInput("offset must be >= 0")
    if not 0 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 0 and {MAX_LIMIT}")


def sort_field(sort: str) -> tuple[str, bool]:
    """``("created_at" | "title" | "duration", descending)`` for a SortKey."""
    desc = sort.startswith("-")
    name = sort.removeprefix("-")
    if name not in _SORT_FIELDS:
        raise InvalidInput(f"unknown sort {sort!r}")
    return _SORT_FIELDS[name], desc


def aggregate_qoe(beacons: Iterable[QoeBeacon]) -> QoeStats:
    """Aggregate the latest beacon of each session into per-video stats.

    ``rebuffer_ratio`` is stalled time over stalled plus watched time.
    """
    sessions = 0
    startups: list[float] = []
    rebuffer_ms = watch_ms = 0.0
    switches = errors = 0
    for b in beacons:
        sessions += 1
        if b.startup_ms is not None:
            startups.append(b.startup_ms)
        rebuffer_ms += b.rebuffer_ms
        watch_ms += b.watch_ms
        switches += b.switches
        errors += len(b.errors)
    total = rebuffer_ms + watch_ms
    return QoeStats(
        sessions=sessions,
        startup_ms_avg=sum(startups) / len(startups) if startups else None,
        rebuffer_ratio=rebuffer_ms / total if total > 0 else 0.0,
        switches=switches,
        errors=errors,
    )


def _one_line(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )
