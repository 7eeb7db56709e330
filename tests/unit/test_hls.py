"""HLS playlists: parsed back with the `m3u8` package and checked against RFC 8216."""

from __future__ import annotations

import math

import m3u8
import pytest
from hypothesis import given, settings

from kubevod.manifests import hls
from kubevod.manifests.common import media_url
from kubevod.models import Segment, Subtitle, TrackKind, Video, VideoState
from tests.unit.manifest_cases import audio, catalog_entries, ladder_video, rung, segments_for


def check_master_rfc8216(text: str) -> m3u8.M3U8:
    """The master-playlist rules of RFC 8216 §4.3.4 that a renderer can break."""
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    assert lines.count("#EXT-X-VERSION:7") == 1
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            assert not lines[i + 1].startswith("#"), "a variant tag is followed by its URI"
    parsed = m3u8.loads(text)
    assert parsed.is_variant
    groups: dict[tuple[str, str], list[m3u8.Media]] = {}
    for media in parsed.media:
        groups.setdefault((media.type, media.group_id), []).append(media)
    for members in groups.values():
        names = [m.name for m in members]
        assert len(names) == len(set(names)), "NAME is unique within a group (§4.3.4.1)"
        assert sum(m.default == "YES" for m in members) <= 1
        for m in members:
            assert m.default != "YES" or m.autoselect == "YES", "DEFAULT=YES needs AUTOSELECT=YES"
    for variant in parsed.playlists:
        info = variant.stream_info
        assert info.bandwidth and info.bandwidth > 0
        assert info.average_bandwidth is None or info.average_bandwidth <= info.bandwidth
        assert info.codecs
        assert info.closed_captions == "NONE"
        if info.audio:
            assert ("AUDIO", info.audio) in groups
        if info.subtitles:
            assert ("SUBTITLES", info.subtitles) in groups
    return parsed


def check_media_rfc8216(text: str) -> m3u8.M3U8:
    """The media-playlist rules of RFC 8216 §4.3.3 and §6.2.1 that a renderer can break."""
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    for tag in ("#EXT-X-VERSION", "#EXT-X-TARGETDURATION", "#EXT-X-MEDIA-SEQUENCE"):
        assert sum(line.startswith(tag + ":") for line in lines) == 1, tag
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert lines[i - 1].startswith("#EXTINF:"), "every URI has its EXTINF"
    parsed = m3u8.loads(text)
    assert not parsed.is_variant
    assert parsed.version == 7
    assert parsed.media_sequence == 0
    for segment in parsed.segments:
        assert round(segment.duration) <= parsed.target_duration, "EXTINF <= TARGETDURATION"
    if parsed.playlist_type == "vod":
        assert parsed.is_endlist
    return parsed


# --- master playlist -------------------------------------------------------------------


def test_master_lists_every_rung_lowest_first_with_audio_added_to_bandwidth() -> None:
    parsed = check_master_rfc8216(hls.render_master(ladder_video()))

    assert [p.uri for p in parsed.playlists] == ["360p.m3u8", "720p.m3u8", "1080p.m3u8"]
    first = parsed.playlists[0].stream_info
    assert first.bandwidth == 800_000 + 128_000
    assert first.average_bandwidth == 640_000 + 125_000
    assert first.resolution == (640, 360)
    assert first.codecs == "avc1.64001e,mp4a.40.2"
    assert first.frame_rate == 30.0
    assert first.audio == "audio"
    assert first.subtitles == "subs"


def test_master_declares_audio_and_subtitle_groups_with_readable_names() -> None:
    parsed = check_master_rfc8216(hls.render_master(ladder_video()))

    kinds = {(m.type, m.name, m.language, m.uri) for m in parsed.media}
    assert kinds == {
        ("AUDIO", "English", "en", "audio.m3u8"),
        ("SUBTITLES", "English", "en", "subtitles/0.m3u8"),
    }
    audio_tag = next(m for m in parsed.media if m.type == "AUDIO")
    assert audio_tag.default == "YES" and audio_tag.channels == "2"


def test_master_without_subtitles_has_no_subtitles_group() -> None:
    text = hls.render_master(ladder_video(subtitles=False))

    assert "TYPE=SUBTITLES" not in text and "SUBTITLES=" not in text
    check_master_rfc8216(text)


def test_master_of_silent_video_has_video_codec_only() -> None:
    video = Video(id="silent", renditions=[rung(720, 2_000_000)])

    parsed = check_master_rfc8216(hls.render_master(video))

    assert parsed.media == []
    info = parsed.playlists[0].stream_info
    assert info.codecs == "avc1.64001f" and info.audio is None
    assert info.bandwidth == 2_000_000


def test_master_of_several_audio_tracks_lists_each_codec_once_and_one_default() -> None:
    video = Video(
        id="multi",
        renditions=[rung(720, 2_000_000), audio("audio-en", "en"), audio("audio-en2", "en")],
    )

    parsed = check_master_rfc8216(hls.render_master(video))

    assert [m.name for m in parsed.media] == ["English", "English 2"]
    assert [m.default for m in parsed.media] == ["YES", "NO"]
    assert parsed.playlists[0].stream_info.codecs == "avc1.64001f,mp4a.40.2"


def test_master_of_audio_only_source_lists_audio_variants() -> None:
    video = Video(id="podcast", renditions=[audio()])

    parsed = check_master_rfc8216(hls.render_master(video))

    assert [p.uri for p in parsed.playlists] == ["audio.m3u8"]
    assert parsed.playlists[0].stream_info.codecs == "mp4a.40.2"


def test_master_without_renditions_is_refused() -> None:
    with pytest.raises(ValueError, match="no renditions"):
        hls.render_master(Video(id="queued"))


def test_master_attribute_values_never_break_quoting() -> None:
    video = Video(
        id="quotes",
        renditions=[rung(720, 2_000_000)],
        subtitles=[Subtitle(name='Director "cut"\ncomments', key="videos/quotes/g1/s.vtt")],
    )

    text = hls.render_master(video)

    assert "Director 'cut' comments" in text
    check_master_rfc8216(text)


def test_master_snapshot() -> None:
    assert hls.render_master(ladder_video()) == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:7\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="English",LANGUAGE="en",DEFAULT=YES,'
        'AUTOSELECT=YES,CHANNELS="2",URI="audio.m3u8"\n'
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=NO,'
        'AUTOSELECT=YES,URI="subtitles/0.m3u8"\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=928000,AVERAGE-BANDWIDTH=765000,RESOLUTION=640x360,"
        'CODECS="avc1.64001e,mp4a.40.2",FRAME-RATE=30.000,AUDIO="audio",SUBTITLES="subs",'
        "CLOSED-CAPTIONS=NONE\n"
        "360p.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=2928000,AVERAGE-BANDWIDTH=2365000,RESOLUTION=1280x720,"
        'CODECS="avc1.64001f,mp4a.40.2",FRAME-RATE=30.000,AUDIO="audio",SUBTITLES="subs",'
        "CLOSED-CAPTIONS=NONE\n"
        "720p.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=5128000,AVERAGE-BANDWIDTH=4125000,RESOLUTION=1920x1080,"
        'CODECS="avc1.640028,mp4a.40.2",FRAME-RATE=30.000,AUDIO="audio",SUBTITLES="subs",'
        "CLOSED-CAPTIONS=NONE\n"
        "1080p.m3u8\n"
    )


# --- media playlists -------------------------------------------------------------------


def test_ready_video_gets_vod_playlist_with_endlist() -> None:
    video = ladder_video()
    segs = segments_for(video, [4.0, 4.0, 2.0])

    parsed = check_media_rfc8216(hls.render_media(video, "720p", segs))

    assert parsed.playlist_type == "vod" and parsed.is_endlist
    assert parsed.target_duration == 4
    assert [s.duration for s in parsed.segments] == [4.0, 4.0, 2.0]
    assert [s.uri for s in parsed.segments] == [
        "/media/demo-1/g1/720p/0.m4s",
        "/media/demo-1/g1/720p/1.m4s",
        "/media/demo-1/g1/720p/2.m4s",
    ]
    assert parsed.segment_map[0].uri == "/media/demo-1/g1/720p/init.mp4"
    assert parsed.is_independent_segments


def test_transcoding_video_gets_event_playlist_without_endlist() -> None:
    video = ladder_video(VideoState.TRANSCODING)
    segs = segments_for(video, [4.0, 4.0])

    parsed = check_media_rfc8216(hls.render_media(video, "720p", segs))

    assert parsed.playlist_type == "event" and not parsed.is_endlist
    assert len(parsed.segments) == 2


def test_event_playlist_lists_only_contiguous_segments_from_zero() -> None:
    video = ladder_video(VideoState.TRANSCODING)
    segs = [s for s in segments_for(video, [4.0] * 5) if s.seq != 2]

    parsed = check_media_rfc8216(hls.render_media(video, "720p", reversed(segs)))

    assert [s.uri.rsplit("/", 1)[1] for s in parsed.segments] == ["0.m4s", "1.m4s"]


def test_event_playlist_without_segments_is_valid_and_keeps_planned_target() -> None:
    video = ladder_video(VideoState.QUEUED).model_copy(update={"segment_seconds": 6.0})

    parsed = check_media_rfc8216(hls.render_media(video, "360p", []))

    assert parsed.segments == [] and parsed.target_duration == 6


def test_a_keyframe_timeline_keeps_its_longest_segment_as_target_while_transcoding() -> None:
    """Segments cut on a passed-through source's keyframes may run longer than planned;
    the target of an EVENT playlist is set from the first segment on and never changes."""
    video = ladder_video(VideoState.TRANSCODING).model_copy(update={"longest_segment": 6.2})
    early = check_media_rfc8216(hls.render_media(video, "720p", segments_for(video, [1.5])))
    later = check_media_rfc8216(
        hls.render_media(video, "720p", segments_for(video, [1.5, 6.2, 3.1]))
    )
    assert early.target_duration == later.target_duration == 7


@pytest.mark.parametrize(
    ("durations", "target"),
    [([4.0, 4.0, 1.5], 4), ([4.004, 4.0], 5), ([2.0], 2), ([0.2], 1), ([3.9999999, 3.0], 4)],
)
def test_target_duration_is_longest_segment_rounded_up(durations: list[float], target: int) -> None:
    video = ladder_video()

    parsed = check_media_rfc8216(hls.render_media(video, "720p", segments_for(video, durations)))

    assert parsed.target_duration == target


def test_audio_playlist_and_custom_media_origin() -> None:
    video = ladder_video()
    segs = segments_for(video, [4.0])

    text = hls.render_media(video, "audio", segs, media_base="https://cdn.example/media/")

    parsed = check_media_rfc8216(text)
    assert parsed.segments[0].uri == "https://cdn.example/media/demo-1/g1/audio/0.m4s"
    assert parsed.segment_map[0].uri == "https://cdn.example/media/demo-1/g1/audio/init.mp4"


def test_new_generation_points_at_new_urls() -> None:
    video = ladder_video().model_copy(update={"generation": 2})
    segs = segments_for(video, [4.0])

    parsed = m3u8.loads(hls.render_media(video, "720p", segs))

    assert parsed.segments[0].uri == "/media/demo-1/g2/720p/0.m4s"


def test_unknown_rendition_is_refused() -> None:
    with pytest.raises(ValueError, match="no rendition"):
        hls.render_media(ladder_video(), "4320p", [])


def test_media_playlist_snapshot() -> None:
    video = ladder_video(VideoState.TRANSCODING)
    segs = [
        Segment(rendition="360p", seq=0, duration=4.0, key="videos/demo-1/g1/360p/0.m4s"),
        Segment(rendition="720p", seq=0, duration=4.0, key="videos/demo-1/g1/720p/0.m4s"),
    ]

    assert hls.render_media(video, "360p", segs) == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:7\n"
        "#EXT-X-TARGETDURATION:4\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:EVENT\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MAP:URI="/media/demo-1/g1/360p/init.mp4"\n'
        "#EXTINF:4.000000,\n"
        "/media/demo-1/g1/360p/0.m4s\n"
    )


def test_subtitle_playlist_is_one_vtt_segment_lasting_the_whole_video() -> None:
    parsed = check_media_rfc8216(hls.render_subtitles(ladder_video(), 0))

    assert parsed.playlist_type == "vod" and parsed.is_endlist
    assert [(s.uri, s.duration) for s in parsed.segments] == [
        ("/media/demo-1/g1/subs/en.vtt", 10.0)
    ]
    with pytest.raises(ValueError):
        hls.render_subtitles(ladder_video(), 1)


# --- properties over random catalog entries ------------------------------------------


@settings(max_examples=150, deadline=None)
@given(catalog_entries())
def test_every_catalog_entry_renders_valid_playlists(entry: tuple[Video, list[Segment]]) -> None:
    video, segments = entry
    master = check_master_rfc8216(hls.render_master(video))
    rungs = [r for r in video.renditions if r.kind == TrackKind.VIDEO]
    audios = [r for r in video.renditions if r.kind == TrackKind.AUDIO]
    assert len(master.playlists) == (len(rungs) or len(audios))
    for variant in master.playlists:
        for codec in {a.codecs for a in audios}:
            assert codec in (variant.stream_info.codecs or "").split(",")

    for rendition in video.renditions:
        parsed = check_media_rfc8216(hls.render_media(video, rendition.name, segments))
        ready = video.state == VideoState.READY
        assert parsed.is_endlist == ready
        assert parsed.playlist_type == ("vod" if ready else "event")
        mine = sorted(s.seq for s in segments if s.rendition == rendition.name)
        expected = 0
        while expected < len(mine) and mine[expected] == expected:
            expected += 1
        assert len(parsed.segments) == expected
        if ready and parsed.segments:
            longest = max(s.duration for s in parsed.segments)
            assert parsed.target_duration == max(1, math.ceil(round(longest, 6)))


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("videos/a1/g1/720p/0.m4s", "/media/a1/g1/720p/0.m4s"),
        ("videos/a1/g1/subs/en US.vtt", "/media/a1/g1/subs/en%20US.vtt"),
        ("videos/a1/g1/subs/ö#?.vtt", "/media/a1/g1/subs/%C3%B6%23%3F.vtt"),
    ],
)
def test_media_urls_are_escaped_only_when_needed(key: str, url: str) -> None:
    assert media_url(key) == url


def test_media_url_refuses_keys_outside_videos() -> None:
    with pytest.raises(ValueError):
        media_url("secrets/x")


def test_signed_url_token_is_passed_on_to_every_uri() -> None:
    video = ladder_video()
    token = "md5=abc_-&expires=2000000000"

    master = m3u8.loads(hls.render_master(video, query=token))
    media = m3u8.loads(hls.render_media(video, "720p", segments_for(video, [4.0]), query=token))
    subs = m3u8.loads(hls.render_subtitles(video, 0, query=token))

    uris = [p.uri for p in master.playlists] + [m.uri for m in master.media]
    uris += [media.segment_map[0].uri, media.segments[0].uri, subs.segments[0].uri]
    assert all(uri.endswith("?" + token) for uri in uris), uris
