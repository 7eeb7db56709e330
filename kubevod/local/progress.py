"""The progress bar of ``kubevod add``: follows one video until it is playable,
says so with the link to open, then follows it until it is ready (or failed).

On a terminal it is a rich progress bar; in a pipe or a log it prints one
plain line per 10 % step and per state change, ending with ``100% ready``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Json = dict[str, Any]

#: States in which nothing more will happen to a video.
FINAL_STATES = ("ready", "failed")


def percent(video: Json) -> float:
    """Progress clamped to 0..100 (ready is always 100) (pure)."""
    if video.get("state") == "ready":
        return 100.0
    try:
        value = float(video.get("progress") or 0.0)
    except (TypeError, ValueError):
        value = 0.0
    return max(0.0, min(100.0, value))


def describe(video: Json) -> str:
    """The bar's label: state, plus encode speed while transcoding (pure)."""
    state = str(video.get("state", "?"))
    label = state
    if state == "transcoding" and video.get("playable"):
        label = "transcoding, playable"
    speed = video.get("speed")
    if state == "transcoding" and isinstance(speed, int | float) and speed > 0:
        label += f" ({speed:.1f}x)"
    return label


def plain_line(video: Json) -> str:
    """One line of the plain (non-terminal) progress output (pure)."""
    return f"{percent(video):3.0f}% {describe(video)}"


class _Bar:
    """A rich bar on a terminal, plain lines elsewhere."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last: tuple[int, str] | None = None
        if console.is_terminal:
            self._progress = Progress(
                TextColumn("{task.description:<24}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("queued", total=100)

    def show(self, video: Json) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=percent(video), description=describe(video))
            return
        key = (int(percent(video) // 10), str(video.get("state")))
        if key != self._last:
            self._last = key
            self.console.print(plain_line(video), highlight=False)

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def follow(
    fetch: Callable[[], Json],
    console: Console,
    *,
    play_url: Callable[[Json], str | None],
    interval: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> Json:
    """Poll ``fetch`` until the video is ready or failed; returns its last state.

    Args:
        fetch: returns the video's current JSON (API shape).
        console: where the bar goes.
        play_url: the link to print once the video is playable (None: print none).
        interval: seconds between polls.
        sleep: the wait between polls.
    """
    bar = _Bar(console)
    announced = False
    try:
        while True:
            video = fetch()
            if video.get("playable") and not announced and video.get("state") == "transcoding":
                announced = True
                url = play_url(video)
                bar.note(f"Playable now{': ' + url if url else ''} (still transcoding)")
            bar.show(video)
            if video.get("state") in FINAL_STATES:
                return video
            sleep(interval)
    finally:
        bar.stop()
