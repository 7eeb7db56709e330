"""DASH MPDs: parsed back with `mpegdash`; timelines add up, codecs and bandwidth match."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given, settings
from mpegdash.parser import MPEGDASHParser

from kubevod.manifests import dash
from kubevod.models import Segment, TrackKind, Video, VideoState
from tests.unit.manifest_cases import catalog_entries, ladder_video, segments_for


def seconds(duration: str) -> float:
    match = re.fullmatch(r"PT(\d+(?:\.\d+)?)S", duration)
    assert match, duration
    return float(match.group(1))


def parse(text: str) -> Any:
    ET.fromstring(text.split("\n", 1)[1])  # well-formed XML
    mpd = MPEGDASHParser.parse(text)
    assert mpd.type == "static"
    assert mpd.profiles == dash.PROFILE
    return mpd


def representations(mpd: Any) -> dict[str, tuple[Any, Any]]:
    """Representation id -> (adaptation set, representation)."""
    return {
        rep.id: (aset, rep)
        for aset in mpd.periods[0].adaptation_sets
        for rep in aset.representations
    }


def timeline_ticks(rep: Any) -> list[int]:
    """Every segment's duration in ticks, with repeats expanded; checks t continuity."""
    template = rep.segment_templates[0]
    ticks: list[int] = []
    position = None
    for s in template.segment_timelines[0].Ss:
        if position is not None and s.t is not None:
            assert s.t == position, "the timeline has no gaps or overlaps"
        position = (s.t if s.t is not None else position or 0) + s.d * ((s.r or 0) + 1)
        ticks += [s.d] * ((s.r or 0) + 1)
    return ticks


def test_ready_mpd_describes_every_rendition_with_codecs_and_bandwidth() -> None:
    video = ladder_video()
    mpd = parse(dash.render_mpd(video, segments_for(video, [4.0, 4.0, 2.0])))

    assert seconds(mpd.media_presentation_duration) == 10.0
    period = mpd.periods[0]
    assert period.base_urls[0].base_url_value == "/media/demo-1/g1/"
    kinds = [(a.content_type, a.mime_type) for a in period.adaptation_sets]
    assert kinds == [("video", "video/mp4"), ("audio", "audio/mp4"), ("text", "text/vtt")]
    reps = representations(mpd)
    for rendition in video.renditions:
        _, rep = reps[rendition.name]
        assert rep.codecs == rendition.codecs
        assert rep.bandwidth == rendition.bandwidth
    assert [r.id for r in period.adaptation_sets[0].representations] == ["360p", "720p", "1080p"]
    _, v720 = reps["720p"]
    assert (v720.width, v720.height, v720.frame_rate) == (1280, 720, "30")
    _, sound = reps["audio"]
    assert sound.audio_sampling_rate == "48000"
    assert sound.audio_channel_configurations[0].value == "2"
    assert reps["sub0"][1].base_urls[0].base_url_value == "/media/demo-1/g1/subs/en.vtt"


def test_timeline_sums_to_duration_in_each_timescale() -> None:
    video = ladder_video()
    mpd = parse(dash.render_mpd(video, segments_for(video, [4.0, 4.0, 2.0])))

    reps = representations(mpd)
    assert timeline_ticks(reps["720p"][1]) == [360_000, 360_000, 180_000]
    assert timeline_ticks(reps["audio"][1]) == [192_000, 192_000, 96_000]
    assert sum(timeline_ticks(reps["audio"][1])) / 48_000 == 10.0


def test_segment_template_matches_the_worker_key_layout() -> None:
    video = ladder_video()
    mpd = parse(dash.render_mpd(video, segments_for(video, [4.0])))

    template = representations(mpd)["720p"][1].segment_templates[0]
    assert template.initialization == "$RepresentationID$/init.mp4"
    assert template.media == "$RepresentationID$/$Number$.m4s"
    assert template.start_number == 0
    # expanded for the first segment it is exactly the worker's object key
    base = "videos/demo-1/g1/"
    assert (
        base + template.media.replace("$RepresentationID$", "720p").replace("$Number$", "0")
        == segments_for(video, [4.0])[1].key
    )


def test_odd_durations_never_drift() -> None:
    video = ladder_video()
    durations = [1 / 3] * 30 + [0.1]

    mpd = parse(dash.render_mpd(video, segments_for(video, durations)))

    ticks = timeline_ticks(representations(mpd)["720p"][1])
    assert len(ticks) == 31
    assert sum(ticks) == round(sum(durations) * 90_000)


def test_transcoding_mpd_is_cut_to_what_every_track_has() -> None:
    video = ladder_video(VideoState.TRANSCODING)
    segs = segments_for(video, [4.0] * 3, ["360p", "720p", "1080p"])
    segs += segments_for(video, [4.0] * 2, ["audio"])
    segs = [s for s in segs if not (s.rendition == "1080p" and s.seq == 1)]

    mpd = parse(dash.render_mpd(video, segs))

    assert seconds(mpd.media_presentation_duration) == 4.0
    reps = representations(mpd)
    assert len(timeline_ticks(reps["360p"][1])) == 1
    assert len(timeline_ticks(reps["1080p"][1])) == 1


def test_renditions_without_segments_are_left_out_while_transcoding() -> None:
    video = ladder_video(VideoState.TRANSCODING)
    segs = segments_for(video, [4.0], ["360p", "audio"])

    mpd = parse(dash.render_mpd(video, segs))

    assert set(representations(mpd)) == {"360p", "audio", "sub0"}


def test_mpd_without_segments_is_refused() -> None:
    with pytest.raises(ValueError, match="no segments"):
        dash.render_mpd(ladder_video(VideoState.QUEUED), [])


@pytest.mark.parametrize(
    ("fps", "text"),
    [
        (30.0, "30"),
        (29.97, "30000/1001"),
        (23.976, "24000/1001"),
        (59.94, "60000/1001"),
        (12.5, "25/2"),
    ],
)
def test_frame_rate_is_an_exact_fraction(fps: float, text: str) -> None:
    assert dash.frame_rate(fps) == text


def test_custom_media_origin_is_the_base_url() -> None:
    video = ladder_video()

    mpd = parse(dash.render_mpd(video, segments_for(video, [4.0]), media_base="https://cdn.x/m"))

    assert mpd.periods[0].base_urls[0].base_url_value == "https://cdn.x/m/demo-1/g1/"


@settings(max_examples=150, deadline=None)
@given(catalog_entries())
def test_every_catalog_entry_renders_a_consistent_mpd(entry: tuple[Video, list[Segment]]) -> None:
    video, segments = entry
    has_any = any(s.seq == 0 for s in segments)
    if not has_any:
        with pytest.raises(ValueError):
            dash.render_mpd(video, segments)
        return
    mpd = parse(dash.render_mpd(video, segments))
    length = seconds(mpd.media_presentation_duration)
    reps = representations(mpd)
    by_name = {r.name: r for r in video.renditions}
    for name, (aset, rep) in reps.items():
        if name.startswith("sub") and aset.content_type == "text":
            continue
        rendition = by_name[name]
        assert rep.codecs == rendition.codecs and rep.bandwidth == rendition.bandwidth
        assert aset.content_type == rendition.kind.value
        ticks = timeline_ticks(rep)
        total = sum(ticks) / rendition.timescale
        if video.state == VideoState.READY:
            # every rendition has every segment: each timeline is the whole video
            assert total == pytest.approx(video.duration, abs=1 / rendition.timescale)
        else:
            # nothing beyond the advertised length; the shortest track ends exactly there
            assert total <= length + 0.002
    if video.state != VideoState.READY:
        totals = [
            sum(timeline_ticks(rep)) / by_name[n].timescale
            for n, (a, rep) in reps.items()
            if a.content_type != "text"
        ]
        assert min(totals) == pytest.approx(length, abs=0.002)
    assert sum(1 for r in video.renditions if r.kind == TrackKind.VIDEO) >= len(
        [a for a in mpd.periods[0].adaptation_sets if a.content_type == "video"]
    )


def test_signed_url_token_is_in_the_templates() -> None:
    video = ladder_video()

    mpd = parse(dash.render_mpd(video, segments_for(video, [4.0]), query="md5=x&expires=9"))

    _, rep = representations(mpd)["720p"]
    assert rep.segment_templates[0].media == "$RepresentationID$/$Number$.m4s?md5=x&expires=9"
    assert rep.segment_templates[0].initialization.endswith("init.mp4?md5=x&expires=9")
    assert representations(mpd)["sub0"][1].base_urls[0].base_url_value.endswith("?md5=x&expires=9")
