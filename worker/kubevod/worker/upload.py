"""Upload segments while ffmpeg is still encoding, each exactly once it is complete.

ffmpeg's hls muxer (with ``hls_flags temp_file``) writes ``N.m4s.tmp`` and
renames it to ``N.m4s`` when the segment is closed, and writes ``init.mp4``
before segment 0; so ``N.m4s`` existing means "complete". Each poll uploads
what is complete, in order, and only then records it in the catalog
(``add_segment``): a failed upload is never recorded, and the catalog never
lists a segment the store does not have.

Audio comes as short pieces (see ``kubevod.worker.ffmpeg``); the uploader joins
consecutive pieces into one CMAF segment per segment of the timeline
(``kubevod.timeline``: ``[0, first)``, ``[first, first+every)``, ... or
the source's keyframes); so does the video of an explicit timeline, written as
one piece per keyframe. A joined segment is complete once a piece of the next
segment exists, or ffmpeg has exited.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubevod.worker.mp4 import FragmentInfo, TrackInit, parse_fragments, parse_init
from kubevod.worker.observe import timed_put

from kubevod import keys
from kubevod.models import IMMUTABLE, Segment
from kubevod.store.base import ObjectStore
from kubevod.telemetry import span
from kubevod.timeline import TOLERANCE, Timeline

#: Content type of init and media segments. ``video/mp4`` rather than the newer
#: ``video/iso.segment``: every player and cache knows it, and docs/architecture.md §7 lists it.
SEGMENT_CONTENT_TYPE = "video/mp4"


def peak_bandwidth(segments: Sequence[Segment]) -> int:
    """Highest bits/s of any segment (HLS BANDWIDTH)."""
    rates = [s.size * 8 / s.duration for s in segments if s.duration > 0]
    return math.ceil(max(rates)) if rates else 0


def average_bandwidth(segments: Sequence[Segment]) -> int:
    """Bits/s over all segments (HLS AVERAGE-BANDWIDTH)."""
    seconds = sum(s.duration for s in segments)
    return math.ceil(sum(s.size for s in segments) * 8 / seconds) if seconds else 0


@dataclass
class Track:
    """Upload state of one rendition."""

    name: str
    directory: Path  # where ffmpeg writes this rendition (or its pieces)
    pieces: bool = False  # audio pieces to be joined
    init: TrackInit | None = None
    segments: list[Segment] = field(default_factory=list)
    next_file: int = 0  # next ffmpeg file number to look at
    pending: list[tuple[Path, FragmentInfo]] = field(default_factory=list)

    @property
    def started(self) -> bool:
        """True once the first segment is uploaded and recorded."""
        return bool(self.segments)

    def peak_bandwidth(self) -> int:
        """Highest bits/s of any segment (HLS BANDWIDTH)."""
        return peak_bandwidth(self.segments)

    def average_bandwidth(self) -> int:
        """Bits/s over all segments (HLS AVERAGE-BANDWIDTH)."""
        return average_bandwidth(self.segments)

    def end(self) -> float:
        """Presentation end of the last uploaded segment, s."""
        return max((s.start + s.duration for s in self.segments), default=0.0)


class SegmentUploader:
    """Watches the scratch folder and uploads complete segments, in order, once each."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        record: Callable[[Segment], None],
        video_id: str,
        prefix: str,
        tracks: list[Track],
        timeline: Timeline,
    ) -> None:
        self.store = store
        self.record = record  # the attempt's fenced catalog write (kubevod.lifecycle)
        self.video_id = video_id
        self.prefix = prefix.rstrip("/")
        self.tracks = tracks
        self.timeline = timeline  # where pieces are joined into segments

    def all_started(self) -> bool:
        """True when every rendition has its first segment in the store and the catalog."""
        return all(t.started for t in self.tracks)

    def poll(self, *, finished: bool = False) -> list[Segment]:
        """Upload whatever became complete; ``finished`` once ffmpeg has exited.

        Returns:
            The segments recorded by this call.
        """
        ready = finished or any((t.directory / f"{t.next_file}.m4s").is_file() for t in self.tracks)
        if not ready:
            return []  # nothing new: no span for an idle poll (it runs every poll_interval)
        with span("worker.upload_batch", video_id=self.video_id) as batch:
            recorded: list[Segment] = []
            for track in self.tracks:
                recorded += self._poll_track(track, finished)
            batch.set_attribute("kubevod.segments", len(recorded))
            batch.set_attribute("kubevod.bytes", sum(s.size for s in recorded))
        return recorded

    def _ensure_init(self, track: Track) -> TrackInit:
        if track.init is None:
            path = track.directory / "init.mp4"
            info = parse_init(path.read_bytes())
            timed_put(
                self.store, keys.init_key(self.prefix, track.name), path, kind="init",
                content_type=SEGMENT_CONTENT_TYPE, cache_control=IMMUTABLE,
            )  # fmt: skip
            track.init = info
        return track.init

    def _record(
        self, track: Track, path: Path, frag: FragmentInfo, seq: int | None = None
    ) -> Segment:
        """Upload and record one segment: number ``seq`` (a video file keeps ffmpeg's
        number, which is its place on the timeline, chunk by chunk), else the next one."""
        init = self._ensure_init(track)
        seq = len(track.segments) if seq is None else seq
        key = keys.segment_key(self.prefix, track.name, seq)
        stored = timed_put(
            self.store, key, path, kind="segment", content_type=SEGMENT_CONTENT_TYPE,
            cache_control=IMMUTABLE,
        )  # fmt: skip
        segment = Segment(
            rendition=track.name,
            seq=seq,
            duration=round(frag.duration(init.timescale), 6),
            start=round(frag.start(init.timescale), 6),
            size=stored.size,
            key=key,
        )
        self.record(segment)
        track.segments.append(segment)
        return segment

    def _poll_track(self, track: Track, finished: bool) -> list[Segment]:
        recorded: list[Segment] = []
        while True:
            path = track.directory / f"{track.next_file}.m4s"
            if not path.is_file():
                break
            init = self._ensure_init(track)
            frag = parse_fragments(path.read_bytes(), init.default_sample_duration)
            track.next_file += 1
            if not track.pieces:
                recorded.append(self._record(track, path, frag, seq=track.next_file - 1))
                continue
            here = self.timeline.index(frag.start(init.timescale))
            if track.pending:
                open_at = self.timeline.index(track.pending[0][1].start(init.timescale))
                if here > open_at:
                    recorded.append(self._flush(track))
            track.pending.append((path, frag))
            boundary = self.timeline.end(here)
            if frag.start(init.timescale) + frag.duration(init.timescale) >= (boundary - TOLERANCE):
                recorded.append(self._flush(track))
        if finished and track.pending:
            recorded.append(self._flush(track))
        return recorded

    def _flush(self, track: Track) -> Segment:
        """Join the pending pieces into one segment file and upload it."""
        seq = len(track.segments)
        out = track.directory.parent / track.name / f"{seq}.m4s"
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as sink:
            for piece, _ in track.pending:
                sink.write(piece.read_bytes())
        first, last = track.pending[0][1], track.pending[-1][1]
        joined = FragmentInfo(
            start_ticks=first.start_ticks,
            duration_ticks=last.start_ticks + last.duration_ticks - first.start_ticks,
            samples=sum(f.samples for _, f in track.pending),
            starts_with_sync=first.starts_with_sync,
        )
        track.pending = []
        return self._record(track, out, joined)
