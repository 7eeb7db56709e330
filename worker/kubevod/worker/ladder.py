"""Plan the adaptive-bitrate ladder (pure; docs/architecture.md §6).

Default rungs: 2160p 14 Mb/s, 1440p 8, 1080p 5, 720p 2.8, 480p 1.4, 360p 0.8,
240p 0.4. Rules: never upscale; add the source's own height when it falls
between rungs (or is below the lowest); even dimensions; aspect kept (display
size, i.e. with rotation and sample aspect ratio applied); output frame rate
capped at 60; bitrates scaled up for frame rates above 30, and down for the
codecs that need fewer bits than H.264 for the same quality (``CODEC_FACTOR``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from kubevod.errors import InvalidInput
from kubevod.jobs import LadderRung

#: (height, video bits/s at 30 fps) of the default ladder.
DEFAULT_LADDER: tuple[tuple[int, int], ...] = (
    (2160, 14_000_000),
    (1440, 8_000_000),
    (1080, 5_000_000),
    (720, 2_800_000),
    (480, 1_400_000),
    (360, 800_000),
    (240, 400_000),
)
#: Named profiles a VideoAsset may ask for.
PROFILES: dict[str, tuple[tuple[int, int], ...]] = {
    "default": DEFAULT_LADDER,
    "small": tuple(r for r in DEFAULT_LADDER if r[0] <= 720),
    "hd": tuple(r for r in DEFAULT_LADDER if r[0] <= 1080),
}
#: Bitrate of a profile rung per codec, relative to the H.264 ladder above (HEVC and
#: AV1 reach H.264's quality with about 30 % and 40 % fewer bits at these sizes).
CODEC_FACTOR: dict[str, float] = {"h264": 1.0, "hevc": 0.7, "av1": 0.6}
MAX_FPS = 60.0
#: Rate multiplier at 60 fps: motion costs bits, but not twice as many.
HIGH_FPS_FACTOR = 1.5


@dataclass(frozen=True)
class Rung:
    """One planned video rendition."""

    name: str  # "720p", "1080p60"
    width: int
    height: int
    fps: float  # output frame rate
    maxrate: int  # bits/s cap of capped CRF
    bufsize: int  # VBV buffer, bits


def output_fps(fps: float) -> float:
    """The frame rate the ladder encodes at: the source's, capped at 60 (halved when above)."""
    if fps <= 0:
        return 30.0
    while fps > MAX_FPS + 0.5:
        fps /= 2
    return round(fps, 3)


def scale_bitrate(bitrate: int, fps: float) -> int:
    """Scale a 30-fps bitrate for ``fps``: linear from 1x at 30 to 1.5x at 60, never below 1x."""
    if fps <= 30.5:
        return bitrate
    factor = 1 + (HIGH_FPS_FACTOR - 1) * min(1.0, (fps - 30) / 30)
    return int(round(bitrate * factor, -3))


def codec_bitrate(bitrate: int, codec: str) -> int:
    """An H.264 ladder bitrate for ``codec`` (rounded to kb/s; unknown codecs unchanged)."""
    return int(round(bitrate * CODEC_FACTOR.get(codec, 1.0), -3))


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _interpolate(height: int, rungs: tuple[tuple[int, int], ...]) -> int:
    """Bitrate for a height between default rungs, by pixel count (log-linear)."""
    ordered = sorted(rungs)
    if height <= ordered[0][0]:
        h, b = ordered[0]
        return int(round(b * (height / h) ** 2, -3))
    for (h0, b0), (h1, b1) in itertools.pairwise(ordered):
        if h0 <= height <= h1:
            t = (math.log(height) - math.log(h0)) / (math.log(h1) - math.log(h0))
            return int(round(math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0))), -3))
    return ordered[-1][1]


def plan_ladder(
    width: int,
    height: int,
    fps: float,
    ladder: str | list[LadderRung] = "default",
    codec: str = "h264",
) -> list[Rung]:
    """Plan the video rungs for a source of display size ``width`` x ``height``.

    Args:
        width: display width of the source (rotation and SAR applied).
        height: display height of the source.
        fps: the source's average frame rate.
        ladder: a profile name (``default``, ``hd``, ``small``) or explicit rungs.
        codec: h264, hevc or av1; profile bitrates are scaled by ``CODEC_FACTOR``
            (explicit rungs keep the bitrate they ask for).

    Returns:
        Rungs from the highest to the lowest; never empty.

    Raises:
        InvalidInput: unknown profile name or a degenerate source size.
    """
    if width < 2 or height < 2:
        raise InvalidInput(f"degenerate source size {width}x{height}")
    if isinstance(ladder, str):
        if ladder not in PROFILES:
            raise InvalidInput(f"unknown ladder profile {ladder!r}; known: {', '.join(PROFILES)}")
        wanted: list[tuple[int, int, str | None]] = [(h, b, None) for h, b in PROFILES[ladder]]
        add_source_height = True
    else:
        wanted = [(r.height, r.bitrate, r.name) for r in ladder]
        add_source_height = not wanted
    out_fps = output_fps(fps)
    # The short side is the "height" of a rung (portrait 1080x1920 is a 1080p rung).
    short, long_ = min(width, height), max(width, height)
    heights = {h for h, _, _ in wanted if h <= short}
    top = max(h for h, _, _ in wanted) if wanted else 0
    between = short not in heights and short < top
    if (add_source_height and between) or not heights:
        # The source's own height between rungs (or below them all, or every explicit
        # rung above the source): encode it at its own size too.
        heights.add(short)
    bitrates = {h: b for h, b, _ in wanted}
    names = {h: n for h, _, n in wanted if n}
    base = tuple((h, b) for h, b, _ in wanted) or DEFAULT_LADDER
    rungs: list[Rung] = []
    suffix = "" if out_fps <= 30.5 else str(round(out_fps))
    for h in sorted(heights, reverse=True):
        short_px = _even(h)
        long_px = _even(h * long_ / short)
        w_px, h_px = (long_px, short_px) if width >= height else (short_px, long_px)
        rate = scale_bitrate(bitrates.get(h) or _interpolate(h, base), out_fps)
        if isinstance(ladder, str):
            rate = codec_bitrate(rate, codec)
        rungs.append(
            Rung(
                name=names.get(h) or f"{h}p{suffix}",
                width=w_px,
                height=h_px,
                fps=out_fps,
                maxrate=rate,
                bufsize=2 * rate,
            )
        )
    return rungs
