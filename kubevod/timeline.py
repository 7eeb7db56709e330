"""The segment timeline of one generation: where every rendition is cut (pure).

Every video rung and audio track of a video is cut at the same instants, so a
player can switch rungs at any segment boundary. The instants are a pure
function of the source and the settings, known before the encode starts:

- ``Timeline.regular(first, every)``: a short first segment, then one every
  ``every`` seconds; the encoder forces a keyframe at each cut.
- ``Timeline.on_keyframes(...)``: when the top rung is the source's own video
  passed through (``kubevod.worker.passthrough``), a cut can only fall on a
  keyframe of the source; the cuts are chosen among them as close to the
  regular targets as the keyframes allow, and the encoded rungs get their
  keyframes forced at exactly those instants.

The uploader (``kubevod.worker.upload``) joins pieces into segments by the
timeline, and ``kubevod.worker.ffmpeg`` forces keyframes at its cuts.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

#: How far (s) a piece may start before a cut and still count as after it (AAC frames
#: are 1024 samples, 21.3 ms at 48 kHz; video frames at least 1/240 s apart).
TOLERANCE = 0.05


@dataclass(frozen=True)
class Timeline:
    """Segment boundaries: ``[0, c1)``, ``[c1, c2)``, ... (the last one open-ended)."""

    first: float
    every: float
    #: Explicit cuts (ascending, > 0); None: the regular cuts ``first + k * every``.
    cuts: tuple[float, ...] | None = None

    @classmethod
    def regular(cls, first: float, every: float) -> Timeline:
        return cls(first=min(first, every), every=every)

    @classmethod
    def on_keyframes(
        cls,
        keyframes: Sequence[float],
        duration: float,
        *,
        first: float,
        every: float,
        longest: float,
    ) -> Timeline | None:
        """Cuts chosen among ``keyframes`` (seconds from the start of the video).

        Each cut is the first keyframe at or after its regular target (``first``,
        then ``first + k * every``), so a source whose keyframes fall on the regular
        cuts gets the regular timeline, and the segments average ``every`` seconds
        whatever the keyframes. None when the keyframes do not fit: a segment would
        run longer than ``longest`` seconds (a source with sparse keyframes, which
        would make players wait and switch late).
        """
        usable = sorted(k for k in keyframes if 0 < k < duration - TOLERANCE)
        first = min(first, every)
        cuts: list[float] = []
        k = 0
        at = 0
        previous = 0.0
        while True:
            target = first + k * every
            at = bisect.bisect_left(usable, target - 1e-6, lo=at)
            if at == len(usable):
                break
            cut = usable[at]
            if cut - previous > longest + 1e-6:
                return None
            cuts.append(cut)
            previous = cut
            at += 1
            # The next target after this cut (a late keyframe may have passed several).
            k = max(k + 1, math.floor((cut - first) / every + 1e-9) + 1)
        if duration - previous > longest + 1e-6:
            return None
        return cls(first=first, every=every, cuts=tuple(cuts))

    def index(self, start: float) -> int:
        """The segment holding an instant (a piece that starts at ``start``)."""
        if self.cuts is not None:
            return bisect.bisect_right(self.cuts, start + TOLERANCE)
        if start < self.first - TOLERANCE:
            return 0
        return 1 + math.floor((start - self.first + TOLERANCE) / self.every)

    def end(self, index: int) -> float:
        """Where segment ``index`` ends (``inf`` for the last one of an explicit timeline)."""
        if self.cuts is not None:
            return self.cuts[index] if index < len(self.cuts) else math.inf
        return self.first + index * self.every

    def cuts_before(self, duration: float) -> tuple[float, ...]:
        """Every cut inside ``[0, duration)``."""
        if self.cuts is not None:
            return tuple(c for c in self.cuts if c < duration)
        count = max(0, math.ceil((duration - self.first) / self.every))
        return tuple(self.first + k * self.every for k in range(count))

    def longest(self, duration: float) -> float:
        """The longest segment of a video ``duration`` seconds long."""
        edges = (0.0, *self.cuts_before(duration), duration)
        return max(b - a for a, b in itertools.pairwise(edges))


@dataclass(frozen=True)
class Chunk:
    """Consecutive segments ``first .. first + count - 1``: the unit of encoding work.

    Any worker can encode any chunk, in any order (``kubevod.worker.chunks``): a
    chunk starts on a cut, so its first frame is a keyframe in every rung, and the
    frame-exact span ``[start_frame, end_frame)`` of the output frame grid says
    which frames it holds (``end_frame`` None: to the end of the video).
    """

    index: int
    first: int
    count: int
    start_frame: int
    end_frame: int | None

    @property
    def last(self) -> int:
        return self.first + self.count - 1


def frame_at(seconds: float, fps: float) -> int:
    """The first frame of an ``fps`` grid at or after ``seconds`` (where a keyframe forced
    at ``seconds`` lands: ``kubevod.worker.ffmpeg.keyframe_expr``)."""
    return max(0, math.ceil(seconds * fps - 1e-6))


def plan_chunks(
    timeline: Timeline, duration: float, fps: float, seconds: float,
    first_seconds: float | None = None,
) -> tuple[Chunk, ...]:  # fmt: skip
    """Group the timeline's segments into chunks of at least ``seconds`` (pure).

    A chunk ends on the first cut at least ``seconds`` after its start (the first
    chunk: ``first_seconds``, when given: a short first chunk makes a video playable
    sooner); a last chunk shorter than half of ``seconds`` joins the one before, so
    no encode is spent on a sliver. ``fps`` is the output frame rate: the chunk's
    frames are counted on it.
    """
    if seconds <= 0 or fps <= 0 or (first_seconds is not None and first_seconds <= 0):
        raise ValueError("chunk length and frame rate must be positive")
    cuts = [c for c in timeline.cuts_before(duration) if frame_at(c, fps) < frame_at(duration, fps)]
    edges: list[tuple[int, float]] = [(0, 0.0)]  # (first segment, start) of each chunk
    for n, cut in enumerate(cuts, start=1):
        least = first_seconds if len(edges) == 1 and first_seconds is not None else seconds
        if cut - edges[-1][1] >= least - 1e-6:
            edges.append((n, cut))
    if len(edges) > 1 and duration - edges[-1][1] < seconds / 2:
        edges.pop()
    total = len(cuts) + 1
    chunks = []
    for i, (first, start) in enumerate(edges):
        following = edges[i + 1] if i + 1 < len(edges) else None
        count = (following[0] if following else total) - first
        end = frame_at(following[1], fps) if following else None
        chunks.append(Chunk(i, first, count, frame_at(start, fps), end))
    return tuple(chunks)


def spread(total: int, pods: int, pod: int) -> list[int]:
    """The chunks pod ``pod`` of ``pods`` encodes of a video of ``total`` chunks (pure).

    Round robin from chunk 1: chunk 0 is the registration's (pod 0), which makes
    the video playable and which the other pods wait for; every chunk is some
    pod's exactly once, front to back within each pod, so the encoded part of
    the timeline grows from the start.
    """
    if pods < 1 or not 0 <= pod < pods or total < 0:
        raise ValueError(f"pod {pod} of {pods} cannot share {total} chunks")
    return [i for i in range(1, total) if (i - 1) % pods == (pod - 1) % pods]


def chunk_of(chunks: Sequence[Chunk], segment: int) -> Chunk:
    """The chunk holding segment ``segment``."""
    at = bisect.bisect_right([c.first for c in chunks], segment) - 1
    if at < 0 or segment > chunks[at].last:
        raise IndexError(f"segment {segment} is outside the timeline")
    return chunks[at]
