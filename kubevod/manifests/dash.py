"""MPEG-DASH MPDs rendered from catalog metadata, over the same CMAF segments as HLS.

A pure function from a :class:`~kubevod.models.Video` and its recorded
segments to MPD text (ISO/IEC 23009-1, ``isoff-live`` profile): one Period,
one video AdaptationSet holding every rung, one audio AdaptationSet per
language, one text AdaptationSet per WebVTT track (``video.subtitles``). Each Representation has
its own ``SegmentTemplate`` (``$RepresentationID$/init.mp4`` and
``$RepresentationID$/$Number$.m4s``, numbers from 0, the worker's key layout)
with a ``SegmentTimeline`` built from the recorded durations, so the timeline
adds up to the real media length instead of assuming equal segments.

Choice (issue 4): the MPD is always ``type="static"``. Once the video is ready
it describes the whole presentation. While the video is still transcoding it
describes what exists so far: the contiguous segments from 0 of each
Representation, cut to the shortest one so audio and video end together; a
player that asks again later gets a longer MPD. A ``dynamic`` MPD would need
wall-clock anchors (``availabilityStartTime``) that a transcode does not have;
watching while transcoding is what the HLS ``EVENT`` playlists are for.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from fractions import Fraction
from itertools import pairwise

from kubevod.manifests.common import DEFAULT_MEDIA_BASE, manifest_segments, media_url, with_query
from kubevod.models import Rendition, Segment, TrackKind, Video, VideoState

#: MIME type of an MPD.
CONTENT_TYPE = "application/dash+xml"
NAMESPACE = "urn:mpeg:dash:schema:mpd:2011"
PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"
_CHANNELS_SCHEME = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
_ROLE_SCHEME = "urn:mpeg:dash:role:2011"


def iso_duration(seconds: float) -> str:
    """An xs:duration in seconds with millisecond precision, e.g. ``PT12.345S``."""
    return f"PT{max(seconds, 0.0):.3f}S"


def frame_rate(fps: float) -> str:
    """A DASH ``@frameRate``: an integer, or a fraction such as ``30000/1001``."""
    for base in (24, 25, 30, 48, 50, 60, 120):
        if abs(fps - base * 1000 / 1001) < 0.005:
            return f"{base * 1000}/1001"
    ratio = Fraction(fps).limit_denominator(1001)
    return (
        str(ratio.numerator) if ratio.denominator == 1 else f"{ratio.numerator}/{ratio.denominator}"
    )


def timeline(segments: list[Segment], timescale: int) -> list[tuple[int, int, int]]:
    """The ``<S t d r>`` entries for consecutive segments.

    Boundaries are rounded from cumulative seconds, so rounding never drifts:
    the durations add up to the total length in ticks exactly.

    Args:
        segments: contiguous segments from seq 0, in order.
        timescale: ticks per second of the track.

    Returns:
        ``(t, d, r)`` triples: start tick, duration in ticks, extra repeats.
    """
    if not segments:
        return []
    start = segments[0].start
    edges = [round(start * timescale)]
    elapsed = start
    for seg in segments:
        elapsed += seg.duration
        edges.append(round(elapsed * timescale))
    out: list[tuple[int, int, int]] = []
    for begin, end in pairwise(edges):
        d = end - begin
        if out and out[-1][1] == d:
            t, _, r = out[-1]
            out[-1] = (t, d, r + 1)
        else:
            out.append((begin, d, 0))
    return out


def _template(
    parent: ET.Element, rendition: Rendition, segments: list[Segment], query: str
) -> None:
    template = ET.SubElement(
        parent,
        "SegmentTemplate",
        timescale=str(rendition.timescale),
        initialization=with_query("$RepresentationID$/init.mp4", query),
        media=with_query("$RepresentationID$/$Number$.m4s", query),
        startNumber="0",
    )
    line = ET.SubElement(template, "SegmentTimeline")
    for t, d, r in timeline(segments, rendition.timescale):
        attrs = {"t": str(t), "d": str(d)}
        if r:
            attrs["r"] = str(r)
        ET.SubElement(line, "S", attrs)


def _cut(segments: list[Segment], length: float) -> list[Segment]:
    """The leading segments that fit in ``length`` seconds (plus a millisecond of slack)."""
    out: list[Segment] = []
    total = 0.0
    for seg in segments:
        total += seg.duration
        if total > length + 0.001:
            break
        out.append(seg)
    return out


def render_mpd(
    video: Video,
    segments: Iterable[Segment],
    *,
    media_base: str = DEFAULT_MEDIA_BASE,
    query: str = "",
) -> str:
    """Render the MPD of a video.

    Args:
        video: the catalog entry.
        segments: its recorded segments (every rendition).
        media_base: the media origin the ``BaseURL`` points at.
        query: appended to every media URL (a signed-URL token), "" for none.

    Returns:
        MPD XML text with an XML declaration.

    Raises:
        ValueError: when no rendition has a segment yet (nothing to play).
    """
    recorded = list(segments)
    listed = {r.name: manifest_segments(video, r.name, recorded) for r in video.renditions}
    playable = [r for r in video.renditions if listed[r.name]]
    if not playable:
        raise ValueError(f"video {video.id} has no segments yet")
    totals = [sum(s.duration for s in listed[r.name]) for r in playable]
    ready = video.state == VideoState.READY
    if ready:
        length = video.duration if video.duration > 0 else max(totals)
    else:
        length = min(totals)
        listed = {name: _cut(segs, length) for name, segs in listed.items()}
        playable = [r for r in playable if listed[r.name]]

    mpd = ET.Element(
        "MPD",
        xmlns=NAMESPACE,
        profiles=PROFILE,
        type="static",
        mediaPresentationDuration=iso_duration(length),
        minBufferTime=iso_duration(video.segment_seconds),
    )
    period = ET.SubElement(mpd, "Period", id="0", start="PT0S")
    ET.SubElement(period, "BaseURL").text = media_url(video.media_prefix() + "/", media_base)

    rungs = sorted(
        (r for r in playable if r.kind == TrackKind.VIDEO), key=lambda r: (r.bandwidth, r.name)
    )
    set_id = 0
    if rungs:
        vset = ET.SubElement(
            period,
            "AdaptationSet",
            id=str(set_id),
            contentType="video",
            mimeType="video/mp4",
            segmentAlignment="true",
            startWithSAP="1",
        )
        set_id += 1
        if any(r.width for r in rungs):
            vset.set("maxWidth", str(max(r.width for r in rungs)))
            vset.set("maxHeight", str(max(r.height for r in rungs)))
        for rung in rungs:
            rep = ET.SubElement(vset, "Representation", id=rung.name, bandwidth=str(rung.bandwidth))
            rep.set("codecs", rung.codecs)
            if rung.width and rung.height:
                rep.set("width", str(rung.width))
                rep.set("height", str(rung.height))
                rep.set("sar", "1:1")
            if rung.frame_rate > 0:
                rep.set("frameRate", frame_rate(rung.frame_rate))
            _template(rep, rung, listed[rung.name], query)

    languages: dict[str, list[Rendition]] = {}
    for audio in (r for r in playable if r.kind == TrackKind.AUDIO):
        languages.setdefault(audio.language or "und", []).append(audio)
    for lang, audios in languages.items():
        aset = ET.SubElement(
            period,
            "AdaptationSet",
            id=str(set_id),
            contentType="audio",
            mimeType="audio/mp4",
            lang=lang,
            segmentAlignment="true",
            startWithSAP="1",
        )
        if lang == next(iter(languages)):  # the first audio track is the default one
            ET.SubElement(aset, "Role", schemeIdUri=_ROLE_SCHEME, value="main")
        set_id += 1
        for audio in audios:
            rep = ET.SubElement(
                aset, "Representation", id=audio.name, bandwidth=str(audio.bandwidth)
            )
            rep.set("codecs", audio.codecs)
            if audio.sample_rate:
                rep.set("audioSamplingRate", str(audio.sample_rate))
            if audio.channels:
                ET.SubElement(
                    rep,
                    "AudioChannelConfiguration",
                    schemeIdUri=_CHANNELS_SCHEME,
                    value=str(audio.channels),
                )
            _template(rep, audio, listed[audio.name], query)

    for i, sub in enumerate(video.subtitles):
        tset = ET.SubElement(
            period,
            "AdaptationSet",
            id=str(set_id),
            contentType="text",
            mimeType="text/vtt",
            lang=sub.language,
        )
        set_id += 1
        ET.SubElement(tset, "Role", schemeIdUri=_ROLE_SCHEME, value="subtitle")
        rep = ET.SubElement(tset, "Representation", id=f"sub{i}", bandwidth="256")
        ET.SubElement(rep, "BaseURL").text = with_query(media_url(sub.key, media_base), query)

    ET.indent(mpd)
    body = ET.tostring(mpd, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
