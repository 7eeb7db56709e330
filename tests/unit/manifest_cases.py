"""Catalog entries for the manifest tests: a hand-made ladder and hypothesis strategies."""

from __future__ import annotations

from hypothesis import strategies as st

from kubevod.models import Rendition, Segment, Subtitle, TrackKind, Video, VideoState

H264 = {1080: "avc1.640028", 720: "avc1.64001f", 480: "avc1.64001e", 360: "avc1.64001e"}


def rung(height: int, bandwidth: int, *, fps: float = 30.0, name: str | None = None) -> Rendition:
    return Rendition(
        name=name or f"{height}p",
        width=height * 16 // 9 // 2 * 2,
        height=height,
        frame_rate=fps,
        bandwidth=bandwidth,
        average_bandwidth=bandwidth * 4 // 5,
        codecs=H264.get(height, "avc1.64001f"),
    )


def audio(name: str = "audio", language: str | None = "en") -> Rendition:
    return Rendition(
        name=name,
        kind=TrackKind.AUDIO,
        bandwidth=128_000,
        average_bandwidth=125_000,
        codecs="mp4a.40.2",
        timescale=48_000,
        language=language,
        channels=2,
        sample_rate=48_000,
    )


def segments_for(
    video: Video, durations: list[float], renditions: list[str] | None = None
) -> list[Segment]:
    """Segments with these durations for every rendition (or the named ones)."""
    out: list[Segment] = []
    for name in renditions or [r.name for r in video.renditions]:
        start = 0.0
        for seq, duration in enumerate(durations):
            out.append(
                Segment(
                    rendition=name,
                    seq=seq,
                    duration=duration,
                    start=start,
                    size=1000,
                    key=f"{video.media_prefix()}/{name}/{seq}.m4s",
                )
            )
            start += duration
    return out


def ladder_video(state: VideoState = VideoState.READY, *, subtitles: bool = True) -> Video:
    """A 10 s video: 1080p/720p/360p, one English audio track, one WebVTT track."""
    return Video(
        id="demo-1",
        title="Demo",
        state=state,
        duration=10.0,
        renditions=[rung(1080, 5_000_000), rung(720, 2_800_000), rung(360, 800_000), audio()],
        subtitles=[Subtitle(name="English", language="en", key="videos/demo-1/g1/subs/en.vtt")]
        if subtitles
        else [],
    )


_names = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,10}\Z")


@st.composite
def catalog_entries(draw: st.DrawFn) -> tuple[Video, list[Segment]]:
    """A random catalog entry and its recorded segments (some missing while transcoding)."""
    names = draw(st.lists(_names, min_size=1, max_size=6, unique=True))
    n_audio = draw(st.integers(0, min(2, len(names) - 1)))
    renditions: list[Rendition] = []
    for i, name in enumerate(names):
        if i < n_audio:
            renditions.append(
                Rendition(
                    name=name,
                    kind=TrackKind.AUDIO,
                    bandwidth=draw(st.integers(32_000, 320_000)),
                    codecs=draw(st.sampled_from(["mp4a.40.2", "opus", "ac-3"])),
                    timescale=draw(st.sampled_from([44_100, 48_000])),
                    language=draw(st.sampled_from([None, "en", "fr", "en"])),
                    channels=draw(st.sampled_from([None, 2, 6])),
                )
            )
        else:
            renditions.append(
                Rendition(
                    name=name,
                    width=draw(st.integers(0, 3840)),
                    height=draw(st.integers(0, 2160)),
                    frame_rate=draw(st.sampled_from([0.0, 23.976, 25.0, 29.97, 30.0, 59.94, 60.0])),
                    bandwidth=draw(st.integers(100_000, 20_000_000)),
                    average_bandwidth=draw(st.integers(0, 20_000_000)),
                    codecs=draw(
                        st.sampled_from(["avc1.640028", "hvc1.1.6.L93.B0", "av01.0.08M.08"])
                    ),
                    timescale=draw(st.sampled_from([90_000, 15_360, 30_000])),
                )
            )
    seg_len = draw(st.sampled_from([2.0, 4.0, 6.0, 10.0]))
    count = draw(st.integers(0, 30))
    durations = [seg_len] * count
    if count:
        durations[-1] = draw(st.floats(0.04, seg_len, allow_nan=False))
    state = draw(st.sampled_from(list(VideoState)))
    video = Video(
        id=draw(st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,20}\Z")),
        state=state,
        duration=sum(durations),
        segment_seconds=seg_len,
        generation=draw(st.integers(1, 5)),
        renditions=renditions,
        subtitles=[
            Subtitle(name=f"Track {i}", language=lang, key=f"videos/x/g1/subs/{i}.vtt")
            for i, lang in enumerate(
                draw(st.lists(st.sampled_from(["en", "de", "und"]), max_size=3))
            )
        ],
    )
    segments = segments_for(video, durations)
    if state != VideoState.READY and segments:
        # while transcoding, some segments are not there yet (and they finish out of order)
        segments = draw(
            st.lists(st.sampled_from(segments), unique_by=lambda s: (s.rendition, s.seq))
        )
    return video, draw(st.permutations(segments))
