"""Small pure parts of the worker: fMP4 box reading, trickplay index, audio grouping."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

import pytest
from kubevod.worker import hwaccel
from kubevod.worker.errors import MediaFormatError, one_line
from kubevod.worker.ffmpeg import TrickplayOut
from kubevod.worker.mp4 import av1_codecs, hevc_codecs, parse_fragments, parse_init
from kubevod.worker.probe import SubtitleStream
from kubevod.worker.process import available_cpus
from kubevod.worker.thumbs import (
    fit,
    plan_subtitles,
    plan_trickplay,
    trickplay_interval,
    trickplay_vtt,
)

from kubevod.timeline import Timeline
from tests.fixtures.util import require


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return box(kind, bytes([version]) + flags.to_bytes(3, "big") + payload)


def init_segment(entry: bytes, handler: bytes, timescale: int) -> bytes:
    mdhd = full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, 0, 0, 0))
    hdlr = full(b"hdlr", 0, 0, struct.pack(">I4s", 0, handler) + b"\0" * 12 + b"x\0")
    stsd = full(b"stsd", 0, 0, struct.pack(">I", 1) + entry)
    stbl = box(b"stbl", stsd)
    mdia = box(b"mdia", mdhd + hdlr + box(b"minf", stbl))
    trex = full(b"trex", 0, 0, struct.pack(">IIIII", 1, 1, 1024, 0, 0))
    return box(b"ftyp", b"iso6\0\0\0\0") + box(b"moov", box(b"trak", mdia) + box(b"mvex", trex))


def avc1(width: int, height: int, profile: int, compat: int, level: int) -> bytes:
    visual = b"\0" * 6 + struct.pack(">H", 1) + b"\0" * 16 + struct.pack(">HH", width, height)
    visual += b"\0" * (78 - 8 - len(visual) + 8)
    avcc = box(b"avcC", bytes([1, profile, compat, level, 0xFF, 0xE0, 0]))
    return box(b"avc1", visual + avcc)


def mp4a(channels: int, rate: int, aot: int) -> bytes:
    audio = (
        b"\0" * 6
        + struct.pack(">H", 1)
        + b"\0" * 8
        + struct.pack(">HHHHI", channels, 16, 0, 0, rate << 16)
    )
    asc = bytes([(aot << 3) | 0x01, 0x90])
    dsi = bytes([5, len(asc)]) + asc
    dcd = bytes([4, 13 + len(dsi), 0x40, 0x15]) + b"\0" * 11 + dsi
    esd = bytes([3, 3 + len(dcd), 0, 1, 0]) + dcd
    return box(b"mp4a", audio + full(b"esds", 0, 0, esd))


def test_video_init_gives_rfc6381_codecs_and_geometry() -> None:
    info = parse_init(init_segment(avc1(1280, 720, 0x64, 0x00, 0x1F), b"vide", 15360))
    assert (info.kind, info.codecs, info.width, info.height, info.timescale) == (
        "video", "avc1.64001f", 1280, 720, 15360,
    )  # fmt: skip
    assert info.default_sample_duration == 1024


def test_audio_init_gives_mp4a_object_type() -> None:
    info = parse_init(init_segment(mp4a(2, 48000, 2), b"soun", 48000))
    assert (info.kind, info.codecs, info.channels, info.sample_rate) == (
        "audio",
        "mp4a.40.2",
        2,
        48000,
    )
    assert parse_init(init_segment(mp4a(2, 44100, 5), b"soun", 44100)).codecs == "mp4a.40.5"


def fragment(base: int, durations: list[int], first_flags: int | None, version: int = 1) -> bytes:
    tfhd = full(b"tfhd", 0, 0x020000, struct.pack(">I", 1))
    tfdt = full(b"tfdt", version, 0, struct.pack(">Q" if version else ">I", base))
    flags = 0x001 | 0x100 | 0x200 | (0x004 if first_flags is not None else 0)
    body = struct.pack(">Ii", len(durations), 0)
    if first_flags is not None:
        body += struct.pack(">I", first_flags)
    for d in durations:
        body += struct.pack(">II", d, 100)
    trun = full(b"trun", 0, flags, body)
    return box(b"moof", box(b"traf", tfhd + tfdt + trun)) + box(b"mdat", b"\0" * 10)


def test_media_segment_timing_and_keyframe() -> None:
    data = box(b"styp", b"msdh\0\0\0\0") + fragment(90000, [3000] * 30, 0x02000000)
    frag = parse_fragments(data)
    assert (frag.start(90000), frag.duration(90000), frag.samples) == (1.0, 1.0, 30)
    assert frag.starts_with_sync
    two = fragment(0, [1024] * 47, None, version=0) + fragment(48128, [1024] * 47, None)
    joined = parse_fragments(two)
    assert (joined.start_ticks, joined.duration_ticks, joined.samples) == (0, 96256, 94)
    assert not parse_fragments(fragment(0, [1], 0x01010000)).starts_with_sync


@pytest.mark.parametrize("data", [b"", b"\0\0\0\x20moov", box(b"moov", b""), b"garbage" * 10])
def test_malformed_boxes_raise_media_format_error(data: bytes) -> None:
    with pytest.raises(MediaFormatError):
        parse_init(data)
    with pytest.raises(MediaFormatError):
        parse_fragments(data)


@pytest.mark.parametrize(
    ("start", "index"),
    [(0.0, 0), (0.97, 1), (1.003, 1), (4.96, 2), (5.013, 2), (8.99, 3), (20.011, 5)],
)
def test_audio_pieces_join_the_video_interval_they_start_in(start: float, index: int) -> None:
    assert Timeline.regular(1.0, 4.0).index(start) == index


def test_trickplay_plan_and_index() -> None:
    assert [trickplay_interval(d) for d in (20, 100, 1000, 7200)] == [1.0, 2.0, 5.0, 10.0]
    assert fit(1920, 1080, 160) == (160, 90) and fit(1080, 1920, 160) == (90, 160)
    plan = plan_trickplay(2.5, 1280, 720)
    assert plan == TrickplayOut(interval=1.0, width=160, height=90, columns=3, rows=1)
    vtt = trickplay_vtt(plan, 2.5, sheets=1)
    assert vtt == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:01.000\n0.jpg#xywh=0,0,160,90\n\n"
        "00:00:01.000 --> 00:00:02.000\n0.jpg#xywh=160,0,160,90\n\n"
        "00:00:02.000 --> 00:00:02.500\n0.jpg#xywh=320,0,160,90\n"
    )
    big = plan_trickplay(250, 1920, 1080)  # 2 s apart, 125 thumbs: two 10x10 sheets
    lines = trickplay_vtt(big, 250, sheets=2).splitlines()
    assert "1.jpg#xywh=0,0,160,90" in lines and lines[-1] == "1.jpg#xywh=640,180,160,90"


def test_only_text_subtitles_are_exported() -> None:
    subs = [SubtitleStream(2, "hdmv_pgs_subtitle"), SubtitleStream(3, "subrip", "eng"),
            SubtitleStream(4, "ass", None, default=False)]  # fmt: skip
    planned = plan_subtitles(subs)
    assert [(s.stream, s.name, s.language, s.default) for s in planned] == [
        (3, "0", "eng", True), (4, "1", "und", False),
    ]  # fmt: skip


def test_one_line() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    assert len(one_line("x" * 500)) == 300


# --- HEVC and AV1 codecs strings (hvcC, av1C) -----------------------------------------------


def hvcc(byte1: int, compat: int, constraints: bytes, level: int) -> bytes:
    return bytes([1, byte1]) + compat.to_bytes(4, "big") + constraints + bytes([level])


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (hvcc(0x01, 0x60000000, b"\x90" + bytes(5), 93), "hvc1.1.6.L93.90"),
        (hvcc(0x01, 0x60000000, b"\xb0" + bytes(5), 120), "hvc1.1.6.L120.B0"),
        (hvcc(0x02, 0x20000000, b"\x90" + bytes(5), 120), "hvc1.2.4.L120.90"),
        (hvcc(0x21, 0x60000000, b"\x90" + bytes(5), 150), "hvc1.1.6.H150.90"),
        (hvcc(0x41, 0x40000000, bytes(6), 90), "hvc1.A1.2.L90"),
        (hvcc(0x04, 0x08000000, b"\x98\x00\x02" + bytes(3), 93), "hvc1.4.10.L93.98.0.2"),
    ],
)
def test_hevc_codecs_string_follows_14496_15_annex_e(config: bytes, expected: str) -> None:
    assert hevc_codecs(config) == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (bytes([0x81, 0x08, 0x0C, 0]), "av01.0.08M.08"),
        (bytes([0x81, 0x00, 0x0C, 0]), "av01.0.00M.08"),
        (bytes([0x81, 0x0D, 0x4C, 0]), "av01.0.13M.10"),
        (bytes([0x81, 0x2D, 0x80, 0]), "av01.1.13H.08"),
        (bytes([0x81, 0x53, 0x60, 0]), "av01.2.19M.12"),
    ],
)
def test_av1_codecs_string_follows_the_av1_isobmff_binding(config: bytes, expected: str) -> None:
    assert av1_codecs(config) == expected


def test_av1_config_of_an_unknown_version_is_refused() -> None:
    with pytest.raises(MediaFormatError):
        av1_codecs(bytes([0x82, 0, 0, 0]))


HEVC_PROFILE = {"Main": 1, "Main 10": 2}
AV1_PROFILE = {"Main": 0, "High": 1}


@pytest.mark.parametrize(
    ("encoder", "pix_fmt", "extra"),
    [
        ("libx265", "yuv420p", ("-preset", "ultrafast", "-tag:v", "hvc1")),
        ("libx265", "yuv420p10le", ("-preset", "ultrafast", "-tag:v", "hvc1")),
        ("libsvtav1", "yuv420p", ("-preset", "12")),
        ("libsvtav1", "yuv420p10le", ("-preset", "12")),
    ],
)
def test_codecs_string_of_real_init_segments_agrees_with_ffprobe(
    encoder: str, pix_fmt: str, extra: tuple[str, ...], tmp_path: Path
) -> None:
    """Init segments made by ffmpeg now; ffprobe's profile/level is the independent reading."""
    ffmpeg, ffprobe = require("ffmpeg"), require("ffprobe")
    out = tmp_path / "init.mp4"
    subprocess.run(
        [
            ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=0.2",
            "-pix_fmt", pix_fmt, "-c:v", encoder, *extra,
            "-movflags", "frag_keyframe+empty_moov+default_base_moof", str(out),
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    probed = subprocess.run(
        [ffprobe, "-v", "error", "-of", "json", "-show_streams", str(out)],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    (stream,) = json.loads(probed.stdout)["streams"]
    init = parse_init(out.read_bytes())
    assert (init.kind, init.width, init.height) == ("video", 320, 180)
    depth = 10 if "10" in pix_fmt else 8
    if encoder == "libx265":
        profile = HEVC_PROFILE[stream["profile"]]
        compat = {1: "6", 2: "4"}[profile]
        assert init.codecs.startswith(f"hvc1.{profile}.{compat}.L{stream['level']}"), init
        assert stream["codec_tag_string"] == "hvc1"
    else:
        profile = AV1_PROFILE[stream["profile"]]
        assert init.codecs == f"av01.{profile}.{int(stream['level']):02d}M.{depth:02d}", init


def write_cgroup(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),  # cgroup v2, a pod limited to 1.5 CPUs
        ({"cpu.max": "max 100000\n"}, None),  # v2, no limit
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu.max": "garbage\n"}, None),  # unreadable: fall back to the affinity
        ({}, None),  # no cgroup files at all (not Linux, or not mounted)
    ],
)
def test_available_cpus_is_capped_by_the_cgroup_quota(
    tmp_path: Path, files: dict[str, str], quota: float | None
) -> None:
    affinity = float(len(os.sched_getaffinity(0)))
    got = available_cpus(write_cgroup(tmp_path, files))
    assert got == (min(affinity, quota) if quota else affinity)


def test_ffmpeg_filters_are_read_from_the_binary(tmp_path: Path) -> None:
    require("ffmpeg")
    hwaccel.clear_cache()
    names = hwaccel.filters("ffmpeg")
    assert {"scale", "split", "fps"} <= names  # every ffmpeg build has these
    assert hwaccel.filters(str(tmp_path / "no-such-ffmpeg")) == frozenset()
    assert hwaccel.scaler(str(tmp_path / "no-such-ffmpeg")) == "swscale"  # cannot tell: swscale
