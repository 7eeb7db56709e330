"""ffprobe a source into a typed ``SourceInfo``.

``parse_probe`` is pure (ffprobe's JSON in, ``SourceInfo`` out) and carries the
rules: which stream is "the" video (cover art is not), display size after
rotation and sample aspect ratio, frame rate incl. variable, bit depth,
interlacing, audio and text-subtitle tracks. ``probe`` is the thin shell.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from kubevod.worker import policy
from kubevod.worker.errors import one_line
from kubevod.worker.process import ffmpeg_env

from kubevod.errors import SourceError
from kubevod.models import SourceSummary

#: Subtitle codecs ffmpeg can turn into WebVTT (bitmap ones like PGS cannot).
TEXT_SUBTITLE_CODECS = frozenset({"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text"})
_INTERLACED = frozenset({"tt", "bb", "tb", "bt"})


@dataclass(frozen=True)
class VideoStream:
    """The main video stream."""

    index: int
    codec: str
    width: int  # coded size
    height: int
    rotation: int = 0  # degrees, a multiple of 90 (clockwise display rotation)
    sar: Fraction = Fraction(1)
    fps: float = 0.0  # average frame rate
    variable_fps: bool = False
    pix_fmt: str = ""
    bit_depth: int = 8
    interlaced: bool = False
    bitrate: int | None = None

    @property
    def display_width(self) -> int:
        """Width as shown: sample aspect ratio and rotation applied."""
        w = round(self.width * self.sar)
        return self.height if self.rotation % 180 else w

    @property
    def display_height(self) -> int:
        """Height as shown: rotation applied."""
        w = round(self.width * self.sar)
        return w if self.rotation % 180 else self.height


@dataclass(frozen=True)
class AudioStream:
    index: int
    codec: str
    channels: int
    sample_rate: int
    language: str | None = None
    default: bool = False


@dataclass(frozen=True)
class SubtitleStream:
    index: int
    codec: str
    language: str | None = None
    title: str | None = None
    default: bool = False

    @property
    def is_text(self) -> bool:
        """True when it can be exported as WebVTT."""
        return self.codec in TEXT_SUBTITLE_CODECS


@dataclass(frozen=True)
class SourceInfo:
    """Everything the planner needs to know about a source."""

    path: str
    format_name: str
    duration: float  # seconds
    size: int  # bytes
    bitrate: int | None
    video: VideoStream
    streams: int = 1  # every stream of the container (video, audio, subtitles, data...)
    audio: list[AudioStream] = field(default_factory=list)
    subtitles: list[SubtitleStream] = field(default_factory=list)

    def summary(self) -> SourceSummary:
        """What the operator shows in ``status.source``."""
        return SourceSummary(
            codec=self.video.codec,
            width=self.video.display_width,
            height=self.video.display_height,
            fps=round(self.video.fps, 3),
            bitrate=self.bitrate,
            size=self.size,
            audio_tracks=len(self.audio),
            subtitle_tracks=len(self.subtitles),
        )


def _rate(text: str | None) -> float:
    if not text or "/" not in text:
        return 0.0
    num, den = text.split("/", 1)
    try:
        return float(Fraction(int(num), int(den))) if int(den) else 0.0
    except ValueError:
        return 0.0


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result == result else None  # NaN


def _rotation(stream: dict[str, Any]) -> int:
    """Clockwise display rotation in degrees (ffprobe reports counter-clockwise)."""
    raw: Any = None
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            raw = side["rotation"]
    if raw is None:
        raw = (stream.get("tags") or {}).get("rotate")
        value = _int(raw)
        return (value or 0) % 360  # the legacy tag is already clockwise
    value = _int(round(float(raw))) or 0
    return (-value) % 360


def _bit_depth(stream: dict[str, Any]) -> int:
    bits = _int(stream.get("bits_per_raw_sample"))
    if bits:
        return bits
    # yuv420p10le, p010le, gray12be: the depth is the number before the endianness.
    match = re.search(r"(9|10|12|14|16)(?:le|be)$", stream.get("pix_fmt") or "")
    return int(match.group(1)) if match else 8


def _sar(text: str | None) -> Fraction:
    if not text or ":" not in text:
        return Fraction(1)
    num, den = text.split(":", 1)
    try:
        value = Fraction(int(num), int(den)) if int(num) and int(den) else Fraction(1)
    except ValueError:
        return Fraction(1)
    return value if Fraction(1, 4) <= value <= 4 else Fraction(1)


def _language(stream: dict[str, Any]) -> str | None:
    lang = (stream.get("tags") or {}).get("language")
    return None if not lang or lang == "und" else str(lang)


def parse_probe(data: dict[str, Any], path: str = "") -> SourceInfo:
    """Turn ``ffprobe -show_format -show_streams -of json`` output into a SourceInfo.

    Args:
        data: the parsed JSON.
        path: the probed file (kept for error messages).

    Returns:
        The typed description.

    Raises:
        SourceError: no video stream (e.g. audio-only), or no usable duration.
    """
    fmt = data.get("format") or {}
    streams: list[dict[str, Any]] = data.get("streams") or []
    videos = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    if not videos:
        kinds = sorted({str(s.get("codec_type")) for s in streams}) or ["nothing"]
        raise SourceError(f"the source has no video stream (it holds {', '.join(kinds)})")
    v = videos[0]
    width, height = _int(v.get("width")) or 0, _int(v.get("height")) or 0
    if width < 16 or height < 16:
        raise SourceError(f"the video stream has an unusable size {width}x{height}")
    avg = _rate(v.get("avg_frame_rate"))
    real = _rate(v.get("r_frame_rate"))
    fps = avg or real
    variable = bool(avg and real and abs(avg - real) / real > 0.01)
    video = VideoStream(
        index=_int(v.get("index")) or 0,
        codec=str(v.get("codec_name") or "unknown"),
        width=width,
        height=height,
        rotation=_rotation(v),
        sar=_sar(v.get("sample_aspect_ratio")),
        fps=fps,
        variable_fps=variable,
        pix_fmt=str(v.get("pix_fmt") or ""),
        bit_depth=_bit_depth(v),
        interlaced=v.get("field_order") in _INTERLACED,
        bitrate=_int(v.get("bit_rate")),
    )
    audio = [
        AudioStream(
            index=_int(s.get("index")) or 0,
            codec=str(s.get("codec_name") or "unknown"),
            channels=_int(s.get("channels")) or 0,
            sample_rate=_int(s.get("sample_rate")) or 0,
            language=_language(s),
            default=bool((s.get("disposition") or {}).get("default")),
        )
        for s in streams
        if s.get("codec_type") == "audio" and (_int(s.get("channels")) or 0) > 0
    ]
    subtitles = [
        SubtitleStream(
            index=_int(s.get("index")) or 0,
            codec=str(s.get("codec_name") or "unknown"),
            language=_language(s),
            title=(s.get("tags") or {}).get("title"),
            default=bool((s.get("disposition") or {}).get("default")),
        )
        for s in streams
        if s.get("codec_type") == "subtitle"
    ]
    duration = _float(fmt.get("duration")) or _float(v.get("duration")) or 0.0
    if duration <= 0:
        raise SourceError("the source has no usable duration")
    return SourceInfo(
        path=path,
        format_name=str(fmt.get("format_name") or "unknown"),
        duration=duration,
        size=_int(fmt.get("size")) or 0,
        bitrate=_int(fmt.get("bit_rate")),
        video=video,
        streams=len(streams),
        audio=audio,
        subtitles=subtitles,
    )


def probe(path: Path, *, ffprobe: str = "ffprobe", timeout: float = 60.0) -> SourceInfo:
    """Run ffprobe on ``path``.

    Raises:
        SourceError: the file is empty, unreadable, not media, or has no video.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SourceError(f"cannot read the source: {exc.strerror or exc}") from exc
    if size == 0:
        raise SourceError("the source file is empty (0 bytes)")
    argv = [ffprobe, "-v", "error", *policy.input_args(), "-of", "json", "-show_format",
            "-show_streams", str(path)]  # fmt: skip
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, env=ffmpeg_env()
        )
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"ffprobe took longer than {timeout:.0f} s") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        last = last.replace(str(path), "source")
        if policy.refused_by_whitelist(last):
            last = policy.NOT_A_CONTAINER
        raise SourceError(one_line(f"not a readable media file: {last}"))
    try:
        data = json.loads(done.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise SourceError("ffprobe returned garbage") from exc
    return parse_probe(data, str(path))
