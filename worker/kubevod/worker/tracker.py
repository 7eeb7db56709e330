"""Encode progress from two witnesses, written to the catalog at a bounded rate.

ffmpeg's ``-progress`` reports are the fine-grained witness, but Debian's
ffmpeg 5.1 writes none until the end while the one command also feeds the
trickplay output (``fps=1,…,tile=…`` holds its first packet back for a whole
sheet). The uploader is the second witness: the media time that every video
rendition has complete in the store (segment by segment, available for every
ffmpeg). The tracker takes the furthest of the two, so progress rises during
the encode whichever witness speaks.

Percent is ``ENCODE_SHARE`` times the encoded share of the source, never
decreasing, clamped to 0..share (100 is the pipeline's to write, at ``ready``).
The catalog gets at most one ``set_progress`` per ``min_interval`` seconds, plus
a last one on ``flush``; the local callback gets every rise.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from kubevod.worker.progress import ProgressUpdate, percent_of

#: Share of the progress bar the encode takes; the rest is poster, thumbnails, metadata.
ENCODE_SHARE = 95.0

#: ``(percent, speed)`` -> a catalog write.
Writer = Callable[[float, float | None], None]


class ProgressTracker:
    """Thread-safe: fed by the ffmpeg-progress thread and the upload loop."""

    def __init__(
        self,
        duration: float,
        write: Writer,
        *,
        on_rise: Callable[[float], None] | None = None,
        share: float = ENCODE_SHARE,
        min_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.duration = duration
        self.share = share
        self.min_interval = min_interval
        self._write = write
        self._on_rise = on_rise
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self.seconds = 0.0  # furthest encoded media time either witness reported, s
        self.percent = 0.0
        self.speed: float | None = None  # ffmpeg's, else estimated from the segments
        self._ffmpeg_speed: float | None = None
        self._written = 0.0
        self._written_at: float | None = None

    def begin(self) -> None:
        """An encode starts (again): the speed estimate counts from now; percent stays."""
        with self._lock:
            self._started = self._clock()
            self.seconds, self._ffmpeg_speed = 0.0, None

    def ffmpeg(self, update: ProgressUpdate) -> None:
        """A ``-progress`` report (from the reader thread)."""
        with self._lock:
            if update.speed:
                self._ffmpeg_speed = update.speed
            self._advance(update.seconds)

    def media(self, seconds: float) -> None:
        """Media time complete in every video rendition (from the upload loop)."""
        with self._lock:
            self._advance(seconds)

    def flush(self) -> None:
        """Write the latest percent if the rate limit held it back (end of the encode)."""
        with self._lock:
            self._maybe_write(force=True)

    def _advance(self, seconds: float) -> None:
        now = self._clock()
        if seconds > self.seconds:
            self.seconds = seconds
        elapsed = now - self._started
        estimate = self.seconds / elapsed if elapsed > 0 and self.seconds > 0 else None
        self.speed = self._ffmpeg_speed or (round(estimate, 3) if estimate else None)
        percent = min(self.share, percent_of(self.seconds, self.duration) * self.share / 100)
        if percent > self.percent:
            self.percent = percent
            if self._on_rise is not None:
                self._on_rise(percent)
        self._maybe_write(force=False, now=now)

    def _maybe_write(self, *, force: bool, now: float | None = None) -> None:
        """Under the lock: write when risen and the interval has passed (or forced)."""
        now = self._clock() if now is None else now
        if self.percent <= self._written:
            return
        if (
            not force
            and self._written_at is not None
            and now - self._written_at < self.min_interval
        ):
            return
        # Under the lock on purpose: two writes never land out of order. A failed write
        # (catalog briefly down) must not stop the encode; it is tried again an interval later.
        self._written_at = now
        with contextlib.suppress(Exception):
            self._write(self.percent, self.speed)
            self._written = self.percent
