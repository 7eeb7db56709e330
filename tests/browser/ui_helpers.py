"""Small helpers shared by the browser tests: open the player, wait for playback."""

from __future__ import annotations

from typing import Any

#: True once the player has rendered frames and the clock moves.
PLAYING = (
    "() => { const v = document.querySelector('video');"
    " return document.getElementById('player').dataset.state === 'playing'"
    " && !v.paused && v.currentTime > 0.1 && v.readyState >= 3; }"
)


def open_player(page: Any, base_url: str, video_id: str, timeout_ms: float = 20_000) -> None:
    """Navigate to the watch page and wait until the video is playing."""
    page.goto(f"{base_url}/watch/{video_id}")
    page.wait_for_function(PLAYING, timeout=timeout_ms)


def current_time(page: Any) -> float:
    return float(page.evaluate("document.querySelector('video').currentTime"))


def wait_advance(page: Any, seconds: float, timeout_ms: float = 15_000) -> None:
    """Wait until currentTime has moved ``seconds`` past where it is now."""
    start = current_time(page)
    page.wait_for_function(
        f"() => document.querySelector('video').currentTime >= {start + seconds}",
        timeout=timeout_ms,
    )


def player_state(page: Any) -> dict[str, Any]:
    """A JSON snapshot of ``window.kubevodPlayer`` (levels, loaded levels, mode, errors)."""
    state: dict[str, Any] = page.evaluate(
        "() => { const s = window.kubevodPlayer; return {mode: s.mode, levels: s.levels,"
        " loadedLevels: s.loadedLevels, currentLevel: s.currentLevel, errors: s.errors,"
        " startupMs: s.startupMs}; }"
    )
    return state
