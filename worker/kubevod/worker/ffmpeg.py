"""Pure builders of ffmpeg command lines (``list[str]``, never a shell string).

The transcode is ONE ffmpeg process (docs/architecture.md §2, §6):

- the source is decoded once; deinterlacing and frame-rate normalisation run
  once; ``split`` feeds one ``scale`` per rung (and the trickplay branch);
- each rung is its own ``hls`` output writing CMAF fMP4 (``init.mp4`` +
  ``<seq>.m4s``) into ``<rung>/``; keyframes are forced at the same
  timestamps in every rung (``0``, the short first segment, then every
  segment length), scene-cut keyframes are off and GOPs are closed, so the
  hls muxer cuts every rung at exactly the same instants;
- each audio track is encoded once, into 1-s "pieces" that the uploader joins
  into segments on the video boundaries (the hls muxer cannot cut audio at a
  short first segment and then every segment length; a CMAF segment may hold
  several fragments);
- ``-progress pipe:1`` reports progress on stdout.

Each codec (H.264, HEVC, AV1) and hardware encoder gets the same graph with its
own encoder options (``kubevod.worker.encoders``); decoding and scaling stay in
software so every accelerator takes the same path through the source's oddities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Literal

from kubevod.worker import encoders, policy
from kubevod.worker.encoders import Accel as Accel
from kubevod.worker.encoders import Codec as Codec
from kubevod.worker.encoders import encoder_name, keyframes_by_gop
from kubevod.worker.ladder import Rung

from kubevod.timeline import Chunk, Timeline, frame_at

ACCELERATORS: tuple[Accel, ...] = ("nvidia", "vaapi", "qsv")
#: The H.264 encoders (``encoders.ENCODERS_BY_CODEC`` has every codec).
ENCODERS: dict[Accel, str] = dict(encoders.ENCODERS_BY_CODEC["h264"])
DEFAULT_VAAPI_DEVICE = "/dev/dri/renderD128"
PIECES_DIR_SUFFIX = ".pieces"
#: What resizes a rung made from another rung: zimg (``zscale``) where ffmpeg has it, at
#: about half of swscale's CPU for a sharper kernel (lanczos); swscale otherwise.
Scaler = Literal["swscale", "zscale"]
#: Slack on the thumbnail grid, seconds per interval: a frame exactly on a boundary
#: belongs to the interval it starts.
THUMB_EPS = 1e-6
#: zimg is used only for downscales of at most this ratio on each axis. zimg 3.0.4
#: (Debian 12) writes wrong columns for horizontal ratios just above 2 (2.005-2.07,
#: e.g. 854 -> 426) on AVX-512 CPUs; tests/integration/test_cascade_scaling.py
#: compares every cascaded rung with the same path through the ladder done by swscale.
ZSCALE_MAX_RATIO = 2.0
#: Decoding and scaling one frame, as a share of encoding the top rung's frame with
#: x264 (perf of a 1080p ladder: ~4 s of decoding and zimg against ~7.5 s of x264).
DECODE_SHARE = 0.5
#: How much more than its even share of the work ffmpeg's main thread may take: a
#: threaded x264 keeps its threads only about 80% busy (frame threads wait on each
#: other's rows), so the main thread can take more without slowing the ladder.
MAIN_THREAD_SLACK = 1.25


@dataclass(frozen=True)
class AudioOut:
    """One audio track to encode (AAC-LC stereo 48 kHz), or to copy as it is (AAC-LC)."""

    name: str  # rendition name: "audio", "audio-2"
    stream: int  # absolute stream index in the source
    bitrate: int = 128_000
    copy: bool = False  # the source's AAC-LC stream as it is (``kubevod.worker.passthrough``)


@dataclass(frozen=True)
class PosterOut:
    """The poster, from the same decode: the first frame at or after ``at`` seconds
    (the first frame of all when the source ends sooner)."""

    at: float
    width: int
    height: int


#: Where the main ffmpeg writes the poster (relative to its working directory).
POSTER_FILE = "poster.jpg"


@dataclass(frozen=True)
class TrickplayOut:
    """Seek-bar sprite sheets made from the same decode."""

    interval: float  # seconds between thumbnails
    width: int
    height: int
    columns: int = 10
    rows: int = 10


@dataclass(frozen=True)
class EncodePlan:
    """Everything ``transcode_argv`` needs; paths are relative to ffmpeg's cwd (scratch)."""

    source: str
    video_stream: int
    rungs: tuple[Rung, ...]
    audio: tuple[AudioOut, ...] = ()
    segment_seconds: float = 4.0
    first_segment_seconds: float = 0.5
    accelerator: Accel = "software"
    codec: Codec = "h264"
    x264_preset: str = "veryfast"
    x265_preset: str = "faster"
    svtav1_preset: int = 10
    crf: int = 23
    x264_threads: int = 0  # of every rung's encoder; 0: thread_plan() decides
    cpus: float = 0.0  # CPUs this encode may use; 0: unknown (ffmpeg and x264 decide threads)
    scaler: Scaler = "swscale"
    deinterlace: bool = False
    fps: float | None = None  # force a constant output rate (VFR or > 60 fps sources)
    trickplay: TrickplayOut | None = None
    poster: PosterOut | None = None
    vaapi_device: str = DEFAULT_VAAPI_DEVICE
    cascade: bool = True  # scale lower rungs from larger ones (see scale_parents)
    #: The top rung is the source's video stream as it is (``kubevod.worker.passthrough``).
    copy_top: bool = False
    #: Explicit cuts of the timeline (the source's keyframes, when ``copy_top``); None: a
    #: keyframe forced at 0, ``first_segment``, then every ``segment_seconds``.
    cuts: tuple[float, ...] | None = None
    #: Rungs this run leaves out (a chunk's lowest rung encoded first, alone: see
    #: ``kubevod.worker.chunks.chunk_passes``). Their frames are still made where they
    #: feed a rung that is encoded, so every rung is scaled as the whole ladder scales
    #: it and its parameter sets (init segment) are the same (``chunk_argv`` only).
    skip: frozenset[str] = frozenset()

    @property
    def first_segment(self) -> float:
        """Length of the first segment: never longer than the others."""
        return min(self.first_segment_seconds, self.segment_seconds)

    @property
    def video_pieces(self) -> bool:
        """True when video comes as pieces the uploader joins on the timeline: GOP-long
        ones (software AV1), or one per keyframe (an explicit timeline)."""
        return self.cuts is not None or keyframes_by_gop(self.codec, self.accelerator)

    def encodes(self, index: int) -> bool:
        """Whether rung ``index`` is encoded (not the source's own stream)."""
        return not (self.copy_top and index == 0)

    def filtered(self, index: int) -> bool:
        """Whether the graph hands rung ``index``'s frames to an encoder in this run."""
        return self.encodes(index) and self.rungs[index].name not in self.skip

    @property
    def written(self) -> tuple[Rung, ...]:
        """The rungs this run writes (every rung but the skipped ones)."""
        return tuple(r for r in self.rungs if r.name not in self.skip)

    def video_dir(self, rung: Rung) -> str:
        """The folder ffmpeg writes ``rung`` into."""
        return rung.name + PIECES_DIR_SUFFIX if self.video_pieces else rung.name

    def piece_frames(self, fps: float) -> int:
        """Frames per video piece (the fixed GOP of software AV1): one audio piece long."""
        step = audio_piece_seconds(self.first_segment, self.segment_seconds)
        return max(1, round(step * (fps or 30)))


def _num(value: float) -> str:
    """A number as ffmpeg reads it, without float noise (``4``, ``0.5``, ``29.97``)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


#: ``-hls_time`` that makes the hls muxer cut at every keyframe (pieces of an explicit timeline).
PIECE_EVERY_KEYFRAME = 0.1
#: Audio piece length (s) on an explicit timeline.
AUDIO_PIECE_ON_KEYFRAMES = 0.25


def forced_times(cuts: Sequence[float]) -> str:
    """``-force_key_frames`` list: a keyframe on the first frame at or after each cut.

    A millisecond early, so a cut that is a frame's exact time never lands one frame
    late through rounding (frames are at least 1/240 s apart).
    """
    return ",".join(_num(max(0.0, c - 0.001)) for c in cuts)


def keyframe_expr(first: float, every: float) -> str:
    """``-force_key_frames`` expression: a keyframe at 0, at ``first``, then every ``every`` s.

    ``n_forced`` counts the keyframes forced so far, so the k-th one lands on the
    first frame at or after ``first + (k-1)*every`` (works for variable frame rates).
    """
    return f"expr:gte(t,{_num(first)}+(n_forced-1)*{_num(every)})"


def audio_piece_seconds(first: float, every: float) -> float:
    """Length of the audio pieces: the largest step that divides both segment lengths."""
    a = Fraction(first).limit_denominator(100)
    b = Fraction(every).limit_denominator(100)
    step = Fraction(
        math.gcd(a.numerator * b.denominator, b.numerator * a.denominator),
        a.denominator * b.denominator,
    )
    return float(step) if step >= Fraction(1, 4) else first


def gop_frames(segment_seconds: float, fps: float) -> int:
    """Upper bound of the GOP in frames: a safety net twice the segment length.

    Keyframes come from the forced timestamps; this only keeps an encoder from
    inserting one of its own between them (which would cut a segment early).
    """
    return max(2, 2 * math.ceil(segment_seconds * (fps or 30)))


#: A rung is scaled from a larger rung (not the source) when that one is at least this
#: much taller: scaling cost follows the input size (bench/transcode.py reports the CPU
#: saved and SSIM/PSNR against direct scaling).
CASCADE_RATIO = 1.4


def scale_parents(rungs: Sequence[Rung], cascade: bool = True) -> list[int]:
    """For each rung, the index of the rung it is scaled from, or -1 for the source.

    Rungs are ordered from the highest. With ``cascade``, a rung is made from the
    smallest higher rung at least ``CASCADE_RATIO`` times its height.
    """
    parents: list[int] = []
    for i, rung in enumerate(rungs):
        parent = -1
        if cascade:
            for j in range(i - 1, -1, -1):
                if rungs[j].height >= CASCADE_RATIO * rung.height and rungs[j].width >= rung.width:
                    parent = j
                    break
        parents.append(parent)
    return parents


def thread_plan(plan: EncodePlan) -> tuple[int, tuple[int, ...]]:
    """Threads of the decoder and of each rung's x264 (0: let ffmpeg or x264 decide).

    ffmpeg 5 decodes, filters and calls every encoder in turn on one main thread. A
    one-thread x264 encodes right there; a threaded one hands the frame to its own
    threads. Threads cost CPU in synchronisation, so on a machine where the encoders
    keep every CPU busy anyway, as much as fits runs on the main thread: decoding
    first, then the rungs, smallest first, while the main thread's work (counted in
    pixels) stays within its share of the CPUs (MAIN_THREAD_SLACK). The other rungs'
    x264 get one thread per CPU, not their usual 1.5: the other encoders fill their
    waits. When even decoding exceeds that share (more than ~5 CPUs), or the CPUs are
    unknown, or a GPU encodes, ffmpeg and x264 choose their own threads.
    On 2 CPUs, 1080p..240p: decoder 1, x264 2, 1, 1, 1, 1 (docs/benchmarks-worker.md).
    """
    auto = (0, tuple(plan.x264_threads for _ in plan.rungs))
    if plan.accelerator != "software" or plan.cpus <= 0 or not plan.rungs:
        return auto
    main = DECODE_SHARE * plan.rungs[0].width * plan.rungs[0].height
    pixels = [r.width * r.height if plan.filtered(i) else 0 for i, r in enumerate(plan.rungs)]
    share = (main + sum(pixels)) / plan.cpus * MAIN_THREAD_SLACK
    if main > share:
        return auto
    threads = [math.ceil(plan.cpus)] * len(pixels)
    for i in sorted(range(len(pixels)), key=pixels.__getitem__):
        if main + pixels[i] > share:
            break
        main += pixels[i]
        threads[i] = 1
    if plan.x264_threads:
        threads = [plan.x264_threads] * len(pixels)
    return 1, tuple(threads)


def _zscale_safe(parent: Rung, rung: Rung) -> bool:
    return (
        parent.width <= ZSCALE_MAX_RATIO * rung.width
        and parent.height <= ZSCALE_MAX_RATIO * rung.height
    )


def _resize(plan: EncodePlan, rung: Rung, parent: int) -> str:
    """The filter that resizes to ``rung`` from the source (``parent`` -1) or a larger rung.

    From the source: swscale bicubic, as one process per rung would, which also
    converts any pixel format to yuv420p. From a rung's 8-bit 4:2:0 frames: zimg
    lanczos where ffmpeg has ``zscale`` and the ratio is at most ZSCALE_MAX_RATIO
    (told that chroma is centred, as swscale assumes, so rungs made either way line
    up); else swscale, bicubic from the top rung (the source's size but for >2160p
    sources) and lanczos from a rung that was itself scaled, whose sharper kernel
    makes up for the second resampling (SSIM/PSNR in docs/benchmarks-worker.md).
    """
    if parent >= 0 and plan.scaler == "zscale" and _zscale_safe(plan.rungs[parent], rung):
        return (
            f"zscale=w={rung.width}:h={rung.height}:filter=lanczos:chromalin=center:chromal=center"
        )
    flags = "bicubic" if parent <= 0 else "lanczos"
    return f"scale={rung.width}:{rung.height}:flags={flags}"


def filter_graph(plan: EncodePlan) -> str:
    """The ``-filter_complex`` graph: decode once, split, scale per rung (+ trickplay, poster).

    Lower rungs are scaled from a larger rung's frames when that is cheaper
    (``scale_parents``); each rung is converted to 8-bit 4:2:0 once.
    """
    pre: list[str] = []
    if plan.deinterlace:
        pre.append("bwdif=mode=send_frame:deint=interlaced")
    if plan.fps:
        pre.append(f"fps={_num(plan.fps)}")
    parents = scale_parents(plan.rungs, plan.cascade)
    # A rung's frames are made when it is encoded or feeds one that is (parents come first).
    needed = [plan.filtered(i) for i in range(len(plan.rungs))]
    for i in reversed(range(len(plan.rungs))):
        if needed[i] and parents[i] >= 0:
            needed[parents[i]] = True
    children: dict[int, list[int]] = {}
    for i, parent in enumerate(parents):
        if needed[i]:
            children.setdefault(parent, []).append(i)
    src_outs = [f"[s{i}]" for i in children.get(-1, [])]
    if plan.trickplay:
        src_outs.append("[stp]")
    if plan.poster:
        src_outs.append("[spo]")
    head = f"[0:{plan.video_stream}]" + ",".join([*pre, f"split={len(src_outs)}"])
    parts = [head + "".join(src_outs)]
    for i, rung in enumerate(plan.rungs):
        if not needed[i]:
            continue
        source = f"[s{i}]" if parents[i] == -1 else f"[c{parents[i]}_{i}]"
        chain = f"{source}{_resize(plan, rung, parents[i])},setsar=1,format=yuv420p"
        kids = children.get(i, [])
        if not plan.filtered(i):
            # A copied or skipped rung is not encoded; its frames feed the rungs scaled from it.
            if kids:
                parts.append(chain + f",split={len(kids)}" + "".join(f"[c{i}_{k}]" for k in kids))
            continue
        upload = ""
        if plan.accelerator == "vaapi":
            upload = "format=nv12,hwupload"
        elif plan.accelerator == "qsv":
            upload = "format=nv12,hwupload=extra_hw_frames=64"
        if not kids:
            parts.append(chain + (f",{upload}" if upload else "") + f"[v{i}]")
            continue
        out = f"[e{i}]" if upload else f"[v{i}]"
        parts.append(chain + f",split={1 + len(kids)}{out}" + "".join(f"[c{i}_{k}]" for k in kids))
        if upload:
            parts.append(f"[e{i}]{upload}[v{i}]")
    if plan.poster:
        po = plan.poster
        # Frame 0, then the first frame at or after ``at``; the image2 muxer keeps the last.
        parts.append(
            f"[spo]select='eq(n,0)+gte(t,{_num(po.at)})*lt(selected_n,2)',"
            f"scale={po.width}:{po.height},setsar=1,format=yuvj420p[po]"
        )
    if plan.trickplay:
        tp = plan.trickplay
        parts.append(
            f"[stp]fps=1/{_num(tp.interval)}:round=down,"
            f"scale={tp.width}:{tp.height},setsar=1,format=yuvj420p,"
            f"tile={tp.columns}x{tp.rows}[tp]"
        )
    return ";".join(parts)


def video_encoder_args(plan: EncodePlan, rung: Rung) -> list[str]:
    """Encoder options of one rung for the plan's codec and accelerator (``encoders``)."""
    gop = (
        plan.piece_frames(rung.fps)
        if plan.video_pieces
        else gop_frames(plan.segment_seconds, rung.fps)
    )
    return encoders.video_encoder_args(
        plan.codec, plan.accelerator, rung, gop=gop, crf=plan.crf,
        x264_preset=plan.x264_preset, x265_preset=plan.x265_preset,
        svtav1_preset=plan.svtav1_preset, threads=thread_plan(plan)[1][plan.rungs.index(rung)],
        cpus=math.ceil(plan.cpus),
    )  # fmt: skip


def _hls_args(directory: str, cut_every: float) -> list[str]:
    return [
        "-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", _num(cut_every),
        "-hls_list_size", "0", "-hls_playlist_type", "event",
        "-hls_flags", "temp_file+independent_segments",
        "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", f"{directory}/%d.m4s", f"{directory}/index.m3u8",
    ]  # fmt: skip


def _head(ffmpeg: str) -> list[str]:
    """What every encode starts with: quiet, no stdin, progress on stdout."""
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "warning",
        "-nostats", "-progress", "pipe:1", "-stats_period", "0.5",
    ]  # fmt: skip


def _video_head(plan: EncodePlan, ffmpeg: str) -> list[str]:
    """An encode of video rungs up to its input: the device and the threads."""
    argv = _head(ffmpeg) + _hw_args(plan)
    # One filter thread: the graph is a small share of the work and its slice threads
    # cost more in synchronisation than they save (bench/transcode.py).
    argv += ["-filter_complex_threads", "1"]
    if decoder := thread_plan(plan)[0]:
        argv += ["-threads", str(decoder)]
    return argv


def _hw_args(plan: EncodePlan) -> list[str]:
    if plan.accelerator == "vaapi":
        return ["-init_hw_device", f"vaapi=hw:{plan.vaapi_device}", "-filter_hw_device", "hw"]
    if plan.accelerator == "qsv":
        return ["-init_hw_device", "qsv=hw", "-filter_hw_device", "hw"]
    return []


def _audio_outputs(plan: EncodePlan) -> list[str]:
    """Every audio track as 1-s (or, on an explicit timeline, 0.25-s) pieces."""
    # On an explicit timeline the cuts are not multiples of a step: short pieces keep
    # each audio segment's end within a quarter second of its video segment's.
    piece = (
        AUDIO_PIECE_ON_KEYFRAMES
        if plan.cuts is not None
        else audio_piece_seconds(plan.first_segment, plan.segment_seconds)
    )
    argv: list[str] = []
    for track in plan.audio:
        argv += ["-map", f"0:{track.stream}", "-map_metadata", "-1", "-map_chapters", "-1"]
        if track.copy:
            argv += ["-c:a", "copy"]
        else:
            argv += ["-c:a", "aac", "-b:a", str(track.bitrate), "-ac", "2", "-ar", "48000"]
        argv += _hls_args(track.name + PIECES_DIR_SUFFIX, piece)
    return argv


def transcode_argv(plan: EncodePlan, ffmpeg: str = "ffmpeg") -> list[str]:
    """The one ffmpeg command that encodes the whole ladder.

    Args:
        plan: what to encode.
        ffmpeg: the ffmpeg binary.

    Returns:
        argv; run it with the scratch folder as working directory. It writes
        ``<rung>/init.mp4``, ``<rung>/<seq>.m4s`` (seq from 0),
        ``<audio>.pieces/<n>.m4s``, ``trickplay/<n>.jpg`` and ``poster.jpg``.
    """
    if plan.skip:
        raise ValueError("only a chunk leaves rungs out")
    argv = _video_head(plan, ffmpeg)
    argv += [*policy.input_args(), "-i", plan.source, "-filter_complex", filter_graph(plan)]
    first, every = plan.first_segment, plan.segment_seconds
    for i, rung in enumerate(plan.rungs):
        if not plan.encodes(i):
            argv += ["-map", f"0:{plan.video_stream}", "-map_metadata", "-1"]
            argv += ["-map_chapters", "-1", "-c:v", "copy"]
            argv += _hls_args(plan.video_dir(rung), PIECE_EVERY_KEYFRAME)
            continue
        argv += ["-map", f"[v{i}]", "-map_metadata", "-1", "-map_chapters", "-1"]
        argv += video_encoder_args(plan, rung)
        if plan.cuts is not None:
            # The copied rung's keyframes, forced here: every rung cuts at the same instants.
            argv += ["-force_key_frames", forced_times(plan.cuts)]
            argv += _hls_args(plan.video_dir(rung), PIECE_EVERY_KEYFRAME)
        elif plan.video_pieces:
            # One piece per GOP: the muxer cuts at every keyframe.
            argv += _hls_args(plan.video_dir(rung), plan.piece_frames(rung.fps) / (rung.fps or 30))
        else:
            argv += ["-force_key_frames", keyframe_expr(first, every)]
            argv += _hls_args(rung.name, first)
    argv += _audio_outputs(plan)
    if plan.trickplay:
        argv += ["-map", "[tp]", "-c:v", "mjpeg", "-q:v", "5", "-fps_mode", "passthrough"]
        argv += ["-f", "image2", "-start_number", "0", "trickplay/%d.jpg"]
    if plan.poster:
        argv += ["-map", "[po]", "-c:v", "mjpeg", "-q:v", "3", "-fps_mode", "passthrough"]
        argv += ["-f", "image2", "-update", "1", POSTER_FILE]
    return argv


#: How much before its first frame a chunk's input seek lands (s): far less than a frame
#: at 240 fps, so the frame is kept (ffmpeg keeps frames at or after the seek) and its
#: time rounds to 0 in the encoder's time base.
SEEK_EARLY = 0.0001


@dataclass(frozen=True)
class ChunkSpan:
    """Where one chunk lies in the source, as ffmpeg is told it (``chunk_span``)."""

    seek: float  # input seek, s from the start of the file: the chunk's first frame
    duration: float | None  # input duration, s (None: to the end)
    keyframes: tuple[float, ...]  # where the chunk's segments start, s from its first frame
    first_segment: int  # the number of its first segment file
    first_thumb: int  # the global index of its first trickplay thumbnail
    offset: float  # where its first frame lies on the output timeline, s


def chunk_span(
    chunk: Chunk, timeline: Timeline, fps: float, *, video_offset: float = 0.0,
    thumb_interval: float | None = None,
) -> ChunkSpan:  # fmt: skip
    """The seek, length and keyframes of ``chunk`` on an ``fps`` output grid (pure).

    ``video_offset`` is where the video's first frame lies after the start of the
    file (the output timeline starts at the file's start, as a whole-file encode).
    """
    start = chunk.start_frame / fps
    # Segment j starts where segment j - 1 ends.
    inside = [frame_at(timeline.end(j - 1), fps) for j in range(chunk.first + 1, chunk.last + 1)]
    keyframes = (0.0, *((n - chunk.start_frame) / fps for n in inside))
    duration = None if chunk.end_frame is None else (chunk.end_frame - chunk.start_frame) / fps
    thumb = first_thumb(video_offset + start, thumb_interval) if thumb_interval else 0
    return ChunkSpan(
        seek=max(0.0, video_offset + start - SEEK_EARLY), duration=duration,
        keyframes=keyframes, first_segment=chunk.first, first_thumb=thumb,
        offset=video_offset + start,
    )  # fmt: skip


def chunk_argv(plan: EncodePlan, span: ChunkSpan, ffmpeg: str = "ffmpeg") -> list[str]:
    """The ffmpeg command that encodes one chunk of every video rung (but ``plan.skip``).

    The same graph, encoders and keyframe rules as ``transcode_argv``, on the
    chunk's frames only: an input seek to its first frame, its length, keyframes
    at its segments' starts, segment files numbered from its first segment. Its
    timestamps start at 0 (``kubevod.worker.mp4.rebase`` moves them to
    ``span.offset``). Audio is encoded once for the whole source
    (``audio_argv``), never per chunk: AAC priming at every chunk start would click.
    With a trickplay plan, the chunk's thumbnails go to ``trickplay/<n>.jpg``
    (``n`` the global thumbnail index); ``tile_argv`` makes the sheets.

    Raises:
        ValueError: a plan the chunks cannot carry (a passed-through top rung, GOP pieces).
    """
    if plan.copy_top or plan.video_pieces:
        raise ValueError("chunks need every rung encoded with forced keyframes")
    base = replace(plan, audio=(), poster=None, trickplay=None)
    argv = _video_head(plan, ffmpeg)
    argv += ["-ss", _num(span.seek)]
    if span.duration is not None:
        argv += ["-t", _num(span.duration)]
    graph = filter_graph(base)
    if plan.trickplay:
        graph = _with_thumbs(graph, plan, span.offset)
    argv += [*policy.input_args(), "-i", plan.source, "-filter_complex", graph]
    forced = forced_times(span.keyframes[1:])
    for i, rung in enumerate(plan.rungs):
        if not plan.filtered(i):
            continue
        argv += ["-map", f"[v{i}]", "-map_metadata", "-1", "-map_chapters", "-1"]
        argv += video_encoder_args(plan, rung)
        argv += ["-force_key_frames", ",".join(["0", *([forced] if forced else [])])]
        argv += [
            "-start_number",
            str(span.first_segment),
            *_hls_args(rung.name, plan.first_segment),
        ]
    if plan.trickplay:
        argv += ["-map", "[tp]", "-c:v", "mjpeg", "-q:v", "5", "-fps_mode", "passthrough"]
        argv += ["-f", "image2", "-start_number", str(span.first_thumb), "trickplay/%d.jpg"]
    return argv


def _with_thumbs(graph: str, plan: EncodePlan, offset: float) -> str:
    """``graph`` with a trickplay branch of single thumbnails, for a chunk whose local time
    0 is ``offset`` s on the video's timeline.

    Thumbnail ``i`` is the last frame before ``(i + 1) * interval`` on that timeline,
    the frame ``fps=1/interval:round=down`` picks in a whole-file encode: a frame is
    taken when the next one (a frame duration later) lies in the next interval. So
    each chunk makes exactly the thumbnails whose frame it holds, the one before a
    boundary included, and the chunks' thumbnails together are the whole file's.
    """
    assert plan.trickplay is not None
    tp = plan.trickplay
    head, _, rest = graph.partition(";")
    name, _, outs = head.rpartition("split=")
    count = int(outs.split("[", 1)[0])
    head = f"{name}split={count + 1}{outs[len(str(count)) :]}[stp]"
    at, step, every = _num(offset), _num(1 / plan.rungs[0].fps), _num(tp.interval)
    here = f"floor((t+{at})/{every}+{THUMB_EPS})"
    after = f"floor((t+{at}+{step})/{every}+{THUMB_EPS})"
    thumbs = (
        f"[stp]select='gt({after},{here})',"
        f"scale={tp.width}:{tp.height},setsar=1,format=yuvj420p[tp]"
    )
    return ";".join(part for part in (head, rest, thumbs) if part)


def first_thumb(offset: float, interval: float) -> int:
    """The first thumbnail a chunk starting at ``offset`` s makes (``_with_thumbs``): the
    one whose interval holds its first frame (pure)."""
    return math.floor(offset / interval + THUMB_EPS)


def tile_argv(plan: TrickplayOut, count: int, folder: str, ffmpeg: str = "ffmpeg") -> list[str]:
    """Sprite sheets ``<folder>/sheets/<n>.jpg`` from ``count`` thumbnails ``<folder>/<n>.jpg``."""
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-framerate", "1",
        "-start_number", "0", "-i", f"{folder}/%d.jpg", "-frames:v", str(count),
        "-vf", f"tile={plan.columns}x{plan.rows}", "-c:v", "mjpeg", "-q:v", "5",
        "-fps_mode", "passthrough", "-f", "image2", "-start_number", "0",
        f"{folder}/sheets/%d.jpg",
    ]  # fmt: skip


def audio_argv(plan: EncodePlan, ffmpeg: str = "ffmpeg") -> list[str]:
    """The audio tracks alone, for the whole source, as ``transcode_argv`` writes them."""
    if not plan.audio:
        raise ValueError("no audio to encode")
    argv = _head(ffmpeg)
    argv += [*policy.input_args(), "-i", plan.source]
    argv += _audio_outputs(plan)
    return argv


def poster_argv(
    source: str, *, at: float, width: int, height: int, out: str, ffmpeg: str = "ffmpeg"
) -> list[str]:
    """One JPEG frame of the source at ``at`` seconds (input seeking: decodes one GOP at most)."""
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-ss", _num(at),
        *policy.input_args(), "-i", source, "-map", "0:V:0", "-frames:v", "1",
        "-vf", f"scale={width}:{height},setsar=1,format=yuvj420p", "-q:v", "3", out,
    ]  # fmt: skip


def subtitles_argv(
    source: str, streams: Sequence[tuple[int, str]], ffmpeg: str = "ffmpeg"
) -> list[str]:
    """Export text subtitle streams ``(stream index, output .vtt path)`` as WebVTT in one pass."""
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *policy.input_args(),
            "-i", source]  # fmt: skip
    for index, out in streams:
        argv += ["-map", f"0:{index}", "-c:s", "webvtt", "-f", "webvtt", out]
    return argv


def trial_argv(
    accel: Accel,
    ffmpeg: str = "ffmpeg",
    vaapi_device: str = DEFAULT_VAAPI_DEVICE,
    codec: Codec = "h264",
) -> list[str]:
    """A one-frame encode that succeeds only when ``accel`` really encodes ``codec`` here.

    Raises:
        ValueError: ``accel`` has no encoder for ``codec``.
    """
    encoder = encoder_name(codec, accel)
    if encoder is None:
        raise ValueError(f"no {codec} encoder for {accel}")
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error"]
    chain = "format=yuv420p"
    if accel == "vaapi":
        argv += ["-init_hw_device", f"vaapi=hw:{vaapi_device}", "-filter_hw_device", "hw"]
        chain = "format=nv12,hwupload"
    elif accel == "qsv":
        argv += ["-init_hw_device", "qsv=hw", "-filter_hw_device", "hw"]
        chain = "format=nv12,hwupload=extra_hw_frames=16"
    argv += ["-f", "lavfi", "-i", "color=c=gray:s=256x144:r=25:d=0.2", "-vf", chain]
    argv += ["-frames:v", "1", "-c:v", encoder, "-f", "null", "-"]
    return argv
