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

from kubevod.worker.encoders import Codec, encoder_name
from kubevod.worker.errors import one_line
from kubevod.worker.ffmpeg import ACCELERATORS, Accel, Scaler, trial_argv
from kubevod.worker.process import ffmpeg_env

from kubevod.jobs import Accelerator

_REQUESTED: dict[str, Accel] = {"nvidia": "nvidia", "vaapi": "vaapi", "qsv": "qsv"}
_cache: dict[tuple[str, Accel, str, Codec], tuple[bool, str]] = {}
_filters: dict[str, frozenset[str]] = {}
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


def trial(
    accel: Accel, *, ffmpeg: str = "ffmpeg", timeout: float = 20.0, codec: Codec = "h264"
) -> tuple[bool, str]:
    """Encode one frame of ``codec`` with ``accel``; (works, reason). Cached per process."""
    key = (ffmpeg, accel, "", codec)
    with _lock:
        if key in _cache:
            return _cache[key]
    missing = device_present(accel)
    if missing:
        result = (False, missing)
    else:
        try:
            done = subprocess.run(
                trial_argv(accel, ffmpeg, codec=codec),
                capture_output=True,
                text=True,
                timeout=timeout,
                env=ffmpeg_env(),
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
        _filters.clear()


def filters(ffmpeg: str = "ffmpeg", timeout: float = 20.0) -> frozenset[str]:
    """Names of the filters this ffmpeg has (``ffmpeg -filters``), cached; empty if it fails."""
    with _lock:
        if ffmpeg in _filters:
            return _filters[ffmpeg]
    try:
        done = subprocess.run(
            [ffmpeg, "-hide_banner", "-nostdin", "-filters"],
            capture_output=True, text=True, timeout=timeout, env=ffmpeg_env(),
        )  # fmt: skip
        lines = done.stdout.splitlines() if done.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired):
        lines = []
    # " TSC zscale            V->V       Apply resizing, ..." (flags, name, pads, text)
    names = frozenset(
        parts[1]
        for parts in (line.split() for line in lines)
        if len(parts) >= 3 and "->" in parts[2]
    )
    with _lock:
        _filters[ffmpeg] = names
    return names


def scaler(ffmpeg: str = "ffmpeg") -> Scaler:
    """What resizes the cascaded rungs with this ffmpeg: zimg when it has ``zscale``."""
    return "zscale" if "zscale" in filters(ffmpeg) else "swscale"


def choose(
    requested: Accelerator,
    *,
    ffmpeg: str = "ffmpeg",
    timeout: float = 20.0,
    try_fn: Callable[[Accel], tuple[bool, str]] | None = None,
    codec: Codec = "h264",
) -> HwChoice:
    """The accelerator to encode with.

    Args:
        requested: the job's ``accelerator`` (auto | none | nvidia | vaapi | qsv).
        ffmpeg: the ffmpeg binary.
        timeout: limit of each trial, s.
        try_fn: replaces the real trial (tests mock the GPU here and say so).
        codec: the codec to encode; accelerators without an encoder for it are skipped.

    Returns:
        The family that works, or software with the reasons the others did not.
    """
    software = encoder_name(codec, "software")
    if requested == "none":
        return HwChoice("software", f"software encoding requested ({software})")

    def attempt(accel: Accel) -> tuple[bool, str]:
        if try_fn:
            return try_fn(accel)
        return trial(accel, ffmpeg=ffmpeg, timeout=timeout, codec=codec)

    candidates = [_REQUESTED[requested]] if requested in _REQUESTED else list(ACCELERATORS)
    reasons: list[str] = []
    for accel in candidates:
        encoder = encoder_name(codec, accel)
        if encoder is None:
            reasons.append(f"{accel}: no {codec} encoder")
            continue
        ok, why = attempt(accel)
        if ok:
            return HwChoice(accel, f"{encoder}: {why}")
        reasons.append(f"{encoder}: {why}")
    return HwChoice("software", f"falling back to {software} (" + "; ".join(reasons) + ")")
