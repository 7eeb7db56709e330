"""The one-process ffmpeg command, per accelerator: table and snapshot tests of pure builders.

No GPU is needed: NVENC/VAAPI/QSV command lines are checked as data (the
hardware trial itself is exercised in test_hwaccel_falls_back_*).
"""

from __future__ import annotations

import pytest
from kubevod.worker import hwaccel
from kubevod.worker.encoders import CODECS, codec_crf, encoder_name
from kubevod.worker.ffmpeg import (
    AudioOut,
    EncodePlan,
    PosterOut,
    TrickplayOut,
    audio_piece_seconds,
    filter_graph,
    gop_frames,
    keyframe_expr,
    poster_argv,
    scale_parents,
    subtitles_argv,
    thread_plan,
    transcode_argv,
    trial_argv,
    video_encoder_args,
)
from kubevod.worker.ladder import Rung

RUNGS = (
    Rung("720p", 1280, 720, 30.0, 2_800_000, 5_600_000),
    Rung("360p", 640, 360, 30.0, 800_000, 1_600_000),
)


def plan(**changes: object) -> EncodePlan:
    base: dict[str, object] = {
        "source": "/in/src.mkv",
        "video_stream": 0,
        "rungs": RUNGS,
        "audio": (AudioOut("audio", 1),),
        "segment_seconds": 4.0,
        "first_segment_seconds": 1.0,
        "trickplay": TrickplayOut(1.0, 160, 90, 10, 2),
    }
    base.update(changes)
    return EncodePlan(**base)  # type: ignore[arg-type]


def after(argv: list[str], flag: str) -> list[str]:
    """Every value that follows ``flag``."""
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


SOFTWARE_SNAPSHOT = [
    "ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "warning",
    "-nostats", "-progress", "pipe:1", "-stats_period", "0.5",
    "-filter_complex_threads", "1",
    "-protocol_whitelist", "file",
    "-format_whitelist", "mov,matroska,avi,mpegts,mpeg,flv,ogg,asf,mxf,nut,rm,dv,h264,hevc",
    "-i", "/in/src.mkv",
    "-filter_complex",
    "[0:0]split=2[s0][stp];"
    "[s0]scale=1280:720:flags=bicubic,setsar=1,format=yuv420p,split=2[v0][c0_1];"
    "[c0_1]scale=640:360:flags=bicubic,setsar=1,format=yuv420p[v1];"
    "[stp]fps=1/1:round=down,scale=160:90,setsar=1,format=yuvj420p,tile=10x2[tp]",
    "-map", "[v0]", "-map_metadata", "-1", "-map_chapters", "-1",
    "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-crf", "23",
    "-maxrate", "2800000", "-bufsize", "5600000", "-g", "240", "-keyint_min", "240",
    "-sc_threshold", "0", "-flags", "+cgop", "-forced-idr", "1",
    "-force_key_frames", "expr:gte(t,1+(n_forced-1)*4)",
    "-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "1", "-hls_list_size", "0",
    "-hls_playlist_type", "event", "-hls_flags", "temp_file+independent_segments",
    "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", "720p/%d.m4s",
    "720p/index.m3u8",
    "-map", "[v1]", "-map_metadata", "-1", "-map_chapters", "-1",
    "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-crf", "23",
    "-maxrate", "800000", "-bufsize", "1600000", "-g", "240", "-keyint_min", "240",
    "-sc_threshold", "0", "-flags", "+cgop", "-forced-idr", "1",
    "-force_key_frames", "expr:gte(t,1+(n_forced-1)*4)",
    "-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "1", "-hls_list_size", "0",
    "-hls_playlist_type", "event", "-hls_flags", "temp_file+independent_segments",
    "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", "360p/%d.m4s",
    "360p/index.m3u8",
    "-map", "0:1", "-map_metadata", "-1", "-map_chapters", "-1",
    "-c:a", "aac", "-b:a", "128000", "-ac", "2", "-ar", "48000",
    "-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "1", "-hls_list_size", "0",
    "-hls_playlist_type", "event", "-hls_flags", "temp_file+independent_segments",
    "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", "audio.pieces/%d.m4s",
    "audio.pieces/index.m3u8",
    "-map", "[tp]", "-c:v", "mjpeg", "-q:v", "5", "-fps_mode", "passthrough",
    "-f", "image2", "-start_number", "0", "trickplay/%d.jpg",
]  # fmt: skip


def test_software_snapshot() -> None:
    assert transcode_argv(plan()) == SOFTWARE_SNAPSHOT


def test_one_process_decodes_once_and_encodes_every_rung_and_audio_once() -> None:
    argv = transcode_argv(plan())
    assert argv.count("-i") == 1
    assert after(argv, "-c:v").count("libx264") == len(RUNGS)
    assert after(argv, "-c:a") == ["aac"]
    assert filter_graph(plan()).startswith("[0:0]split=")  # the source is split once


def test_rungs_scaled_from_a_scaled_rung_use_lanczos() -> None:
    rungs = tuple(Rung(f"{h}p", h * 16 // 9 // 2 * 2, h, 30.0, 1, 2) for h in (1080, 720, 480, 240))
    graph = filter_graph(plan(rungs=rungs, trickplay=None))
    assert graph == (
        "[0:0]split=1[s0];"
        "[s0]scale=1920:1080:flags=bicubic,setsar=1,format=yuv420p,split=2[v0][c0_1];"
        "[c0_1]scale=1280:720:flags=bicubic,setsar=1,format=yuv420p,split=2[v1][c1_2];"
        "[c1_2]scale=852:480:flags=lanczos,setsar=1,format=yuv420p,split=2[v2][c2_3];"
        "[c2_3]scale=426:240:flags=lanczos,setsar=1,format=yuv420p[v3]"
    )


def test_rungs_scaled_from_a_rung_use_zimg_lanczos_with_swscales_chroma_siting() -> None:
    rungs = tuple(Rung(f"{h}p", h * 16 // 9 // 2 * 2, h, 30.0, 1, 2) for h in (1080, 720, 480, 240))
    graph = filter_graph(plan(rungs=rungs, trickplay=None, scaler="zscale"))
    zimg = "filter=lanczos:chromalin=center:chromal=center"
    assert graph == (
        "[0:0]split=1[s0];"
        "[s0]scale=1920:1080:flags=bicubic,setsar=1,format=yuv420p,split=2[v0][c0_1];"
        f"[c0_1]zscale=w=1280:h=720:{zimg},setsar=1,format=yuv420p,split=2[v1][c1_2];"
        f"[c1_2]zscale=w=852:h=480:{zimg},setsar=1,format=yuv420p,split=2[v2][c2_3];"
        f"[c2_3]zscale=w=426:h=240:{zimg},setsar=1,format=yuv420p[v3]"
    )


def test_rungs_from_the_source_keep_swscale_which_also_converts_the_pixel_format() -> None:
    graph = filter_graph(plan(cascade=False, scaler="zscale"))
    assert "zscale" not in graph
    assert graph.count("flags=bicubic,setsar=1,format=yuv420p") == 2


LADDER = tuple(
    Rung(f"{h}p", w, h, 30.0, 1, 2)
    for w, h in ((1920, 1080), (1280, 720), (854, 480), (640, 360), (426, 240))
)


@pytest.mark.parametrize(
    ("cpus", "accel", "setting", "decoder", "encoders"),
    [
        (2.0, "software", 0, 1, [2, 1, 1, 1, 1]),  # measured: only the top rung threaded
        (1.5, "software", 0, 1, [2, 1, 1, 1, 1]),  # a fractional pod CPU limit
        (1.0, "software", 0, 1, [1, 1, 1, 1, 1]),  # one CPU: nothing to overlap
        (4.0, "software", 0, 1, [4, 4, 4, 1, 1]),  # main thread takes less on more CPUs
        (5.0, "software", 0, 1, [5, 5, 5, 5, 1]),
        (6.0, "software", 0, 0, [0] * 5),  # decoding alone is more than its share: auto
        (32.0, "software", 0, 0, [0] * 5),
        (0.0, "software", 0, 0, [0] * 5),  # CPUs unknown
        (2.0, "nvidia", 0, 0, [0] * 5),  # decoding feeds the GPU: keep its threads
        (2.0, "software", 3, 1, [3] * 5),  # the setting wins for every rung
        (8.0, "software", 3, 0, [3] * 5),
    ],
)
def test_threads_follow_the_machine(
    cpus: float, accel: str, setting: int, decoder: int, encoders: list[int]
) -> None:
    p = plan(rungs=LADDER, cpus=cpus, accelerator=accel, x264_threads=setting)
    assert thread_plan(p) == (decoder, tuple(encoders))
    argv = transcode_argv(p)
    before_input = argv[: argv.index("-i")]
    assert ("-threads" in before_input) == bool(decoder)
    if accel == "software":
        given = [int(t) for t in after(argv[argv.index("-i") :], "-threads")]
        assert given == [t for t in encoders if t]


def test_the_poster_comes_from_the_same_decode() -> None:
    p = plan(poster=PosterOut(2.5, 1280, 720), trickplay=None)
    graph = filter_graph(p)
    assert graph.startswith("[0:0]split=2[s0][spo];")
    assert (
        "[spo]select='eq(n,0)+gte(t,2.5)*lt(selected_n,2)',"
        "scale=1280:720,setsar=1,format=yuvj420p[po]"
    ) in graph
    assert transcode_argv(p)[-13:] == [
        "-map", "[po]", "-c:v", "mjpeg", "-q:v", "3", "-fps_mode", "passthrough",
        "-f", "image2", "-update", "1", "poster.jpg",
    ]  # fmt: skip


def test_direct_scaling_from_the_source_when_cascade_is_off() -> None:
    assert filter_graph(plan(cascade=False)) == (
        "[0:0]split=3[s0][s1][stp];"
        "[s0]scale=1280:720:flags=bicubic,setsar=1,format=yuv420p[v0];"
        "[s1]scale=640:360:flags=bicubic,setsar=1,format=yuv420p[v1];"
        "[stp]fps=1/1:round=down,scale=160:90,setsar=1,format=yuvj420p,tile=10x2[tp]"
    )


@pytest.mark.parametrize(
    ("heights", "parents"),
    [
        ([1080, 720, 480, 360, 240], [-1, 0, 1, 1, 3]),
        ([2160, 1440, 1080, 720, 480, 360, 240], [-1, 0, 0, 2, 3, 3, 5]),
        ([405, 360, 240], [-1, -1, 1]),
        ([180], [-1]),
    ],
)
def test_lower_rungs_are_scaled_from_a_larger_rung(heights: list[int], parents: list[int]) -> None:
    rungs = [Rung(f"{h}p", h * 16 // 9 // 2 * 2, h, 30.0, 1, 2) for h in heights]
    assert scale_parents(rungs) == parents
    assert scale_parents(rungs, cascade=False) == [-1] * len(heights)


@pytest.mark.parametrize(
    ("accel", "encoder", "must_have"),
    [
        ("software", "libx264", {"-sc_threshold": "0", "-flags": "+cgop", "-forced-idr": "1"}),
        ("nvidia", "h264_nvenc", {"-no-scenecut": "1", "-strict_gop": "1", "-cq": "23"}),
        ("vaapi", "h264_vaapi", {"-rc_mode": "QVBR", "-global_quality": "23"}),
        ("qsv", "h264_qsv", {"-global_quality": "23", "-look_ahead": "0", "-forced_idr": "1"}),
    ],
)
def test_each_accelerator_caps_quality_and_fixes_the_gop(
    accel: str, encoder: str, must_have: dict[str, str]
) -> None:
    argv = transcode_argv(plan(accelerator=accel))
    assert after(argv, "-c:v").count(encoder) == len(RUNGS)
    for flag, value in must_have.items():
        assert after(argv, flag) == [value] * len(RUNGS), flag
    assert after(argv, "-maxrate") == ["2800000", "800000"]
    assert after(argv, "-bufsize") == ["5600000", "1600000"]
    assert after(argv, "-g") == ["240", "240"]
    assert after(argv, "-force_key_frames") == ["expr:gte(t,1+(n_forced-1)*4)"] * 2
    assert after(argv, "-hls_segment_type") == ["fmp4"] * 3


def test_vaapi_and_qsv_upload_frames_to_the_device() -> None:
    vaapi = transcode_argv(plan(accelerator="vaapi", vaapi_device="/dev/dri/renderD129"))
    assert after(vaapi, "-init_hw_device") == ["vaapi=hw:/dev/dri/renderD129"]
    assert after(vaapi, "-filter_hw_device") == ["hw"]
    assert filter_graph(plan(accelerator="vaapi")).count("format=nv12,hwupload[") == 2
    # the 720p frames feed the 360p scaler before they are uploaded
    assert "split=2[e0][c0_1];[e0]format=nv12,hwupload[v0]" in filter_graph(
        plan(accelerator="vaapi")
    )
    qsv = transcode_argv(plan(accelerator="qsv"))
    assert after(qsv, "-init_hw_device") == ["qsv=hw"]
    assert filter_graph(plan(accelerator="qsv")).count("hwupload=extra_hw_frames=64[") == 2
    nvenc = transcode_argv(plan(accelerator="nvidia"))
    assert "-init_hw_device" not in nvenc  # NVENC takes frames from system memory


def test_deinterlace_and_constant_frame_rate_run_once_before_the_split() -> None:
    graph = filter_graph(plan(deinterlace=True, fps=29.97))
    assert graph.startswith("[0:0]bwdif=mode=send_frame:deint=interlaced,fps=29.97,split=2")


def test_no_audio_no_trickplay() -> None:
    argv = transcode_argv(plan(audio=(), trickplay=None))
    assert "-c:a" not in argv and "[tp]" not in argv
    assert filter_graph(plan(audio=(), trickplay=None)).startswith("[0:0]split=1[s0];")


def test_several_audio_tracks_each_encoded_once() -> None:
    argv = transcode_argv(plan(audio=(AudioOut("audio", 1), AudioOut("audio-2", 2, 96_000))))
    assert after(argv, "-map")[-3:-1] == ["0:1", "0:2"]
    assert after(argv, "-b:a") == ["128000", "96000"]
    assert after(argv, "-hls_segment_filename")[-2:] == [
        "audio.pieces/%d.m4s",
        "audio-2.pieces/%d.m4s",
    ]


@pytest.mark.parametrize(
    ("first", "every", "expr", "piece"),
    [
        (1.0, 4.0, "expr:gte(t,1+(n_forced-1)*4)", 1.0),
        (1.0, 6.0, "expr:gte(t,1+(n_forced-1)*6)", 1.0),
        (2.0, 4.0, "expr:gte(t,2+(n_forced-1)*4)", 2.0),
        (1.0, 4.5, "expr:gte(t,1+(n_forced-1)*4.5)", 0.5),
        (4.0, 4.0, "expr:gte(t,4+(n_forced-1)*4)", 4.0),
    ],
)
def test_keyframes_and_audio_pieces_share_the_boundaries(
    first: float, every: float, expr: str, piece: float
) -> None:
    assert keyframe_expr(first, every) == expr
    assert audio_piece_seconds(first, every) == piece


def test_first_segment_is_never_longer_than_the_others() -> None:
    p = plan(segment_seconds=2.0, first_segment_seconds=3.0)
    assert p.first_segment == 2.0
    assert after(transcode_argv(p), "-hls_time")[0] == "2"


@pytest.mark.parametrize(
    ("seconds", "fps", "gop"), [(4, 30, 240), (4, 29.97, 240), (6, 25, 300), (2, 60, 240)]
)
def test_gop_safety_net(seconds: float, fps: float, gop: int) -> None:
    assert gop_frames(seconds, fps) == gop


def test_x264_preset_and_threads_are_settable() -> None:
    argv = transcode_argv(plan(x264_preset="ultrafast", x264_threads=2, crf=20))
    assert after(argv, "-preset") == ["ultrafast"] * 2
    assert after(argv, "-threads") == ["2"] * 2
    assert after(argv, "-crf") == ["20"] * 2


def test_small_builders() -> None:
    assert poster_argv("in.mp4", at=2.5, width=640, height=360, out="p.jpg")[6:14] == [
        "-ss", "2.5", "-protocol_whitelist", "file",
        "-format_whitelist", "mov,matroska,avi,mpegts,mpeg,flv,ogg,asf,mxf,nut,rm,dv,h264,hevc",
        "-i", "in.mp4",
    ]  # fmt: skip
    subs = subtitles_argv("in.mkv", [(2, "subs/0.vtt"), (3, "subs/1.vtt")])
    assert after(subs, "-map") == ["0:2", "0:3"] and after(subs, "-c:s") == ["webvtt", "webvtt"]
    assert after(trial_argv("nvidia"), "-c:v") == ["h264_nvenc"]
    assert "hwupload" in " ".join(trial_argv("vaapi"))


def test_hwaccel_falls_back_to_software_when_no_device_is_there() -> None:
    """Real detection on this machine (no GPU): every trial is skipped or fails, software wins."""
    hwaccel.clear_cache()
    choice = hwaccel.choose("auto")
    if choice.accelerator != "software":  # pragma: no cover - a machine with a working GPU
        pytest.skip(f"a real accelerator works here: {choice.reason}")
    assert "falling back to libx264" in choice.reason
    assert "h264_nvenc" in choice.reason and "h264_qsv" in choice.reason


def test_hwaccel_choice_rules_with_a_mocked_gpu() -> None:
    """The GPU is mocked here (try_fn); the rules are what is under test."""
    works = {"nvidia": False, "vaapi": True, "qsv": True}

    def fake(accel: str) -> tuple[bool, str]:
        return works[accel], "ok" if works[accel] else "no device"

    assert hwaccel.choose("auto", try_fn=fake).accelerator == "vaapi"  # type: ignore[arg-type]
    assert hwaccel.choose("nvidia", try_fn=fake).accelerator == "software"  # type: ignore[arg-type]
    assert "h264_nvenc: no device" in hwaccel.choose("nvidia", try_fn=fake).reason  # type: ignore[arg-type]
    assert hwaccel.choose("none", try_fn=fake).accelerator == "software"  # type: ignore[arg-type]
    assert hwaccel.choose("qsv", try_fn=fake).accelerator == "qsv"  # type: ignore[arg-type]


# --- HEVC and AV1 (kubevod.worker.encoders) ------------------------------------------------

CODEC_TABLE = [
    # (codec, accel, encoder, flags that must be there as (flag, value))
    ("h264", "software", "libx264", [("-crf", "23"), ("-forced-idr", "1")]),
    ("hevc", "software", "libx265", [("-crf", "28"), ("-forced-idr", "1"), ("-tag:v", "hvc1")]),
    ("hevc", "nvidia", "hevc_nvenc", [("-cq", "28"), ("-no-scenecut", "1"), ("-tag:v", "hvc1")]),
    ("hevc", "vaapi", "hevc_vaapi", [("-global_quality", "28"), ("-tag:v", "hvc1")]),
    ("hevc", "qsv", "hevc_qsv", [("-forced_idr", "1"), ("-tag:v", "hvc1")]),
    ("av1", "software", "libsvtav1", [("-crf", "35"), ("-preset", "10")]),
    ("av1", "nvidia", "av1_nvenc", [("-cq", "35"), ("-forced-idr", "1"), ("-strict_gop", "1")]),
]


@pytest.mark.parametrize(("codec", "accel", "encoder", "flags"), CODEC_TABLE)
def test_encoder_args_per_codec_and_accelerator(
    codec: str, accel: str, encoder: str, flags: list[tuple[str, str]]
) -> None:
    argv = video_encoder_args(plan(codec=codec, accelerator=accel), RUNGS[1])
    assert after(argv, "-c:v") == [encoder]
    for flag, value in flags:
        assert after(argv, flag) == [value], (flag, argv)
    if accel != "software":
        # every hardware encoder is capped with the rung's VBV
        assert after(argv, "-maxrate") == ["800000"] and after(argv, "-bufsize") == ["1600000"]


def test_x265_params_carry_gop_scenecut_and_vbv_cap() -> None:
    argv = video_encoder_args(plan(codec="hevc", x265_preset="ultrafast"), RUNGS[0])
    assert after(argv, "-preset") == ["ultrafast"]
    params = dict(p.split("=") for p in after(argv, "-x265-params")[0].split(":"))
    assert params == {
        "keyint": "240", "min-keyint": "240", "scenecut": "0", "open-gop": "0",
        "vbv-maxrate": "2800", "vbv-bufsize": "5600", "log-level": "error",
    }  # fmt: skip


def test_svtav1_keyframes_come_from_a_fixed_gop_of_one_piece() -> None:
    p = plan(codec="av1", svtav1_preset=12)
    argv = video_encoder_args(p, RUNGS[0])
    assert after(argv, "-preset") == ["12"]
    params = dict(x.split("=") for x in after(argv, "-svtav1-params")[0].split(":"))
    assert params == {"keyint": "30", "scd": "0", "mbr": "2800"}  # 1 s at 30 fps; kb/s
    full = transcode_argv(p)
    assert "-force_key_frames" not in full  # ffmpeg 5.1's libsvtav1 ignores forced keyframes
    assert p.video_pieces and p.video_dir(RUNGS[0]) == "720p.pieces"
    assert "720p.pieces/index.m3u8" in full and "360p.pieces/%d.m4s" in full
    assert after(full, "-hls_time")[:2] == ["1", "1"]  # the muxer cuts at every keyframe
    # on NVENC, AV1 keyframes are forced like H.264's
    nv = transcode_argv(plan(codec="av1", accelerator="nvidia"))
    assert after(nv, "-force_key_frames") == [keyframe_expr(1, 4)] * 2
    assert "720p/index.m3u8" in nv


def test_x265_and_svtav1_pools_follow_the_cpus_when_known() -> None:
    def params(codec: str, flag: str, cpus: float) -> dict[str, str]:
        argv = video_encoder_args(plan(codec=codec, cpus=cpus), RUNGS[0])
        return dict(x.split("=") for x in after(argv, flag)[0].split(":"))

    assert params("hevc", "-x265-params", 1.5)["pools"] == "2"  # a pod limited to 1.5 CPUs
    assert params("av1", "-svtav1-params", 2)["lp"] == "2"
    assert "pools" not in params("hevc", "-x265-params", 0)  # unknown: the encoder counts
    assert "lp" not in params("av1", "-svtav1-params", 0)


def test_hevc_transcode_forces_the_same_keyframes_in_every_rung() -> None:
    argv = transcode_argv(plan(codec="hevc"))
    assert after(argv, "-force_key_frames") == [keyframe_expr(1, 4)] * 2
    assert after(argv, "-tag:v") == ["hvc1", "hvc1"]
    assert after(argv, "-c:v")[:2] == ["libx265", "libx265"]


def test_crf_maps_to_each_codecs_scale() -> None:
    assert [codec_crf(c, 23) for c in CODECS] == [23, 28, 35]
    assert codec_crf("av1", 60) == 63 and codec_crf("hevc", 50) == 51 and codec_crf("h264", 0) == 0


def test_codecs_without_an_encoder_on_an_accelerator_are_refused() -> None:
    assert encoder_name("av1", "vaapi") is None and encoder_name("av1", "qsv") is None
    with pytest.raises(ValueError, match="no av1 encoder for vaapi"):
        video_encoder_args(plan(codec="av1", accelerator="vaapi"), RUNGS[0])
    with pytest.raises(ValueError):
        trial_argv("qsv", codec="av1")
    assert after(trial_argv("nvidia", codec="hevc"), "-c:v") == ["hevc_nvenc"]
    assert after(trial_argv("vaapi", codec="hevc"), "-c:v") == ["hevc_vaapi"]
    assert after(trial_argv("nvidia", codec="av1"), "-c:v") == ["av1_nvenc"]


def test_hwaccel_choice_falls_back_to_the_codecs_software_encoder() -> None:
    """The GPU is mocked here (try_fn): no accelerator exists on the test machine."""
    tried: list[str] = []

    def fake(accel: str) -> tuple[bool, str]:
        tried.append(accel)
        return (accel == "vaapi", "ok" if accel == "vaapi" else "no device")

    choice = hwaccel.choose("auto", try_fn=fake, codec="av1")
    assert choice.accelerator == "software" and tried == ["nvidia"]  # no AV1 on VAAPI/QSV
    assert choice.reason.startswith("falling back to libsvtav1 (av1_nvenc: no device")
    assert "vaapi: no av1 encoder" in choice.reason
    hevc = hwaccel.choose("auto", try_fn=fake, codec="hevc")
    assert hevc == hwaccel.HwChoice("vaapi", "hevc_vaapi: ok")
    assert hwaccel.choose("none", codec="hevc").reason.endswith("(libx265)")
    if hwaccel.device_present("nvidia") is not None:
        hwaccel.clear_cache()
        real = hwaccel.choose("nvidia", codec="hevc")  # no /dev/nvidia*: decided without ffmpeg
        assert real.accelerator == "software" and "libx265" in real.reason
