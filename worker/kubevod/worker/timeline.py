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
