"""ffprobe a source into a typed ``SourceInfo``.

``parse_probe`` is pure (ffprobe's JSON in, ``SourceInfo`` out) and carries the
rules: which stream is "the" video (cover art is not), display size after
rotation and sample aspect ratio, frame rate incl. variable, bit depth,
interlacing, audio and text-subtitle tracks. ``probe`` is the thin shell.

Local mode probes a file once: the add-time check (``kubevod.local.ingest``) runs
this module's ``probe_argv`` in the same process as the transcode and ``remember``s
the answer, and ``probe`` takes it instead of running ffprobe again while the file
is unchanged (same device, inode, size, modification and change time).
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections import OrderedDict
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
    profile: str = ""  # e.g. "High", "Main", "Constrained Baseline"
    level: int = 0  # H.264 level_idc, e.g. 40 for 4.0
    start: float = 0.0  # the stream's start time, s (keyframe times are relative to it)

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
    profile: str = ""  # e.g. "LC" for AAC-LC


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
    start: float = 0.0  # the file's start time, s (where ffmpeg's output timeline starts)

    @property
    def video_offset(self) -> float:
        """Where the video's first frame lies on the output timeline, s."""
        return max(0.0, self.video.start - self.start)

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
        profile=str(v.get("profile") or ""),
        level=_int(v.get("level")) or 0,
        start=_float(v.get("start_time")) or 0.0,
    )
    audio = [
        AudioStream(
            index=_int(s.get("index")) or 0,
            codec=str(s.get("codec_name") or "unknown"),
            channels=_int(s.get("channels")) or 0,
            sample_rate=_int(s.get("sample_rate")) or 0,
            language=_language(s),
            default=bool((s.get("disposition") or {}).get("default")),
            profile=str(s.get("profile") or ""),
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
        start=_float(fmt.get("start_time")) or 0.0,
    )


def probe_argv(ffprobe: str, path: str, input_args: list[str]) -> list[str]:
    """The ffprobe command of a probe (pure); ``input_args``: ``policy.input_args()``."""
    return [ffprobe, "-v", "error", *input_args, "-of", "json", "-show_format",
            "-show_streams", path]  # fmt: skip


#: How long, and how many, remembered probes are kept for the transcode to take.
REMEMBER_SECONDS = 600.0
REMEMBER_MAX = 32
_remembered: OrderedDict[tuple[object, ...], tuple[float, SourceInfo]] = OrderedDict()
_remembered_lock = threading.Lock()


def file_identity(path: Path) -> tuple[object, ...]:
    """What changes whenever the file's bytes may have: path, device, inode, size, times.

    Raises:
        OSError: the file cannot be stat'ed.
    """
    st = path.stat()
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def remember(identity: tuple[object, ...], info: SourceInfo) -> None:
    """Keep a probe of the file with this ``file_identity`` for ``probe`` to take."""
    with _remembered_lock:
        _remembered[identity] = (time.monotonic() + REMEMBER_SECONDS, info)
        _remembered.move_to_end(identity)
        while len(_remembered) > REMEMBER_MAX:
            _remembered.popitem(last=False)


def _take(identity: tuple[object, ...]) -> SourceInfo | None:
    with _remembered_lock:
        entry = _remembered.pop(identity, None)
    if entry is None or entry[0] < time.monotonic():
        return None
    return entry[1]


def probe(path: Path, *, ffprobe: str = "ffprobe", timeout: float = 60.0) -> SourceInfo:
    """Run ffprobe on ``path`` (or take the probe ``remember``ed for it, once).

    Raises:
        SourceError: the file is empty, unreadable, not media, or has no video.
    """
    try:
        identity = file_identity(path)
    except OSError as exc:
        raise SourceError(f"cannot read the source: {exc.strerror or exc}") from exc
    if identity[3] == 0:
        raise SourceError("the source file is empty (0 bytes)")
    remembered = _take(identity)
    if remembered is not None:
        return remembered
    argv = probe_argv(ffprobe, str(path), policy.input_args())
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


def keyframes_argv(path: Path, stream: int, ffprobe: str = "ffprobe") -> list[str]:
    """ffprobe listing the presentation time of every keyframe packet of one stream.

    Packets only (``-show_packets`` demuxes, it does not decode): seconds for a film.
    """
    return [ffprobe, "-v", "error", *policy.input_args(), "-select_streams", str(stream),
            "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", str(path)]  # fmt: skip


def parse_keyframes(csv: str, start: float) -> list[float]:
    """Keyframe times (s, from the stream's start) out of ``keyframes_argv``'s output."""
    times: list[float] = []
    for line in csv.splitlines():
        pts, _, flags = line.partition(",")
        if "K" not in flags:
            continue
        try:
            times.append(round(float(pts) - start, 6))
        except ValueError:
            continue  # a packet without a pts
    return sorted(set(times))


def keyframes(
    path: Path, stream: int, start: float, *, ffprobe: str = "ffprobe", timeout: float = 300.0
) -> list[float]:
    """The keyframe times of one video stream; SourceError when they cannot be read."""
    try:
        done = subprocess.run(
            keyframes_argv(path, stream, ffprobe), capture_output=True, text=True,
            timeout=timeout, check=False, env=ffmpeg_env(),
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"listing the keyframes took longer than {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise SourceError(one_line(f"cannot list the keyframes: {done.stderr.strip()[-200:]}"))
    return parse_keyframes(done.stdout, start)
