"""HLS playlists (RFC 8216, version 7) rendered from catalog metadata.

Pure functions from a :class:`~kubevod.models.Video` and its recorded
:class:`~kubevod.models.Segment` list to playlist text; the API calls them on
every request (docs/architecture.md §7). The media are CMAF fMP4 segments, hence
``EXT-X-MAP`` and version 7.

- The master playlist lists every video rung (lowest bandwidth first) with
  BANDWIDTH and AVERAGE-BANDWIDTH (video plus the largest audio rendition),
  RESOLUTION, CODECS (video and every audio codec), FRAME-RATE, the ``audio``
  group, the ``subs`` group when there are WebVTT tracks, and
  ``CLOSED-CAPTIONS=NONE`` (there are no CEA-608 captions in the video).
- Media playlists are ``EVENT`` playlists without ``EXT-X-ENDLIST`` while the
  video is transcoding (players reload them and can start at once), and
  ``VOD`` playlists with ``EXT-X-ENDLIST`` once it is ready.
- Segment and init URIs point at the media origin (see
  :func:`kubevod.manifests.common.media_url`); playlist URIs in the master
  are relative (``720p.m3u8``, ``subtitles/0.m3u8``), so the master can be
  served under any path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from kubevod.manifests.common import (
    DEFAULT_MEDIA_BASE,
    init_key,
    manifest_segments,
    media_url,
    with_query,
)
from kubevod.models import Rendition, Segment, TrackKind, Video, VideoState

VERSION = 7
AUDIO_GROUP = "audio"
SUBTITLE_GROUP = "subs"
#: MIME type of every playlist (RFC 8216 §4).
CONTENT_TYPE = "application/vnd.apple.mpegurl"


#: Names players show in the audio and captions menus for common language codes.
LANGUAGE_NAMES = {
    "ar": "العربية",
    "de": "Deutsch",
    "en": "English",
    "es": "Español",
    "fr": "Français",
    "hi": "हिन्दी",
    "it": "Italiano",
    "ja": "日本語",
    "ko": "한국어",
    "nl": "Nederlands",
    "pt": "Português",
    "ru": "Русский",
    "zh": "中文",
}


def language_name(code: str | None, fallback: str) -> str:
    """A menu label for a BCP 47 language code (``en``, ``en-US``), else ``fallback``."""
    if not code or code == "und":
        return fallback
    return LANGUAGE_NAMES.get(code.split("-")[0].lower(), code)


def _quoted(value: str) -> str:
    """An attribute quoted-string: no double quote, CR or LF allowed (RFC 8216 §4.2)."""
    cleaned = value.replace('"', "'").replace("\r", " ").replace("\n", " ")
    return f'"{cleaned}"'


def _unique_names(labels: Sequence[str]) -> list[str]:
    """Make NAME attributes unique within a group (RFC 8216 §4.3.4.1) by numbering repeats."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for label in labels:
        n = seen.get(label, 0) + 1
        seen[label] = n
        out.append(label if n == 1 else f"{label} {n}")
    return out


def _codecs(renditions: Iterable[Rendition]) -> list[str]:
    """Distinct codec strings, in first-seen order."""
    out: list[str] = []
    for r in renditions:
        for codec in r.codecs.split(","):
            codec = codec.strip()
            if codec and codec not in out:
                out.append(codec)
    return out


def _average(rendition: Rendition) -> int:
    """AVERAGE-BANDWIDTH of one rendition: measured when known, never above the peak."""
    return min(rendition.average_bandwidth or rendition.bandwidth, rendition.bandwidth)


def video_renditions(video: Video) -> list[Rendition]:
    """The video rungs, lowest bandwidth first (the order the master lists them)."""
    rungs = [r for r in video.renditions if r.kind == TrackKind.VIDEO]
    return sorted(rungs, key=lambda r: (r.bandwidth, r.height, r.name))


def audio_renditions(video: Video) -> list[Rendition]:
    """The audio renditions in catalog order (the first is the default)."""
    return [r for r in video.renditions if r.kind == TrackKind.AUDIO]


def render_master(video: Video, *, query: str = "") -> str:
    """Render the master (multivariant) playlist.

    Args:
        video: the catalog entry; needs at least one rendition.
        query: appended to every URI (a signed-URL token, docs/architecture.md §7), "" for none.

    Returns:
        Playlist text ending with a newline.

    Raises:
        ValueError: when the video has no renditions yet (nothing to play).
    """
    rungs = video_renditions(video)
    audios = audio_renditions(video)
    if not rungs and not audios:
        raise ValueError(f"video {video.id} has no renditions yet")
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]

    if rungs and audios:
        names = _unique_names([language_name(a.language, a.name) for a in audios])
        for i, (audio, name) in enumerate(zip(audios, names, strict=True)):
            attrs = [
                "TYPE=AUDIO",
                f"GROUP-ID={_quoted(AUDIO_GROUP)}",
                f"NAME={_quoted(name)}",
            ]
            if audio.language:
                attrs.append(f"LANGUAGE={_quoted(audio.language)}")
            attrs += [f"DEFAULT={'YES' if i == 0 else 'NO'}", "AUTOSELECT=YES"]
            if audio.channels:
                attrs.append(f"CHANNELS={_quoted(str(audio.channels))}")
            attrs.append(f"URI={_quoted(with_query(audio.name + '.m3u8', query))}")
            lines.append("#EXT-X-MEDIA:" + ",".join(attrs))

    subtitles = video.subtitles if rungs else []
    names = _unique_names([s.name or s.language for s in subtitles])
    for i, (sub, name) in enumerate(zip(subtitles, names, strict=True)):
        attrs = [
            "TYPE=SUBTITLES",
            f"GROUP-ID={_quoted(SUBTITLE_GROUP)}",
            f"NAME={_quoted(name)}",
            f"LANGUAGE={_quoted(sub.language)}",
            f"DEFAULT={'YES' if sub.default else 'NO'}",
            "AUTOSELECT=YES",
            f"URI={_quoted(with_query(f'subtitles/{i}.m3u8', query))}",
        ]
        lines.append("#EXT-X-MEDIA:" + ",".join(attrs))

    if not rungs:  # audio-only source: each audio rendition is a variant of its own
        for audio in sorted(audios, key=lambda r: r.bandwidth):
            lines.append(
                f"#EXT-X-STREAM-INF:BANDWIDTH={audio.bandwidth},"
                f"AVERAGE-BANDWIDTH={_average(audio)},"
                f"CODECS={_quoted(','.join(_codecs([audio])))},CLOSED-CAPTIONS=NONE"
            )
            lines.append(with_query(f"{audio.name}.m3u8", query))
        return "\n".join(lines) + "\n"

    audio_peak = max((a.bandwidth for a in audios), default=0)
    audio_avg = max((_average(a) for a in audios), default=0)
    for rung in rungs:
        attrs = [
            f"BANDWIDTH={rung.bandwidth + audio_peak}",
            f"AVERAGE-BANDWIDTH={_average(rung) + audio_avg}",
        ]
        if rung.width > 0 and rung.height > 0:
            attrs.append(f"RESOLUTION={rung.width}x{rung.height}")
        attrs.append(f"CODECS={_quoted(','.join(_codecs([rung, *audios])))}")
        if rung.frame_rate > 0:
            attrs.append(f"FRAME-RATE={rung.frame_rate:.3f}")
        if audios:
            attrs.append(f"AUDIO={_quoted(AUDIO_GROUP)}")
        if subtitles:
            attrs.append(f"SUBTITLES={_quoted(SUBTITLE_GROUP)}")
        attrs.append("CLOSED-CAPTIONS=NONE")
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(with_query(f"{rung.name}.m3u8", query))
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    """An EXTINF duration: decimal floating point, microsecond precision."""
    return f"{seconds:.6f}"


def target_duration(video: Video, segments: Sequence[Segment]) -> int:
    """EXT-X-TARGETDURATION: the longest segment rounded up (RFC 8216 §4.3.3.1).

    While a video is transcoding the value must not change as segments arrive
    (§6.2.1), so the longest segment its timeline plans (``longest_segment``:
    segments cut on a passed-through source's keyframes), else the planned
    segment length, is a floor for it.
    """
    longest = max((round(s.duration, 6) for s in segments), default=0.0)
    if video.state != VideoState.READY:
        longest = max(longest, video.segment_seconds, video.longest_segment or 0.0)
    return max(1, math.ceil(longest))


def render_media(
    video: Video,
    rendition: str,
    segments: Iterable[Segment],
    *,
    media_base: str = DEFAULT_MEDIA_BASE,
    query: str = "",
) -> str:
    """Render the media playlist of one rendition.

    Args:
        video: the catalog entry (its state picks EVENT or VOD).
        rendition: the rendition name; must be one of ``video.renditions``.
        segments: recorded segments (of any renditions; the others are ignored).
        media_base: the media origin the segment URIs point at.
        query: appended to every URI (a signed-URL token), "" for none.

    Returns:
        Playlist text: ``EVENT`` without ``EXT-X-ENDLIST`` unless the video is
        ready, then ``VOD`` with it. Only the contiguous run of segments from
        seq 0 is listed.

    Raises:
        ValueError: when ``rendition`` is not a rendition of the video.
    """
    if rendition not in {r.name for r in video.renditions}:
        raise ValueError(f"video {video.id} has no rendition {rendition!r}")
    listed = manifest_segments(video, rendition, segments)
    ready = video.state == VideoState.READY
    init = with_query(media_url(init_key(video, rendition), media_base), query)
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{VERSION}",
        f"#EXT-X-TARGETDURATION:{target_duration(video, listed)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        f"#EXT-X-PLAYLIST-TYPE:{'VOD' if ready else 'EVENT'}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f"#EXT-X-MAP:URI={_quoted(init)}",
    ]
    for seg in listed:
        lines.append(f"#EXTINF:{_duration(seg.duration)},")
        lines.append(with_query(media_url(seg.key, media_base), query))
    if ready:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def render_subtitles(
    video: Video, index: int, *, media_base: str = DEFAULT_MEDIA_BASE, query: str = ""
) -> str:
    """Render the media playlist of WebVTT track ``index``: one segment, the whole file.

    Args:
        video: the catalog entry.
        index: position in ``video.subtitles`` (the master's ``subtitles/<index>.m3u8``).
        media_base: the media origin.
        query: appended to the URI (a signed-URL token), "" for none.

    Returns:
        A VOD playlist whose single segment lasts the whole video.

    Raises:
        ValueError: when there is no such track.
    """
    if not 0 <= index < len(video.subtitles):
        raise ValueError(f"video {video.id} has no subtitle track {index}")
    length = max(video.duration, 0.001)
    return (
        "\n".join(
            [
                "#EXTM3U",
                f"#EXT-X-VERSION:{VERSION}",
                f"#EXT-X-TARGETDURATION:{max(1, math.ceil(round(length, 6)))}",
                "#EXT-X-MEDIA-SEQUENCE:0",
                "#EXT-X-PLAYLIST-TYPE:VOD",
                f"#EXTINF:{_duration(length)},",
                with_query(media_url(video.subtitles[index].key, media_base), query),
                "#EXT-X-ENDLIST",
            ]
        )
        + "\n"
    )
