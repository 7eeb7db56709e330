"""Whether a source's own streams can be the top rung and the audio as they are (pure).

An H.264 file that players already decode is remuxed, not re-encoded, as the
top rung ("original quality"): no generation loss, and the most expensive
encode of the ladder is skipped. The other rungs are encoded and cut on the
same boundaries, which are then the source's keyframes
(``kubevod.timeline.Timeline.on_keyframes``). AAC-LC audio is copied
the same way. Each refusal names its reason, which the video's message shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubevod.worker.ladder import Rung
from kubevod.worker.probe import AudioStream, SourceInfo

#: H.264 profiles every browser, phone and TV decodes.
PROFILES = frozenset({"Constrained Baseline", "Baseline", "Main", "High"})
#: The highest H.264 level passed through (5.1: 2160p30; what MSE and devices take).
MAX_LEVEL = 51
#: A source up to this much over the top rung's bitrate cap still passes (the cap is for
#: encodes; a well-made source a little above it plays as well).
BITRATE_SLACK = 1.5
#: Audio passed through: AAC-LC, stereo or mono, at the rates players expect.
AUDIO_RATES = frozenset({44100, 48000})


@dataclass(frozen=True)
class Verdict:
    """The decision for the top rung; ``reason`` says why not when ``ok`` is False."""

    ok: bool
    reason: str


def video_verdict(info: SourceInfo, top: Rung, codec: str) -> Verdict:
    """Whether the source's video stream can be the top rung as it is."""
    v = info.video
    checks = [
        (codec == "h264", f"the ladder is {codec}"),
        (v.codec == "h264", f"the source is {v.codec}, not H.264"),
        (v.profile in PROFILES, f"H.264 profile {v.profile or 'unknown'} is not one players share"),
        (0 < v.level <= MAX_LEVEL, f"H.264 level {v.level / 10:g} is above {MAX_LEVEL / 10:g}"),
        (v.pix_fmt in ("yuv420p", "yuvj420p") and v.bit_depth == 8,
         f"pixel format {v.pix_fmt or 'unknown'} is not 8-bit 4:2:0"),
        (not v.interlaced, "the source is interlaced"),
        (not v.variable_fps and v.fps > 0, "the source has a variable frame rate"),
        (v.rotation == 0 and v.sar == 1, "the source is rotated or has non-square pixels"),
        ((v.width, v.height) == (top.width, top.height) and abs(v.fps - top.fps) < 0.01,
         f"the top rung is {top.width}x{top.height}@{top.fps:g}, the source "
         f"{v.width}x{v.height}@{v.fps:g}"),
    ]  # fmt: skip
    bitrate = v.bitrate or _video_bitrate(info)
    checks.append(
        (
            bitrate is not None and bitrate <= top.maxrate * BITRATE_SLACK,
            f"the source's {_mbps(bitrate)} is over the top rung's {_mbps(top.maxrate)} cap",
        )
    )
    for ok, reason in checks:
        if not ok:
            return Verdict(False, reason)
    return Verdict(True, f"{top.name} is the source's own H.264 ({v.profile} {v.level / 10:g})")


def audio_copies(stream: AudioStream) -> bool:
    """Whether an audio stream can be a rendition as it is (AAC-LC, up to stereo)."""
    return (
        stream.codec == "aac"
        and stream.profile == "LC"
        and 1 <= stream.channels <= 2
        and stream.sample_rate in AUDIO_RATES
    )


def _video_bitrate(info: SourceInfo) -> int | None:
    """The video's bitrate when the container does not say: the file's, as an upper bound."""
    if info.bitrate:
        return info.bitrate
    if info.size and info.duration > 0:
        return int(info.size * 8 / info.duration)
    return None


def _mbps(bits: int | None) -> str:
    return "unknown bitrate" if bits is None else f"{bits / 1e6:.1f} Mb/s"
