"""What the worker agrees to decode: the ffmpeg input policy (pure).

ffmpeg will open almost anything by name or by content: a text file becomes
frames through the ``tty`` demuxer, a playlist (``hls``, ``concat``) names
other files (a private recording on the worker's disk, a URL inside the
cluster), ``image2`` reads numbered files around the source. So every ffprobe
and ffmpeg that opens a source gets ``input_args()`` in front of its ``-i``:

- ``-format_whitelist``: only the video container demuxers in ``DEMUXERS``;
  no text or tty-style formats, no image sequences, no playlists or concat
  lists (remote HLS sources are not offered: ffmpeg would fetch the entries
  itself, around the fetch guard);
- ``-protocol_whitelist file``: the source was made a local file before
  (fetched through the guard), so nothing else may be opened.

``check_source`` then holds the probed source to the limits (pixels, frame
rate, duration, stream count) before a single frame is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kubevod.errors import SourceError

if TYPE_CHECKING:
    from kubevod.worker.probe import SourceInfo

#: Demuxers of video containers (ffmpeg's names, ``ffmpeg -demuxers``). A demuxer
#: whose name lists several (``mov,mp4,m4a,3gp,3g2,mj2``) matches on any of them.
DEMUXERS: tuple[str, ...] = (
    "mov",  # mp4, m4v, mov, 3gp
    "matroska",  # mkv, webm
    "avi",
    "mpegts",  # ts, m2ts
    "mpeg",  # mpg, vob (program streams)
    "flv",
    "ogg",
    "asf",  # wmv
    "mxf",
    "nut",
    "rm",
    "dv",
    "h264",  # raw Annex B streams
    "hevc",
)
#: The only protocol an input may use: the source is a local file by then.
PROTOCOLS = "file"
#: What the owner is told when the source's container is not on ``DEMUXERS``.
NOT_A_CONTAINER = "not a video container kubevod decodes (mp4, mkv, webm, mov, avi, ts, ...)"


def input_args() -> list[str]:
    """ffmpeg/ffprobe options to put before ``-i <source>`` (the policy above)."""
    return ["-protocol_whitelist", PROTOCOLS, "-format_whitelist", ",".join(DEMUXERS)]


def refused_by_whitelist(ffmpeg_error: str) -> bool:
    """True when ffmpeg's or ffprobe's last error line says the format whitelist refused it."""
    return "not on whitelist" in ffmpeg_error.lower()


def demuxer_allowed(format_name: str) -> bool:
    """True when ffprobe's ``format_name`` (a comma list) names an allowed demuxer."""
    return any(name in DEMUXERS for name in format_name.split(","))


@dataclass(frozen=True)
class SourceLimits:
    """How large a source the worker decodes (WorkerSettings sets them)."""

    max_pixels: int = 7680 * 4320
    max_fps: float = 240.0
    max_duration: float = 24 * 3600.0
    max_streams: int = 64


def check_source(info: SourceInfo, limits: SourceLimits) -> None:
    """Refuse a probed source outside the policy, before anything is decoded.

    Raises:
        SourceError: a container that is not a video container, or a source over a limit;
            the message says which and by how much.
    """
    if not demuxer_allowed(info.format_name):
        raise SourceError(
            f"the source is a {info.format_name.split(',')[0]} file, {NOT_A_CONTAINER}"
        )
    v = info.video
    pixels = v.width * v.height
    if pixels > limits.max_pixels:
        raise SourceError(
            f"the video is {v.width}x{v.height} ({pixels / 1e6:.1f} Mpx), over the limit of "
            f"{limits.max_pixels / 1e6:.1f} Mpx"
        )
    if v.fps > limits.max_fps:
        raise SourceError(
            f"the video runs at {v.fps:g} frames/s, over the limit of {limits.max_fps:g}"
        )
    if info.duration > limits.max_duration:
        raise SourceError(
            f"the source lasts {info.duration / 3600:.1f} h, over the limit of "
            f"{limits.max_duration / 3600:.1f} h"
        )
    if info.streams > limits.max_streams:
        raise SourceError(
            f"the source holds {info.streams} streams, over the limit of {limits.max_streams}"
        )
