"""Checks of a finished transcode, read back from the real store with ffprobe (worker tests).

Independent of the worker's own MP4 reader: keyframes, timestamps, profiles
and levels come from ffprobe on the bytes that were uploaded.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import m3u8
from kubevod.worker.settings import WorkerSettings

from kubevod.catalog.base import Catalog
from kubevod.manifests.hls import render_master, render_media
from kubevod.models import IMMUTABLE, TrackKind, Video, VideoState
from kubevod.store.base import ObjectStore
from tests.fixtures.util import require

#: H.264 profile names as ffprobe prints them -> profile_idc (RFC 6381 avc1.PP....).
PROFILE_IDC = {"Constrained Baseline": 66, "Baseline": 66, "Main": 77, "High": 100}
#: HEVC and AV1 profile names as ffprobe prints them -> the number in the codecs string.
HEVC_PROFILE = {"Main": 1, "Main 10": 2, "Main Still Picture": 3, "Rext": 4}
AV1_PROFILE = {"Main": 0, "High": 1, "Professional": 2}
#: ffprobe's codec_name per job codec.
CODEC_NAME = {"h264": "h264", "hevc": "hevc", "av1": "av1"}


#: The first segment of ``fast_settings`` (s).
FIRST_SEGMENT = 1.0


def fast_settings(**changes: Any) -> WorkerSettings:
    """Worker settings for tests: the fastest x264 preset and the test environment's ffmpeg.

    The first segment is 1 s, not the default 0.5 s, so the tests' timelines read in
    whole seconds; ``test_the_default_first_segment_is_half_a_second_in_every_rung``
    in test_pipeline.py holds the default.
    """
    values: dict[str, Any] = {
        "x264_preset": "ultrafast",
        "first_segment_seconds": FIRST_SEGMENT,
        "ffmpeg": require("ffmpeg"),
        "ffprobe": require("ffprobe"),
        "poll_interval": 0.02,
    }
    values.update(changes)
    return WorkerSettings(**values)


def ffprobe_json(path: Path, *args: str) -> dict[str, Any]:
    argv = [require("ffprobe"), "-v", "error", "-of", "json", *args, str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def download_rendition(store: ObjectStore, video: Video, rendition: str, folder: Path) -> Path:
    """init.mp4 followed by every recorded segment, as one playable file."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{rendition}.mp4"
    prefix = video.media_prefix()
    with out.open("wb") as sink:
        sink.write(store.get(f"{prefix}/{rendition}/init.mp4"))
        n = 0
        while True:
            key = f"{prefix}/{rendition}/{n}.m4s"
            try:
                sink.write(store.get(key))
            except Exception:
                break
            n += 1
    return out


def keyframe_times(path: Path) -> list[float]:
    """Presentation times of the keyframes of the first video stream (ffprobe)."""
    data = ffprobe_json(path, "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags")
    return sorted(
        round(float(p["pts_time"]), 3) for p in data["packets"] if "K" in p.get("flags", "")
    )


def expected_codecs(stream: dict[str, Any]) -> tuple[str, str]:
    """(profile hex, level hex) of an avc1 codecs string, from ffprobe's stream."""
    return f"{PROFILE_IDC[stream['profile']]:02x}", f"{int(stream['level']):02x}"


def expected_codecs_prefix(codec: str, stream: dict[str, Any]) -> str:
    """What an RFC 6381 string must start with, from ffprobe's view of the stream (hevc, av1)."""
    if codec == "hevc":
        return f"hvc1.{HEVC_PROFILE[stream['profile']]}."
    depth = 10 if "10" in stream.get("pix_fmt", "") else 8
    return f"av01.{AV1_PROFILE[stream['profile']]}.{int(stream['level']):02d}M.{depth:02d}"


def check_codecs_string(codec: str, codecs: str, full: dict[str, Any]) -> None:
    """The rendition's codecs string agrees with ffprobe on the uploaded bytes."""
    if codec == "h264":
        profile, level = expected_codecs(full)
        assert codecs.startswith("avc1.")
        assert (codecs[5:7], codecs[9:11]) == (profile, level)
        return
    assert codecs.startswith(expected_codecs_prefix(codec, full)), (codecs, full)
    if codec == "hevc":
        assert codecs.split(".")[3] == f"L{int(full['level'])}", (codecs, full["level"])


def check_ready_video(
    video: Video,
    catalog: Catalog,
    store: ObjectStore,
    work: Path,
    *,
    segment_seconds: float,
    first: float | None = None,
    audio_aligned: bool = True,
    codec: str = "h264",
    b_frames: bool = False,
) -> dict[str, list[float]]:
    """Assert everything a viewer relies on; returns segment start times per rendition.

    ``first``: the first segment's planned length (None: ``fast_settings``').
    """
    if first is None:
        first = FIRST_SEGMENT
    assert video.state == VideoState.READY, video.message
    assert video.progress == 100.0 and video.playable
    assert video.renditions, "no renditions"
    starts: dict[str, list[float]] = {}
    for rendition in video.renditions:
        segments = catalog.segments(video.id, rendition.name)
        assert [s.seq for s in segments] == list(range(len(segments))), rendition.name
        assert segments, f"{rendition.name} has no segments"
        for seg in segments:
            info = store.stat(seg.key)
            assert info.size == seg.size > 0
            assert info.cache_control == IMMUTABLE
            assert info.content_type == "video/mp4"
        starts[rendition.name] = [s.start for s in segments]
        if rendition.kind != TrackKind.VIDEO:
            continue
        durations = [s.duration for s in segments]
        frame = 1 / rendition.frame_rate + 1e-3
        # the short first segment, then segment length; only the last may be shorter
        planned = [first] + [segment_seconds] * (len(durations) - 1)
        for i, (got, want) in enumerate(zip(durations, planned, strict=True)):
            if i == len(durations) - 1:
                assert got <= want + frame, (rendition.name, durations)
            else:
                assert abs(got - want) <= frame, (rendition.name, durations)
        # the uploaded bytes themselves: init valid, each segment opens on a keyframe
        whole = download_rendition(store, video, rendition.name, work)
        init = work / f"{rendition.name}-init.mp4"
        init.write_bytes(store.get(f"{video.media_prefix()}/{rendition.name}/init.mp4"))
        (stream,) = ffprobe_json(init, "-show_streams")["streams"]
        assert stream["codec_name"] == CODEC_NAME[codec]
        assert (stream["width"], stream["height"]) == (rendition.width, rendition.height)
        (full,) = ffprobe_json(whole, "-select_streams", "v:0", "-show_streams")["streams"]
        check_codecs_string(codec, rendition.codecs, full)
        keys = keyframe_times(whole)
        # B-frames (x265, a source passed through) put the keyframe's presentation a few
        # frames after the decode start.
        lead = 4 / rendition.frame_rate if codec == "hevc" or b_frames else 0.002
        for seg in segments:
            assert any(-0.002 < k - seg.start < lead for k in keys), (
                rendition.name,
                seg.start,
                keys,
            )
        assert rendition.bandwidth >= rendition.average_bandwidth > 0
    video_starts = [starts[r.name] for r in video.renditions if r.kind == TrackKind.VIDEO]
    for other in video_starts[1:]:
        assert other == video_starts[0], "segments do not line up across rungs"
    for rendition in video.renditions:
        if rendition.kind == TrackKind.AUDIO:
            assert rendition.codecs == "mp4a.40.2"
            assert rendition.channels == 2 and rendition.sample_rate == 48000
            # audio segments follow the video boundaries within one AAC frame
            for a, v in zip(starts[rendition.name], video_starts[0], strict=False):
                assert abs(a - v) < 0.05 or not audio_aligned, (starts, rendition.name)
    return starts


def check_playlists(video: Video, catalog: Catalog) -> m3u8.M3U8:
    """Render the master and media playlists and parse them with the m3u8 package."""
    master = m3u8.loads(render_master(video))
    assert master.is_variant
    assert len(master.playlists) == sum(1 for r in video.renditions if r.kind == TrackKind.VIDEO)
    segments = catalog.segments(video.id)
    for rendition in video.renditions:
        media = m3u8.loads(render_media(video, rendition.name, segments))
        assert media.version == 7 and media.is_endlist
        assert media.segment_map and media.segment_map[0].uri.endswith(f"{rendition.name}/init.mp4")
        listed = [s for s in segments if s.rendition == rendition.name]
        assert len(media.segments) == len(listed)
        assert all(round(s.duration) <= media.target_duration for s in media.segments)
    return master
