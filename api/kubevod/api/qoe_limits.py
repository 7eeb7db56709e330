"""Bounds on QoE intake: a token bucket per client, a session cap per video, clamped values.

Beacons are unauthenticated (any viewer's player sends them), so what one
client can add is bounded three ways (issue 13, item 9):

- :class:`RateLimiter`: a token bucket per client address; a client past its
  burst gets 429 with ``Retry-After``. Honest players send one beacon every
  30 s and never meet it.
- :class:`SessionCap`: at most ``qoe_max_sessions_per_video`` sessions are
  recorded per video. Beacons of further new sessions are answered 204 and
  dropped (counted in ``kubevod_qoe_beacons_dropped_total``): players send
  them with ``sendBeacon`` and never read the answer, so a 429 would only
  tell a flooder where the cap is.
- :func:`clamp_beacon`: a session's totals are clamped to sane ranges before
  they reach the catalog and the metrics.

Everything here is in-process and takes its clock as an argument; nothing
does I/O.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field

from kubevod.models import QoeBeacon

#: Longest error text kept from a beacon, characters.
MAX_ERROR_CHARS = 200


class RateLimiter:
    """A token bucket per key (the client address), remembering at most ``max_keys`` keys."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, now: float) -> float:
        """Spend one token of ``key``'s bucket.

        Args:
            key: the client address.
            now: a monotonic clock, seconds.

        Returns:
            0 when the request may go on, else the seconds until a token is back.
        """
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) / self.rate
            # The least recently seen client forgets its bucket: it starts full again,
            # which is as much as a new client gets anyway.
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait


@dataclass
class _VideoSessions:
    count: int = 0
    loaded_at: float = -math.inf
    #: Sessions this process recorded: they go on being recorded once the cap is reached.
    seen: set[str] = field(default_factory=set)


class SessionCap:
    """At most ``cap`` recorded sessions per video, counted from the catalog.

    The count is read from the catalog (shared by every replica) at most every
    ``refresh_s`` seconds per video and kept up to date in between with this
    process's own new sessions, so several replicas overshoot the cap by at most
    what the others added within ``refresh_s``. Once a video is at the cap, only
    sessions this process has recorded go on; one recorded before a restart or
    by another replica is then dropped too. ``max_videos`` bounds the memory.
    """

    def __init__(self, cap: int, *, refresh_s: float = 60.0, max_videos: int = 256) -> None:
        self.cap = cap
        self.refresh_s = refresh_s
        self.max_videos = max_videos
        self._videos: OrderedDict[str, _VideoSessions] = OrderedDict()
        self._lock = threading.Lock()

    def _entry(self, video_id: str) -> _VideoSessions:
        entry = self._videos.pop(video_id, None) or _VideoSessions()
        self._videos[video_id] = entry
        while len(self._videos) > self.max_videos:
            self._videos.popitem(last=False)
        return entry

    def needs_count(self, video_id: str, now: float) -> bool:
        """True when the catalog's session count of ``video_id`` should be read again."""
        with self._lock:
            return now - self._entry(video_id).loaded_at >= self.refresh_s

    def set_count(self, video_id: str, count: int, now: float) -> None:
        """Record the catalog's session count of ``video_id`` read at ``now``."""
        with self._lock:
            entry = self._entry(video_id)
            entry.count, entry.loaded_at = count, now

    def admits(self, video_id: str, session: str) -> bool:
        """True when a beacon of ``session`` may be recorded."""
        with self._lock:
            entry = self._entry(video_id)
            return session in entry.seen or entry.count < self.cap

    def recorded(self, video_id: str, session: str, *, new: bool) -> None:
        """Note that a beacon of ``session`` was recorded (``new``: its session's first)."""
        with self._lock:
            entry = self._entry(video_id)
            entry.seen.add(session)
            if new:
                entry.count += 1


@dataclass(frozen=True)
class Clamps:
    """The sane ranges of a session's totals (``ApiSettings.qoe_max_*``)."""

    max_startup_ms: float
    max_session_ms: float
    max_events: int


def clamp_beacon(
    beacon: QoeBeacon, clamps: Clamps, renditions: Collection[str]
) -> tuple[QoeBeacon, list[str]]:
    """The beacon with every value inside its sane range (pure).

    Args:
        beacon: a validated beacon (the model's own, wider bounds already hold).
        clamps: the ranges.
        renditions: the video's rendition names; any other rendition is dropped.

    Returns:
        The clamped beacon and the names of the fields that were changed.
    """
    changes: dict[str, object] = {}

    def cap(name: str, value: float, limit: float) -> None:
        if value > limit:
            changes[name] = type(value)(limit)

    if beacon.startup_ms is not None:
        cap("startup_ms", beacon.startup_ms, clamps.max_startup_ms)
    cap("watch_ms", beacon.watch_ms, clamps.max_session_ms)
    cap("rebuffer_ms", beacon.rebuffer_ms, clamps.max_session_ms)
    cap("rebuffer_count", beacon.rebuffer_count, clamps.max_events)
    cap("switches", beacon.switches, clamps.max_events)
    if any(len(e) > MAX_ERROR_CHARS for e in beacon.errors):
        changes["errors"] = [e[:MAX_ERROR_CHARS] for e in beacon.errors]
    if beacon.rendition is not None and beacon.rendition not in renditions:
        changes["rendition"] = None
    if not changes:
        return beacon, []
    return beacon.model_copy(update=changes), sorted(changes)
