"""After the encode: rendition metadata (pure), and the poster, trickplay and subtitles uploaded.

Each upload is metered by kind (``kubevod.worker.observe.timed_put``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from kubevod.worker import thumbs
from kubevod.worker.ffmpeg import EncodePlan, TrickplayOut
from kubevod.worker.observe import timed_put
from kubevod.worker.probe import SourceInfo
from kubevod.worker.upload import Track, average_bandwidth, peak_bandwidth

from kubevod.errors import NotFound
from kubevod.models import IMMUTABLE, Rendition, Segment, Subtitle, TrackKind, Trickplay
from kubevod.store.base import ObjectStore


def measured(rendition: Rendition, segments: Sequence[Segment]) -> Rendition:
    """``rendition`` with its bandwidth measured over every one of its ``segments``."""
    return rendition.model_copy(
        update={
            "bandwidth": peak_bandwidth(segments),
            "average_bandwidth": average_bandwidth(segments),
        }
    )


def renditions(
    plan: EncodePlan,
    tracks: Sequence[Track],
    languages: Mapping[int, str | None],
    *,
    final: bool,
) -> list[Rendition]:
    """The renditions of the uploaded tracks (video rungs, then audio tracks).

    While encoding (``final=False``) the bandwidth is at least the rung's cap, so a
    player does not under-estimate a rendition from its first segment alone.
    """
    result: list[Rendition] = []
    for rung, track in zip(plan.rungs, tracks, strict=False):
        assert track.init is not None
        peak = track.peak_bandwidth()
        result.append(
            Rendition(
                name=rung.name,
                kind=TrackKind.VIDEO,
                width=track.init.width,
                height=track.init.height,
                frame_rate=rung.fps,
                bandwidth=peak if final else max(peak, rung.maxrate),
                average_bandwidth=track.average_bandwidth(),
                codecs=track.init.codecs,
                timescale=track.init.timescale,
            )
        )
    for out, track in zip(plan.audio, tracks[len(plan.rungs) :], strict=False):
        assert track.init is not None
        peak = track.peak_bandwidth()
        result.append(
            Rendition(
                name=out.name,
                kind=TrackKind.AUDIO,
                bandwidth=peak if final else max(peak, out.bitrate),
                average_bandwidth=track.average_bandwidth(),
                codecs=track.init.codecs,
                timescale=track.init.timescale,
                channels=track.init.channels or 2,
                sample_rate=track.init.sample_rate or 48000,
                language=languages.get(out.stream),
            )
        )
    return result


def upload_poster(
    store: ObjectStore, prefix: str, source: Path, info: SourceInfo, work: Path, ffmpeg: str,
    made: Path | None = None,
) -> str | None:  # fmt: skip
    """Upload ``<prefix>/poster.jpg``: ``made`` by the main ffmpeg, else made now from the
    source; its key, or None when none could be made."""
    out: Path | None = made
    if out is None or not out.is_file() or out.stat().st_size == 0:
        out = thumbs.make_poster(
            source, work / "poster.jpg", duration=info.duration,
            width=info.video.display_width, height=info.video.display_height, ffmpeg=ffmpeg,
        )  # fmt: skip
    if out is None:
        return None
    key = f"{prefix}/poster.jpg"
    timed_put(store, key, out, kind="poster", content_type="image/jpeg", cache_control=IMMUTABLE)
    return key


def upload_trickplay(
    store: ObjectStore, prefix: str, plan: TrickplayOut | None, folder: Path, duration: float
) -> Trickplay | None:
    """Upload the sprite sheets ffmpeg wrote into ``folder`` and their WebVTT index."""
    if plan is None:
        return None
    sheets = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem))
    if not sheets:
        return None
    for sheet in sheets:
        timed_put(
            store, f"{prefix}/trickplay/{sheet.name}", sheet, kind="trickplay",
            content_type="image/jpeg", cache_control=IMMUTABLE,
        )  # fmt: skip
    vtt_key = f"{prefix}/trickplay/thumbs.vtt"
    vtt = thumbs.trickplay_vtt(plan, duration, len(sheets))
    store.put_bytes(vtt_key, vtt.encode(), content_type="text/vtt", cache_control=IMMUTABLE)
    return Trickplay(
        vtt_key=vtt_key, interval=plan.interval, width=plan.width, height=plan.height,
        columns=plan.columns, rows=plan.rows, sheets=len(sheets),
    )  # fmt: skip


def upload_chunk_sheets(
    store: ObjectStore, prefix: str, chunk: int, sheets: Sequence[Path]
) -> None:
    """Upload one chunk's own sprite sheets (``thumbs.chunk_sheet_name``)."""
    for n, sheet in enumerate(sheets):
        timed_put(
            store, f"{prefix}/trickplay/{thumbs.chunk_sheet_name(chunk, n)}", sheet,
            kind="trickplay", content_type="image/jpeg", cache_control=IMMUTABLE,
        )  # fmt: skip


def upload_chunked_trickplay(
    store: ObjectStore, prefix: str, plan: TrickplayOut, duration: float, chunks: Sequence[range]
) -> Trickplay | None:
    """The WebVTT index of a video whose chunks put up their own sheets, once every chunk's
    sheets are there (None otherwise: a chunk encoded without them shows no thumbnails
    rather than broken ones)."""
    sheets = 0
    for index, owed in enumerate(chunks):
        count = thumbs.chunk_sheet_count(plan, owed)
        for n in range(count):
            try:
                store.stat(f"{prefix}/trickplay/{thumbs.chunk_sheet_name(index, n)}")
            except NotFound:
                return None
        sheets += count
    if sheets == 0:
        return None
    vtt_key = f"{prefix}/trickplay/thumbs.vtt"
    vtt = thumbs.chunked_trickplay_vtt(plan, duration, chunks)
    store.put_bytes(vtt_key, vtt.encode(), content_type="text/vtt", cache_control=IMMUTABLE)
    return Trickplay(
        vtt_key=vtt_key, interval=plan.interval, width=plan.width, height=plan.height,
        columns=plan.columns, rows=plan.rows, sheets=sheets,
    )  # fmt: skip


def upload_subtitles(
    store: ObjectStore, prefix: str, source: Path, info: SourceInfo, work: Path, ffmpeg: str
) -> list[Subtitle]:
    """Export the text subtitle tracks as WebVTT and upload them under ``<prefix>/subs/``."""
    plans = thumbs.plan_subtitles(info.subtitles)
    result = []
    for sub, path in thumbs.export_subtitles(source, plans, work / "subs", ffmpeg=ffmpeg):
        key = f"{prefix}/subs/{sub.name}.vtt"
        timed_put(
            store, key, path, kind="subtitles", content_type="text/vtt", cache_control=IMMUTABLE
        )
        result.append(Subtitle(name=sub.name, language=sub.language, key=key, default=sub.default))
    return result
