"""A chunk's files made into the segments of the whole video (the side of chunking that
touches files; the plan is pure: ``kubevod.timeline.plan_chunks``,
``kubevod.worker.ffmpeg.chunk_span`` and ``chunk_argv``).

ffmpeg encodes a chunk into a folder of its own, from time 0, its segment files
numbered from the chunk's first segment. ``ChunkMover`` takes each segment once
ffmpeg has closed it (``N.m4s`` exists: the hls muxer renames it from a temp
file), moves its timestamps to where the chunk lies on the video's timeline
(``kubevod.worker.mp4.rebase``) and puts it where the uploader looks, by an
atomic rename. Every chunk's init segment must be byte-identical to the first
chunk's: the same encoder settings on the same rung give the same parameter
sets, and a player switches between chunks without a new init segment; one that
differs stops the transcode rather than publish segments that would not decode.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubevod.worker.errors import TranscodeFailed
from kubevod.worker.ffmpeg import ChunkSpan
from kubevod.worker.ladder import Rung
from kubevod.worker.mp4 import parse_init, rebase

INIT = "init.mp4"


def chunk_passes(rungs: Sequence[Rung], *, sought: bool) -> list[tuple[Rung, ...]]:
    """The ffmpeg runs that encode one on-demand chunk's ``rungs`` (top first), in order.

    A chunk a viewer sought to (nothing before it is encoded, so the player has nothing
    buffered) has its lowest rung encoded alone first: that ffmpeg is mostly decoding,
    so its first segment lands within a moment; the web player asks for that rung after
    such a seek (hls.js on its own keeps waiting for its rung on a fast network). Every
    other chunk is one ffmpeg for all its rungs, which costs least.
    """
    if not rungs:
        return []
    if not sought or len(rungs) == 1:
        return [tuple(rungs)]
    return [(rungs[-1],), tuple(rungs[:-1])]


@dataclass
class _Rung:
    name: str
    source: Path  # the chunk's folder for this rung
    target: Path  # where the uploader looks
    next_file: int
    init: bytes | None = None
    timescale: int = 0


@dataclass
class ChunkMover:
    """Moves one chunk's complete segments into the video's rung folders."""

    span: ChunkSpan
    folder: Path  # ffmpeg's working folder for the chunk: ``<rung>/`` and ``trickplay/``
    out: Path  # the video's folder: ``<rung>/`` as the uploader reads it
    rungs: tuple[str, ...]
    _state: list[_Rung] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._state = [
            _Rung(name, self.folder / name, self.out / name, self.span.first_segment)
            for name in self.rungs
        ]

    def poll(self) -> int:
        """Move every segment ffmpeg has closed; returns how many were moved."""
        moved = 0
        for rung in self._state:
            while (path := rung.source / f"{rung.next_file}.m4s").is_file():
                self._ensure_init(rung)
                ticks = round(self.span.offset * rung.timescale)
                data = rebase(path.read_bytes(), ticks, rung.timescale, rung.next_file + 1)
                _write_atomic(rung.target / path.name, data)
                path.unlink()
                rung.next_file += 1
                moved += 1
        return moved

    def moved(self, rung: str) -> int:
        """Segments of ``rung`` moved so far."""
        state = next(r for r in self._state if r.name == rung)
        return state.next_file - self.span.first_segment

    def _ensure_init(self, rung: _Rung) -> None:
        if rung.init is not None:
            return
        data = (rung.source / INIT).read_bytes()
        target = rung.target / INIT
        if target.is_file():
            if target.read_bytes() != data:
                raise TranscodeFailed(
                    f"chunk at {self.span.offset:.3f} s made a different init segment for "
                    f"{rung.name} (the encoder's parameter sets changed between chunks)"
                )
        else:
            _write_atomic(target, data)
        rung.init, rung.timescale = data, parse_init(data).timescale


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def thumbs_for(wanted: range, made: set[int]) -> list[int]:
    """For each thumbnail a chunk owes (``wanted``, global indices), the one it made to
    use: itself, else the nearest made one (the earlier on a tie), so every cell of the
    chunk's sheets lies where its index puts it; empty when it made none (pure)."""
    if not made:
        return []
    ordered = sorted(made)
    return [i if i in made else min(ordered, key=lambda m: (abs(m - i), m)) for i in wanted]


def gather_chunk_thumbs(folder: Path, wanted: range, into: Path) -> int:
    """Copy a chunk's thumbnails (``<folder>/<global index>.jpg``) into ``into`` as
    ``0.jpg``.. in the order its sheets hold them (``thumbs_for``); returns how many."""
    into.mkdir(parents=True, exist_ok=True)
    made = {int(p.stem) for p in folder.glob("*.jpg") if p.stem.isdigit()}
    chosen = thumbs_for(wanted, made)
    for n, index in enumerate(chosen):
        (into / f"{n}.jpg").write_bytes((folder / f"{index}.jpg").read_bytes())
    return len(chosen)


def gather_thumbs(folders: list[Path], into: Path) -> int:
    """Number the chunks' thumbnails ``0.jpg``, ``1.jpg``... in time order into ``into``.

    Each chunk names its thumbnails by their global index; a chunk boundary can
    leave a gap or a repeat, so they are renumbered in order (sheets need a
    contiguous sequence). Returns how many there are.
    """
    into.mkdir(parents=True, exist_ok=True)
    found: dict[int, Path] = {}
    for folder in folders:
        for jpg in folder.glob("*.jpg"):
            if jpg.stem.isdigit():
                found.setdefault(int(jpg.stem), jpg)
    for n, index in enumerate(sorted(found)):
        os.replace(found[index], into / f"{n}.jpg")
    return len(found)
