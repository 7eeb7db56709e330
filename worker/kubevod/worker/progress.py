"""Parse ffmpeg's ``-progress`` output into percent and speed (pure).

ffmpeg writes blocks of ``key=value`` lines, each block ending with
``progress=continue`` (or ``progress=end``). ``ProgressParser.feed`` takes one
line and returns an update at the end of each block.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressUpdate:
    """One progress report."""

    percent: float  # 0..100, never decreasing
    seconds: float  # encoded position in the source, s
    speed: float | None  # x realtime, None until ffmpeg knows
    done: bool  # ffmpeg said progress=end


def _out_seconds(fields: dict[str, str]) -> float | None:
    for key, scale in (("out_time_us", 1e-6), ("out_time_ms", 1e-6)):  # _ms is µs too (sic)
        raw = fields.get(key, "")
        if raw.lstrip("-").isdigit():
            return max(0.0, int(raw) * scale)
    raw = fields.get("out_time", "")
    parts = raw.split(":")
    if len(parts) == 3:
        try:
            hours, minutes, secs = int(parts[0]), int(parts[1]), float(parts[2])
        except ValueError:
            return None
        return max(0.0, hours * 3600 + minutes * 60 + secs)
    return None


def _speed(raw: str | None) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw.strip().rstrip("x"))
    except ValueError:
        return None
    return value if value > 0 else None


def percent_of(seconds: float, duration: float) -> float:
    """``seconds`` of ``duration`` as a percentage clamped to 0..100."""
    if duration <= 0:
        return 0.0
    return max(0.0, min(100.0, 100.0 * seconds / duration))


class ProgressParser:
    """Accumulates ``-progress`` lines; clamps to 0..100 and never goes backwards."""

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self._fields: dict[str, str] = {}
        self._percent = 0.0
        self._seconds = 0.0
        self._speed: float | None = None

    def feed(self, line: str) -> ProgressUpdate | None:
        """Take one line; return an update when it closes a block, else None."""
        key, sep, value = line.strip().partition("=")
        if not sep:
            return None
        key, value = key.strip(), value.strip()
        if key != "progress":
            self._fields[key] = value
            return None
        seconds = _out_seconds(self._fields)
        if seconds is not None:
            self._seconds = max(self._seconds, seconds)
        self._percent = max(self._percent, percent_of(self._seconds, self.duration))
        self._speed = _speed(self._fields.get("speed")) or self._speed
        self._fields = {}
        done = value == "end"
        if done:
            self._percent = 100.0
        return ProgressUpdate(self._percent, self._seconds, self._speed, done)
