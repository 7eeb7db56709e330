"""The pure side of chunked encoding: chunk plans, spans, ffmpeg command lines, and the
fMP4 rebase, table-driven; plus the mover's refusal of a chunk whose init differs."""

from __future__ import annotations

import itertools
import re
import struct
from dataclasses import replace
from pathlib import Path

import pytest
from kubevod.worker.chunks import ChunkMover, chunk_passes, gather_thumbs, thumbs_for
from kubevod.worker.errors import MediaFormatError, TranscodeFailed
from kubevod.worker.ffmpeg import (
    SEEK_EARLY,
    AudioOut,
    ChunkSpan,
    EncodePlan,
    TrickplayOut,
    audio_argv,
    chunk_argv,
    chunk_span,
    first_thumb,
    transcode_argv,
)
from kubevod.worker.ladder import Rung
from kubevod.worker.mp4 import parse_fragments, rebase
from kubevod.worker.thumbs import (
    chunk_sheet_count,
    chunk_thumbs,
    chunked_trickplay_vtt,
    thumb_count,
)

from kubevod.timeline import Chunk, Timeline, chunk_of, frame_at, plan_chunks

REGULAR = Timeline.regular(1.0, 4.0)  # cuts at 1, 5, 9, ...


@pytest.mark.parametrize(
    ("duration", "fps", "seconds", "expected"),
    [
        # (first segment, count, start frame, end frame) per chunk
        (61.0, 30.0, 20.0, [(0, 6, 0, 630), (6, 5, 630, 1230), (11, 5, 1230, None)]),
        # A last chunk under half the length joins the one before.
        (45.0, 30.0, 20.0, [(0, 6, 0, 630), (6, 6, 630, None)]),
        # Shorter than one chunk: one chunk of everything.
        (3.0, 30.0, 20.0, [(0, 2, 0, None)]),
        # One segment.
        (0.5, 30.0, 20.0, [(0, 1, 0, None)]),
        # 29.97: a cut at 21 s is frame 630 (21.021 s), the first frame at or after it.
        (61.0, 30000 / 1001, 20.0, [(0, 6, 0, 630), (6, 5, 630, 1229), (11, 5, 1229, None)]),
        # Chunks as long as a segment.
        (10.0, 25.0, 4.0, [(0, 2, 0, 125), (2, 2, 125, None)]),
    ],
)
def test_plan_chunks(
    duration: float, fps: float, seconds: float, expected: list[tuple[int, int, int, int | None]]
) -> None:
    chunks = plan_chunks(REGULAR, duration, fps, seconds)
    assert [(c.first, c.count, c.start_frame, c.end_frame) for c in chunks] == expected
    assert [c.index for c in chunks] == list(range(len(chunks)))
    # Every segment of the timeline in exactly one chunk, in order.
    segments = len(REGULAR.cuts_before(duration)) + 1
    assert sum(c.count for c in chunks) == segments
    for a, b in itertools.pairwise(chunks):
        assert (a.last + 1, a.end_frame) == (b.first, b.start_frame)


def test_plan_chunks_on_an_explicit_timeline() -> None:
    keyframes = Timeline(first=1.0, every=4.0, cuts=(1.5, 6.0, 9.0, 13.5, 18.0))
    chunks = plan_chunks(keyframes, 20.0, 30.0, 8.0)
    assert [(c.first, c.count, c.start_frame) for c in chunks] == [(0, 3, 0), (3, 3, 270)]


def test_a_short_first_chunk_then_chunks_of_the_usual_length() -> None:
    # Cuts at 1, 3, 5, ...: the first chunk ends at the first cut >= 3 s, the others span 8 s.
    timeline = Timeline.regular(1.0, 2.0)
    chunks = plan_chunks(timeline, 40.0, 30.0, 8.0, first_seconds=3.0)
    assert [(c.first, c.count, c.start_frame) for c in chunks[:3]] == [
        (0, 2, 0), (2, 4, 90), (6, 4, 330),
    ]  # fmt: skip
    assert plan_chunks(timeline, 40.0, 30.0, 8.0, first_seconds=8.0) == plan_chunks(
        timeline, 40.0, 30.0, 8.0
    )


def test_plan_chunks_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        plan_chunks(REGULAR, 10.0, 0.0, 4.0)
    with pytest.raises(ValueError):
        plan_chunks(REGULAR, 10.0, 30.0, 0.0)
    with pytest.raises(ValueError):
        plan_chunks(REGULAR, 10.0, 30.0, 4.0, first_seconds=0.0)


def test_chunk_of_finds_every_segment_and_nothing_outside() -> None:
    chunks = plan_chunks(REGULAR, 61.0, 30.0, 20.0)
    assert [chunk_of(chunks, s).index for s in range(16)] == [0] * 6 + [1] * 5 + [2] * 5
    with pytest.raises(IndexError):
        chunk_of(chunks, 16)
    with pytest.raises(IndexError):
        chunk_of(chunks, -1)


@pytest.mark.parametrize(
    ("seconds", "fps", "frame"),
    [(0.0, 30.0, 0), (1.0, 30.0, 30), (1.0, 30000 / 1001, 30), (1.001, 30000 / 1001, 30),
     (1.0011, 30000 / 1001, 31), (0.04, 25.0, 1), (2.5, 24.0, 60)],
)  # fmt: skip
def test_frame_at_is_the_first_frame_at_or_after(seconds: float, fps: float, frame: int) -> None:
    assert frame_at(seconds, fps) == frame


def test_chunk_span_seeks_just_before_the_first_frame_and_keys_its_segments() -> None:
    chunks = plan_chunks(REGULAR, 61.0, 30.0, 20.0)
    first = chunk_span(chunks[0], REGULAR, 30.0)
    assert first == ChunkSpan(
        seek=0.0, duration=21.0, keyframes=(0.0, 1.0, 5.0, 9.0, 13.0, 17.0), first_segment=0,
        first_thumb=0, offset=0.0,
    )  # fmt: skip
    middle = chunk_span(chunks[1], REGULAR, 30.0, video_offset=0.5, thumb_interval=2.0)
    assert middle.seek == pytest.approx(21.5 - SEEK_EARLY)
    assert middle.offset == pytest.approx(21.5)
    assert middle.duration == pytest.approx(20.0)
    assert middle.keyframes == pytest.approx((0.0, 4.0, 8.0, 12.0, 16.0))
    # Thumbnail 10 (the last frame before 22 s) is this chunk's: it starts at 21.5 s.
    assert (middle.first_segment, middle.first_thumb) == (6, 10)
    last = chunk_span(chunks[2], REGULAR, 30.0)
    assert last.duration is None and last.first_segment == 11


def _plan(**changes: object) -> EncodePlan:
    values: dict[str, object] = {
        "source": "/in/film.mkv",
        "video_stream": 0,
        "rungs": (
            Rung("720p", 1280, 720, 30.0, 3_000_000, 6_000_000),
            Rung("360p", 640, 360, 30.0, 800_000, 1_600_000),
        ),
        "audio": (AudioOut("audio", 1),),
        "segment_seconds": 4.0,
        "cpus": 2.0,
    }
    values.update(changes)
    return EncodePlan(**values)  # type: ignore[arg-type]


def _after(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_chunk_argv_encodes_only_the_chunks_video_on_its_own_keyframes() -> None:
    plan = _plan()
    span = ChunkSpan(
        seek=20.9999, duration=20.0, keyframes=(0.0, 4.0, 8.0), first_segment=6,
        first_thumb=0, offset=21.0,
    )  # fmt: skip
    argv = chunk_argv(plan, span)
    # Input options come before the input.
    assert argv.index("-ss") < argv.index("-t") < argv.index("-i")
    assert _after(argv, "-ss") == ["20.9999"] and _after(argv, "-t") == ["20"]
    assert _after(argv, "-start_number") == ["6", "6"]
    assert _after(argv, "-force_key_frames") == ["0,3.999,7.999"] * 2
    assert _after(argv, "-hls_segment_filename") == ["720p/%d.m4s", "360p/%d.m4s"]
    assert "-c:a" not in argv and "poster.jpg" not in argv  # audio once, poster apart
    # The same encoders as the one-process command.
    whole = transcode_argv(plan)
    assert _after(argv, "-c:v") == _after(whole, "-c:v")[:2]
    assert _after(argv, "-crf") == _after(whole, "-crf")


def test_the_last_chunk_runs_to_the_end_and_a_chunk_can_carry_thumbnails() -> None:
    plan = _plan(trickplay=TrickplayOut(interval=2.0, width=160, height=90))
    span = ChunkSpan(
        seek=41.0, duration=None, keyframes=(0.0,), first_segment=11, first_thumb=21,
        offset=41.0,
    )  # fmt: skip
    argv = chunk_argv(plan, span)
    assert "-t" not in argv
    assert _after(argv, "-force_key_frames") == ["0", "0"]
    graph = _after(argv, "-filter_complex")[0]
    # A frame is a thumbnail when the next one (1/30 s on) is in the next 2 s interval,
    # on the video's timeline (the chunk's 0 is 41 s there).
    assert (
        "[stp]select='gt(floor((t+41+0.033333)/2+1e-06),floor((t+41)/2+1e-06))',scale=160:90,"
        in graph
    )
    assert graph.count("[stp]") == 2  # made by the split, used by the branch
    assert argv[-3:] == ["-start_number", "21", "trickplay/%d.jpg"]


def test_chunk_argv_refuses_what_chunks_cannot_carry() -> None:
    span = ChunkSpan(0.0, None, (0.0,), 0, 0, 0.0)
    with pytest.raises(ValueError):
        chunk_argv(_plan(copy_top=True, cuts=(1.0, 5.0)), span)
    with pytest.raises(ValueError):
        chunk_argv(_plan(codec="av1"), span)


_FIVE = (
    Rung("1080p", 1920, 1080, 30.0, 5_000_000, 10_000_000),
    Rung("720p", 1280, 720, 30.0, 3_000_000, 6_000_000),
    Rung("480p", 854, 480, 30.0, 1_500_000, 3_000_000),
    Rung("360p", 640, 360, 30.0, 800_000, 1_600_000),
    Rung("240p", 426, 240, 30.0, 300_000, 600_000),
)


def _chain(graph: str, label: str) -> list[str]:
    """The filter chains from the graph's input to output ``label`` (last first), without
    the splits that hand their frames on."""
    parts = graph.split(";")
    chains = []
    while True:
        part = next(p for p in parts if label in p.split("]", 1)[-1])
        chains.append(re.sub(r"(,split=\d+)?(\[\w+\])+$", "", part))  # the filters
        if part.startswith("[0:"):
            return chains
        label = part[: part.index("]") + 1]


@pytest.mark.parametrize("scaler", ["zscale", "swscale"])
def test_a_chunk_can_leave_rungs_out_and_scales_the_rest_as_the_ladder_does(
    scaler: str,
) -> None:
    span = ChunkSpan(24.0, 8.0, (0.0, 2.0, 4.0, 6.0), 12, 0, 24.0)
    ladder = _plan(rungs=_FIVE, scaler=scaler)
    lowest = replace(ladder, skip=frozenset(r.name for r in _FIVE[:-1]))
    argv = chunk_argv(lowest, span)
    # Only the lowest rung is encoded and written.
    assert _after(argv, "-map") == ["[v4]"]
    assert _after(argv, "-hls_segment_filename") == ["240p/%d.m4s"]
    assert lowest.written == _FIVE[-1:]
    # Its frames come down the same chain of resizes as in the whole ladder (so the
    # encoder is given the same frames and writes the same parameter sets); the rungs
    # that feed nothing encoded are not made at all.
    graph = _after(argv, "-filter_complex")[0]
    assert _chain(graph, "[v4]") == _chain(
        _after(chunk_argv(ladder, span), "-filter_complex")[0], "[v4]"
    )
    made = [p.split("]", 1)[0] + "]" for p in graph.split(";")]
    assert "[c1_2]" not in made  # 480p feeds no encoded rung
    # Every label made is used once: no dangling output, which ffmpeg refuses.
    outs = re.findall(r"\[(\w+)\]", graph)
    assert all(outs.count(label) == 2 for label in set(outs) - {"0:0", "v4"}), graph
    # The rest of the chunk in the next run: the other four, the same graph otherwise.
    rest = chunk_argv(replace(ladder, skip=frozenset({"240p"})), span)
    assert _after(rest, "-map") == ["[v0]", "[v1]", "[v2]", "[v3]"]
    # Only chunks leave rungs out.
    with pytest.raises(ValueError):
        transcode_argv(lowest)


def test_audio_argv_is_the_whole_sources_audio_as_pieces() -> None:
    argv = audio_argv(_plan())
    assert "-ss" not in argv and "-filter_complex" not in argv
    assert _after(argv, "-map") == ["0:1"]
    assert _after(argv, "-hls_segment_filename") == ["audio.pieces/%d.m4s"]
    # The same audio outputs as the one-process command.
    whole = transcode_argv(_plan())
    at = whole.index("0:1")
    assert argv[argv.index("0:1") :] == whole[at : at + len(argv) - argv.index("0:1")]
    with pytest.raises(ValueError):
        audio_argv(_plan(audio=()))


# --------------------------------------------------------------------------- fMP4 rebase


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _segment(tfdt: int, *, version: int = 1, sidx_scale: int = 90_000) -> bytes:
    """styp + sidx + moof(mfhd, traf(tfhd, tfdt, trun of 2 samples)) + mdat."""
    sidx = _box(
        b"sidx", b"\x01\x00\x00\x00" + struct.pack(">IIQQ", 1, sidx_scale, tfdt, 0) + bytes(4)
    )
    mfhd = _box(b"mfhd", bytes(4) + struct.pack(">I", 1))
    tfhd = _box(b"tfhd", b"\x00\x02\x00\x08" + struct.pack(">II", 1, 3000))  # default duration
    time = struct.pack(">Q", tfdt) if version == 1 else struct.pack(">I", tfdt)
    tfdt_box = _box(b"tfdt", bytes([version, 0, 0, 0]) + time)
    trun = _box(b"trun", b"\x00\x00\x00\x00" + struct.pack(">I", 2))
    moof = _box(b"moof", mfhd + _box(b"traf", tfhd + tfdt_box + trun))
    return _box(b"styp", b"msdh") + sidx + moof + _box(b"mdat", b"\x00" * 16)


@pytest.mark.parametrize("version", [0, 1])
def test_rebase_moves_every_time_and_renumbers_the_fragments(version: int) -> None:
    data = _segment(6000, version=version)
    moved = rebase(data, 90_000 * 21, 90_000, 7)
    assert len(moved) == len(data)
    frag = parse_fragments(moved)
    assert (frag.start_ticks, frag.duration_ticks, frag.samples) == (6000 + 1_890_000, 6000, 2)
    # sidx earliest presentation time and the moof's sequence number.
    sidx_at = moved.index(b"sidx") + 4
    assert struct.unpack_from(">Q", moved, sidx_at + 12)[0] == 6000 + 1_890_000
    mfhd_at = moved.index(b"mfhd") + 4
    assert struct.unpack_from(">I", moved, mfhd_at + 4)[0] == 7
    assert rebase(moved, 0, 90_000, 7) == moved


def test_rebase_converts_to_the_sidx_timescale_and_refuses_an_overflow() -> None:
    moved = rebase(_segment(0, sidx_scale=1000), 90_000 * 3, 90_000, 1)
    sidx_at = moved.index(b"sidx") + 4
    assert struct.unpack_from(">Q", moved, sidx_at + 12)[0] == 3000
    with pytest.raises(MediaFormatError):
        rebase(_segment(2**32 - 10, version=0), 100, 90_000, 1)


# --------------------------------------------------------------------------- the mover


def test_a_chunk_whose_init_segment_differs_stops_the_transcode(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "360p").mkdir(parents=True)
    (out / "360p" / "init.mp4").write_bytes(b"the first chunk's")
    folder = tmp_path / "chunk"
    (folder / "360p").mkdir(parents=True)
    (folder / "360p" / "init.mp4").write_bytes(b"another")
    (folder / "360p" / "6.m4s").write_bytes(_segment(0))
    span = ChunkSpan(21.0, None, (0.0,), 6, 0, 21.0)
    with pytest.raises(TranscodeFailed, match="different init segment for 360p"):
        ChunkMover(span, folder, out, ("360p",)).poll()
    assert not (out / "360p" / "6.m4s").exists()  # nothing published


def test_thumbnails_of_all_chunks_are_numbered_in_time_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for folder, names in ((a, ["0", "1", "2"]), (b, ["2", "3", "10"])):
        for name in names:
            (folder / f"{name}.jpg").write_text(f"{folder.name}{name}")
    into = tmp_path / "thumbs"
    assert gather_thumbs([a, b], into) == 5
    got = [(into / f"{n}.jpg").read_text() for n in range(5)]
    assert got == ["a0", "a1", "a2", "b3", "b10"]  # the first chunk's copy of a repeat


def test_chunk_dataclass_last_segment() -> None:
    assert Chunk(0, 6, 5, 630, None).last == 10
    assert Chunk(1, 0, 1, 0, 30).last == 0


_LADDER = (
    Rung("1080p", 1920, 1080, 30.0, 5_000_000, 10_000_000),
    Rung("720p", 1280, 720, 30.0, 3_000_000, 6_000_000),
    Rung("240p", 426, 240, 30.0, 300_000, 600_000),
)


@pytest.mark.parametrize(
    ("rungs", "sought", "expected"),
    [
        # Playback running on: one ffmpeg for every rung, the cheapest.
        (_LADDER, False, [("1080p", "720p", "240p")]),
        # A seek: the lowest rung alone first, then the rest in one ffmpeg.
        (_LADDER, True, [("240p",), ("1080p", "720p")]),
        # What a stopped chunk left to do: only those rungs, lowest first on a seek.
        (_LADDER[:2], True, [("720p",), ("1080p",)]),
        # One rung: one ffmpeg either way.
        (_LADDER[:1], True, [("1080p",)]),
        (_LADDER[2:], False, [("240p",)]),
        # Nothing left to encode: no ffmpeg at all.
        ((), True, []),
        ((), False, []),
    ],
)
def test_chunk_passes_encode_a_sought_chunks_lowest_rung_first(
    rungs: tuple[Rung, ...], sought: bool, expected: list[tuple[str, ...]]
) -> None:
    passes = chunk_passes(rungs, sought=sought)
    assert [tuple(r.name for r in part) for part in passes] == expected
    # Every rung in exactly one pass.
    assert sorted(r.name for part in passes for r in part) == sorted(r.name for r in rungs)


@pytest.mark.parametrize(
    ("offset", "interval", "first"),
    [
        (0.0, 1.0, 0),
        (3.0, 1.0, 3),  # on a boundary: the interval it starts is its own
        (3.003, 1.0, 3),  # the last frame before 4 s is this chunk's
        (2.9999999999, 1.0, 3),  # float noise on a boundary
        (41.0, 2.0, 20),
        (21.5, 2.0, 10),
        (9.0, 10.0, 0),  # shorter than an interval: the thumbnail may be a later chunk's
    ],
)
def test_first_thumb_is_the_one_whose_interval_holds_the_chunks_first_frame(
    offset: float, interval: float, first: int
) -> None:
    assert first_thumb(offset, interval) == first


def test_chunk_thumbs_give_every_thumbnail_to_exactly_one_chunk() -> None:
    # 13.013 s at 29.97 fps, chunks at 0, 3.003, 7.007, 11.011; a thumbnail a second.
    ranges = chunk_thumbs([0.0, 3.003, 7.007, 11.011], 13.013, 1.0)
    assert ranges == [range(0, 3), range(3, 7), range(7, 11), range(11, 14)]
    assert [i for r in ranges for i in r] == list(range(thumb_count(13.013, 1.0)))
    # A chunk shorter than the interval may own none.
    assert chunk_thumbs([0.0, 10.0, 12.0, 20.0], 25.0, 10.0) == [
        range(0, 1), range(1, 1), range(1, 2), range(2, 3),
    ]  # fmt: skip


def test_a_chunked_trickplay_index_points_each_cue_into_its_chunks_sheets() -> None:
    plan = TrickplayOut(interval=2.0, width=160, height=90, columns=2, rows=2)
    ranges = [range(0, 5), range(5, 6), range(6, 6), range(6, 8)]
    vtt = chunked_trickplay_vtt(plan, 15.0, ranges)
    cues = [ln for ln in vtt.splitlines() if "#xywh=" in ln]
    times = [ln for ln in vtt.splitlines() if "-->" in ln]
    assert vtt.startswith("WEBVTT\n")
    assert cues == [
        "c0-0.jpg#xywh=0,0,160,90", "c0-0.jpg#xywh=160,0,160,90",
        "c0-0.jpg#xywh=0,90,160,90", "c0-0.jpg#xywh=160,90,160,90",
        "c0-1.jpg#xywh=0,0,160,90",  # chunk 0's fifth: its second sheet
        "c1-0.jpg#xywh=0,0,160,90",
        "c3-0.jpg#xywh=0,0,160,90", "c3-0.jpg#xywh=160,0,160,90",
    ]  # fmt: skip
    assert times[0] == "00:00:00.000 --> 00:00:02.000"
    assert times[-1] == "00:00:14.000 --> 00:00:15.000"  # the last ends with the video
    assert [chunk_sheet_count(plan, r) for r in ranges] == [2, 1, 0, 1]


@pytest.mark.parametrize(
    ("wanted", "made", "chosen"),
    [
        (range(3, 7), {3, 4, 5, 6}, [3, 4, 5, 6]),
        (range(3, 7), {3, 4, 6}, [3, 4, 4, 6]),  # a gap: the nearest, the earlier on a tie
        (range(3, 7), {4, 5, 6, 7}, [4, 4, 5, 6]),  # one it does not owe is not used twice
        (range(11, 14), {11, 12}, [11, 12, 12]),  # the video's last one, never made
        (range(3, 5), set(), []),
    ],
)
def test_thumbs_for_fills_a_chunks_sheets_cell_by_cell(
    wanted: range, made: set[int], chosen: list[int]
) -> None:
    assert thumbs_for(wanted, made) == chosen
