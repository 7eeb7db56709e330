"""Poster, trickplay sprite sheets with their WebVTT index, and subtitles as WebVTT.

The sprite sheets and the poster come out of the main ffmpeg process (branches
of its ``split``, so the source is decoded once); this module plans them and
writes the index (pure), and runs the small extra ffmpeg calls: the poster again
(one seek, one frame) only when the main run left none, and the text-subtitle
export.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kubevod.worker.ffmpeg import (
    PosterOut,
    TrickplayOut,
    first_thumb,
    poster_argv,
    subtitles_argv,
)
from kubevod.worker.probe import SubtitleStream
from kubevod.worker.process import ffmpeg_env

THUMB_LONG_SIDE = 160
POSTER_LONG_SIDE = 1280
MAX_GRID = 10


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def fit(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Even size with the aspect of ``width`` x ``height``, long side at most ``long_side``."""
    scale = min(1.0, long_side / max(width, height))
    return _even(width * scale), _even(height * scale)


def trickplay_interval(duration: float) -> float:
    """Seconds between thumbnails: 1 s for clips, up to 10 s for films."""
    if duration <= 60:
        return 1.0
    if duration <= 300:
        return 2.0
    if duration <= 1800:
        return 5.0
    return 10.0


def thumb_count(duration: float, interval: float) -> int:
    """How many thumbnails ``fps=1/interval:round=down`` yields for ``duration`` seconds."""
    return max(1, math.ceil(duration / interval - 1e-6))


def plan_trickplay(duration: float, width: int, height: int) -> TrickplayOut:
    """Thumbnail size and sheet grid for a video (pure)."""
    interval = trickplay_interval(duration)
    count = thumb_count(duration, interval)
    w, h = fit(width, height, THUMB_LONG_SIDE)
    columns = min(MAX_GRID, count)
    rows = min(MAX_GRID, math.ceil(count / columns))
    return TrickplayOut(interval=interval, width=w, height=h, columns=columns, rows=rows)


def _stamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def chunk_thumbs(starts: Sequence[float], duration: float, interval: float) -> list[range]:
    """Which thumbnails (global indices, one every ``interval`` s from 0) each chunk makes,
    for chunks starting at ``starts`` s on the video's timeline: from its first one
    (``ffmpeg.first_thumb``) to the next chunk's (pure)."""
    firsts = [first_thumb(start, interval) for start in starts]
    ends = [*firsts[1:], thumb_count(duration, interval)]
    return [range(first, max(first, end)) for first, end in zip(firsts, ends, strict=True)]


def chunk_sheet_name(chunk: int, sheet: int) -> str:
    """The file of sheet ``sheet`` of chunk ``chunk``'s own thumbnails, next to the index."""
    return f"c{chunk}-{sheet}.jpg"


def chunk_sheet_count(plan: TrickplayOut, thumbs: range) -> int:
    """How many sheets a chunk's ``thumbs`` fill."""
    return math.ceil(len(thumbs) / (plan.columns * plan.rows))


def chunked_trickplay_vtt(plan: TrickplayOut, duration: float, chunks: Sequence[range]) -> str:
    """The WebVTT index of a video whose chunks were encoded apart (spread over pods, on
    demand): each chunk tiles its own thumbnails (``chunks[c]``) into sheets of its own
    (``chunk_sheet_name``), so no worker needs another's; one cue per thumbnail."""
    per_sheet = plan.columns * plan.rows
    return _vtt(
        plan, duration,
        (
            (i, chunk_sheet_name(index, n // per_sheet), n % per_sheet)
            for index, thumbs in enumerate(chunks) for n, i in enumerate(thumbs)
        ),
    )  # fmt: skip


def trickplay_vtt(plan: TrickplayOut, duration: float, sheets: int) -> str:
    """The WebVTT index: one cue per thumbnail pointing into its sheet with ``#xywh=``.

    Args:
        plan: the thumbnail geometry.
        duration: video duration, s (the last cue ends there).
        sheets: how many sheets ffmpeg wrote (``0.jpg`` .. ``sheets-1``.jpg,
            next to the .vtt file).

    Returns:
        The file's text.
    """
    per_sheet = plan.columns * plan.rows
    count = min(thumb_count(duration, plan.interval), sheets * per_sheet)
    return _vtt(plan, duration, ((i, f"{i // per_sheet}.jpg", i % per_sheet) for i in range(count)))


def _vtt(plan: TrickplayOut, duration: float, cells: Iterable[tuple[int, str, int]]) -> str:
    """A WebVTT index of ``cells``: (thumbnail index, its sheet's file, its cell there)."""
    lines = ["WEBVTT", ""]
    for i, sheet, cell in cells:
        start = i * plan.interval
        end = min(duration, start + plan.interval)
        if end <= start:
            break
        row, col = divmod(cell, plan.columns)
        lines += [
            f"{_stamp(start)} --> {_stamp(end)}",
            f"{sheet}#xywh={col * plan.width},{row * plan.height},{plan.width},{plan.height}",
            "",
        ]
    return "\n".join(lines)


@dataclass(frozen=True)
class SubtitleOut:
    """A text subtitle track to export."""

    stream: int
    name: str  # file stem: "0", "1"...
    language: str
    default: bool


def plan_subtitles(streams: Sequence[SubtitleStream]) -> list[SubtitleOut]:
    """The text tracks worth exporting (bitmap subtitles cannot become WebVTT)."""
    text = [s for s in streams if s.is_text]
    return [
        SubtitleOut(s.index, str(n), s.language or "und", s.default or (n == 0))
        for n, s in enumerate(text)
    ]


def plan_poster(duration: float, width: int, height: int) -> PosterOut:
    """The poster: about 10% into the video, long side at most POSTER_LONG_SIDE."""
    w, h = fit(width, height, POSTER_LONG_SIDE)
    return PosterOut(min(max(0.0, duration * 0.1), max(0.0, duration - 0.1)), w, h)


def make_poster(
    source: Path, out: Path, *, duration: float, width: int, height: int, ffmpeg: str
) -> Path | None:
    """Write a poster JPEG from about 10% into the video; None when ffmpeg could not."""
    poster = plan_poster(duration, width, height)
    at, w, h = poster.at, poster.width, poster.height
    argv = poster_argv(str(source), at=at, width=w, height=h, out=str(out), ffmpeg=ffmpeg)
    done = subprocess.run(argv, capture_output=True, timeout=120, check=False, env=ffmpeg_env())
    if done.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        at = 0.0  # a seek past the last keyframe of a short or odd file: take the first frame
        argv = poster_argv(str(source), at=at, width=w, height=h, out=str(out), ffmpeg=ffmpeg)
        done = subprocess.run(argv, capture_output=True, timeout=120, check=False, env=ffmpeg_env())
    return out if done.returncode == 0 and out.is_file() and out.stat().st_size > 0 else None


def export_subtitles(
    source: Path, subs: Sequence[SubtitleOut], out_dir: Path, *, ffmpeg: str
) -> list[tuple[SubtitleOut, Path]]:
    """Export text subtitles to ``out_dir/<name>.vtt``; tracks ffmpeg cannot convert are skipped."""
    if not subs:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = [(s.stream, str(out_dir / f"{s.name}.vtt")) for s in subs]
    done = subprocess.run(
        subtitles_argv(str(source), pairs, ffmpeg),
        capture_output=True, timeout=600, check=False, env=ffmpeg_env(),
    )  # fmt: skip
    if done.returncode != 0:  # one bad track must not lose the others: go one by one
        for stream, path in pairs:
            subprocess.run(
                subtitles_argv(str(source), [(stream, path)], ffmpeg),
                capture_output=True,
                timeout=600,
                check=False,
                env=ffmpeg_env(),
            )
    results: list[tuple[SubtitleOut, Path]] = []
    for sub in subs:
        vtt = out_dir / f"{sub.name}.vtt"
        if vtt.is_file() and vtt.stat().st_size > 0:
            results.append((sub, vtt))
    return results
