"""Pick the encoder family: a one-frame trial encode per accelerator, cached.

``auto`` tries NVENC, VAAPI, then QSV and falls back to software, saying why.
A trial is skipped without starting ffmpeg when the device it needs is not
there (no ``/dev/nvidia*`` for NVENC, no ``/dev/dri/renderD*`` for VAAPI/QSV),
so a CPU-only machine decides in microseconds. Results are cached per
(ffmpeg, accelerator, device) for the life of the process.
"""

from __future__ import annotations

import glob
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kubevod.worker.errors import one_line
from kubevod.worker.ffmpeg import ACCELERATORS, ENCODERS, Accel, trial_argv

from kubevod.jobs import Accelerator

_REQUESTED: dict[str, Accel] = {"nvidia": "nvidia", "vaapi": "vaapi", "qsv": "qsv"}
_cache: dict[tuple[str, Accel, str], tuple[bool, str]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class HwChoice:
    """The encoder family to use, and why (shown in the catalog message and status)."""

    accelerator: Accel
    reason: str


def device_present(accel: Accel, glob_fn: Callable[[str], list[str]] = glob.glob) -> str | None:
    """None when the device ``accel`` needs exists, else why not."""
    if accel == "nvidia":
        return None if glob_fn("/dev/nvidia[0-9]*") else "no NVIDIA device (/dev/nvidia*)"
    if accel in ("vaapi", "qsv"):
        return None if glob_fn("/dev/dri/renderD*") else "no DRM render node (/dev/dri/renderD*)"
    return None


def trial(accel: Accel, *, ffmpeg: str = "ffmpeg", timeout: float = 20.0) -> tuple[bool, str]:
    """Encode one frame with ``accel``; (works, reason). Cached per process."""
    key = (ffmpeg, accel, "")
    with _lock:
        if key in _cache:
            return _cache[key]
    missing = device_present(accel)
    if missing:
        result = (False, missing)
    else:
        try:
            done = subprocess.run(
                trial_argv(accel, ffmpeg), capture_output=True, text=True, timeout=timeout
            )
            ok = done.returncode == 0
            tail = (done.stderr.strip().splitlines() or ["exit status " + str(done.returncode)])[-1]
            result = (ok, "trial encode succeeded" if ok else one_line(tail, 160))
        except (OSError, subprocess.TimeoutExpired) as exc:
            result = (False, one_line(f"trial encode failed: {exc}", 160))
    with _lock:
        _cache[key] = result
    return result


def clear_cache() -> None:
    """Forget trial results (tests; a device plugged in at runtime)."""
    with _lock:
        _cache.clear()


def choose(
    requested: Accelerator,
    *,
    ffmpeg: str = "ffmpeg",
    timeout: float = 20.0,
    try_fn: Callable[[Accel], tuple[bool, str]] | None = None,
) -> HwChoice:
    """The accelerator to encode with.

    Args:
        requested: the job's ``accelerator`` (auto | none | nvidia | vaapi | qsv).
        ffmpeg: the ffmpeg binary.
        timeout: limit of each trial, s.
        try_fn: replaces the real trial (tests mock the GPU here and say so).

    Returns:
        The family that works, or software with the reasons the others did not.
    """
    if requested == "none":
        return HwChoice("software", "software encoding requested")

    def attempt(accel: Accel) -> tuple[bool, str]:
        return try_fn(accel) if try_fn else trial(accel, ffmpeg=ffmpeg, timeout=timeout)

    candidates = [_REQUESTED[requested]] if requested in _REQUESTED else list(ACCELERATORS)
    reasons: list[str] = []
    for accel in candidates:
        ok, why = attempt(accel)
        if ok:
            return HwChoice(accel, f"{ENCODERS[accel]}: {why}")
        reasons.append(f"{ENCODERS[accel]}: {why}")
    return HwChoice("software", "falling back to libx264 (" + "; ".join(reasons) + ")")
