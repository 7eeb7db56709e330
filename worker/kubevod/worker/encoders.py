"""Video encoder options per (codec, accelerator): pure argv fragments (docs/architecture.md §6).

Every encoder gets the same contract: capped quality (a CRF-like target plus a
VBV cap), a GOP no longer than twice the segment, no scene-cut keyframes and
closed GOPs, so the forced keyframes are the only ones and every rung is cut at
the same instants.

- H.264: libx264 / h264_nvenc / h264_vaapi / h264_qsv.
- HEVC: libx265 (``-x265-params`` carries keyint, scenecut, open-gop and the VBV
  cap) / hevc_nvenc / hevc_vaapi / hevc_qsv; always tagged ``hvc1`` (parameter
  sets in the sample entry) so Safari and MSE accept it.
- AV1: libsvtav1 (``-svtav1-params`` with ``mbr``, ``keyint``, ``scd=0``) /
  av1_nvenc. ffmpeg 5.1's libsvtav1 ignores forced keyframes, so software AV1
  places them by a fixed GOP of one audio-piece length instead
  (``keyframes_by_gop``) and the uploader joins those pieces into segments.
"""

from __future__ import annotations

from typing import Literal

from kubevod.worker.ladder import Rung

Accel = Literal["software", "nvidia", "vaapi", "qsv"]
Codec = Literal["h264", "hevc", "av1"]
CODECS: tuple[Codec, ...] = ("h264", "hevc", "av1")

#: Encoder per codec and accelerator; an accelerator missing here has no encoder
#: for that codec (it is never tried, the software encoder is used).
ENCODERS_BY_CODEC: dict[Codec, dict[Accel, str]] = {
    "h264": {
        "software": "libx264",
        "nvidia": "h264_nvenc",
        "vaapi": "h264_vaapi",
        "qsv": "h264_qsv",
    },
    "hevc": {
        "software": "libx265",
        "nvidia": "hevc_nvenc",
        "vaapi": "hevc_vaapi",
        "qsv": "hevc_qsv",
    },
    "av1": {"software": "libsvtav1", "nvidia": "av1_nvenc"},
}
#: Added to the (x264-scale) CRF setting so each codec aims at a similar quality.
CRF_OFFSET: dict[Codec, int] = {"h264": 0, "hevc": 5, "av1": 12}
CRF_MAX: dict[Codec, int] = {"h264": 51, "hevc": 51, "av1": 63}


def encoder_name(codec: Codec, accel: Accel) -> str | None:
    """The ffmpeg encoder for ``codec`` on ``accel``, or None when there is none."""
    return ENCODERS_BY_CODEC[codec].get(accel)


def codec_crf(codec: Codec, crf: int) -> int:
    """The quality target of ``codec`` for an x264-scale ``crf`` (23 -> 23, 28, 35)."""
    return max(0, min(CRF_MAX[codec], crf + CRF_OFFSET[codec]))


def keyframes_by_gop(codec: Codec, accel: Accel) -> bool:
    """True when keyframes come from a fixed GOP, not ``-force_key_frames`` (software AV1)."""
    return codec == "av1" and accel == "software"


def video_encoder_args(
    codec: Codec,
    accel: Accel,
    rung: Rung,
    *,
    gop: int,
    crf: int,
    x264_preset: str = "veryfast",
    x265_preset: str = "faster",
    svtav1_preset: int = 10,
    threads: int = 0,
    cpus: int = 0,
) -> list[str]:
    """Encoder options of one rung.

    Args:
        codec: h264, hevc or av1.
        accel: the encoder family.
        rung: size and bitrate cap.
        gop: keyframe interval in frames (an upper bound when keyframes are forced;
            the exact interval for software AV1).
        crf: x264-scale quality target (mapped per codec by ``codec_crf``).
        x264_preset, x265_preset, svtav1_preset: software speed presets.
        threads: x264 threads per encoder (0: the encoder decides).
        cpus: CPUs the process may use (0: unknown). x265 and SVT-AV1 size their
            thread pools from the machine's core count, not a pod's CPU limit; with
            five encoders in one process on a 2-CPU pod of a 32-core node that is
            ~160 threads. Given, each pool gets this many.

    Raises:
        ValueError: ``codec`` has no encoder on ``accel``.
    """
    if encoder_name(codec, accel) is None:
        raise ValueError(f"no {codec} encoder for {accel}")
    g = str(gop)
    q = str(codec_crf(codec, crf))
    cap = ["-maxrate", str(rung.maxrate), "-bufsize", str(rung.bufsize)]
    kbps, buf_kbits = rung.maxrate // 1000, rung.bufsize // 1000
    if codec == "h264":
        return _h264(accel, rung, g, q, cap, x264_preset, threads)
    if codec == "hevc":
        tag = ["-tag:v", "hvc1"]
        if accel == "software":
            params = (
                f"keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:"
                f"vbv-maxrate={kbps}:vbv-bufsize={buf_kbits}:log-level=error"
            ) + (f":pools={cpus}" if cpus else "")
            return [
                "-c:v", "libx265", "-preset", x265_preset, "-profile:v", "main", "-crf", q,
                "-forced-idr", "1", "-x265-params", params, *tag,
            ]  # fmt: skip
        if accel == "nvidia":
            return [
                "-c:v", "hevc_nvenc", "-preset", "p4", "-tune", "hq", "-profile:v", "main",
                "-rc", "vbr", "-cq", q, "-b:v", "0", *cap, "-g", g, "-no-scenecut", "1",
                "-forced-idr", "1", "-strict_gop", "1", "-spatial-aq", "1", *tag,
            ]  # fmt: skip
        if accel == "vaapi":
            return [
                "-c:v", "hevc_vaapi", "-profile:v", "main", "-rc_mode", "QVBR",
                "-global_quality", q, "-b:v", str(rung.maxrate * 3 // 5), *cap, "-g", g,
                "-idr_interval", "0", *tag,
            ]  # fmt: skip
        return [
            "-c:v", "hevc_qsv", "-profile:v", "main", "-preset", "medium", "-global_quality", q,
            "-look_ahead", "0", *cap, "-g", g, "-idr_interval", "0", "-forced_idr", "1", *tag,
        ]  # fmt: skip
    if accel == "software":
        params = f"keyint={gop}:scd=0:mbr={kbps}" + (f":lp={cpus}" if cpus else "")
        return [
            "-c:v", "libsvtav1", "-preset", str(svtav1_preset), "-crf", q, "-g", g,
            "-svtav1-params", params,
        ]  # fmt: skip
    return [
        "-c:v", "av1_nvenc", "-preset", "p4", "-tune", "hq", "-rc", "vbr", "-cq", q,
        "-b:v", "0", *cap, "-g", g, "-no-scenecut", "1", "-forced-idr", "1",
        "-strict_gop", "1", "-spatial-aq", "1",
    ]  # fmt: skip


def _h264(
    accel: Accel, rung: Rung, g: str, q: str, cap: list[str], preset: str, threads: int
) -> list[str]:
    if accel == "software":
        args = ["-c:v", "libx264", "-preset", preset, "-profile:v", "high"]
        args += ["-crf", q, *cap, "-g", g, "-keyint_min", g]
        args += ["-sc_threshold", "0", "-flags", "+cgop", "-forced-idr", "1"]
        if threads:
            args += ["-threads", str(threads)]
        return args
    if accel == "nvidia":
        return [
            "-c:v", "h264_nvenc", "-preset", "p4", "-tune", "hq", "-profile:v", "high",
            "-rc", "vbr", "-cq", q, "-b:v", "0", *cap, "-g", g,
            "-no-scenecut", "1", "-forced-idr", "1", "-strict_gop", "1", "-spatial-aq", "1",
        ]  # fmt: skip
    if accel == "vaapi":
        return [
            "-c:v", "h264_vaapi", "-profile:v", "high", "-rc_mode", "QVBR",
            "-global_quality", q, "-b:v", str(rung.maxrate * 3 // 5), *cap,
            "-g", g, "-idr_interval", "0",
        ]  # fmt: skip
    return [
        "-c:v", "h264_qsv", "-profile:v", "high", "-preset", "medium",
        "-global_quality", q, "-look_ahead", "0", *cap, "-g", g,
        "-idr_interval", "0", "-forced_idr", "1",
    ]  # fmt: skip
