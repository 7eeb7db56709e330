"""A small, pure reader of the fMP4 boxes the worker needs (ISO/IEC 14496-12).

ffmpeg writes CMAF init segments (``init.mp4``) and media segments (``N.m4s``);
the worker reads back from the bytes themselves, not from what it asked for:

- from an init segment: track kind, timescale, size, and the RFC 6381 codecs
  string (``avc1.PPCCLL`` from ``avcC``, ``hvc1.P.C.Lxx.CC`` from ``hvcC``
  (ISO/IEC 14496-15 Annex E), ``av01.P.LLT.DD`` from ``av1C`` (AV1-ISOBMFF
  "Codecs Parameter String"), ``mp4a.40.N`` from ``esds``);
- from a media segment: decode start, duration, sample count, and whether it
  starts with a sync sample (a keyframe), so every segment can be checked and
  recorded with its exact timing.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from kubevod.worker.errors import MediaFormatError

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"edts"}
_NON_SYNC = 0x00010000  # sample_is_non_sync_sample in ISO BMFF sample flags


@dataclass(frozen=True)
class TrackInit:
    """What an init segment says about its (single) track."""

    kind: str  # "video" | "audio" | other handler type
    timescale: int
    codecs: str  # RFC 6381
    width: int = 0
    height: int = 0
    channels: int = 0
    sample_rate: int = 0
    default_sample_duration: int = 0


@dataclass(frozen=True)
class FragmentInfo:
    """Timing of one media segment (all its fragments together)."""

    start_ticks: int  # baseMediaDecodeTime of the first fragment
    duration_ticks: int
    samples: int
    starts_with_sync: bool

    def start(self, timescale: int) -> float:
        """Decode start in seconds."""
        return self.start_ticks / timescale

    def duration(self, timescale: int) -> float:
        """Duration in seconds."""
        return self.duration_ticks / timescale


def iter_boxes(
    data: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(type, payload_start, box_end)`` of the boxes in ``data[start:end]``.

    Raises:
        MediaFormatError: on a truncated or malformed box header.
    """
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise MediaFormatError("truncated 64-bit box header")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise MediaFormatError(f"box {kind!r} at {pos} overruns its parent")
        yield kind, pos + header, pos + size
        pos += size


def find_boxes(
    data: bytes, path: list[bytes], start: int = 0, end: int | None = None
) -> list[tuple[int, int]]:
    """Every ``(payload_start, box_end)`` reached by following the box types in ``path``."""
    if not path:
        return []
    found: list[tuple[int, int]] = []
    for kind, payload, box_end in iter_boxes(data, start, end):
        if kind != path[0]:
            continue
        if len(path) == 1:
            found.append((payload, box_end))
        elif kind in _CONTAINERS:
            found.extend(find_boxes(data, path[1:], payload, box_end))
    return found


def _one(data: bytes, path: list[bytes], start: int = 0, end: int | None = None) -> tuple[int, int]:
    boxes = find_boxes(data, path, start, end)
    if not boxes:
        raise MediaFormatError("missing box " + "/".join(p.decode() for p in path))
    return boxes[0]


def _avc_codecs(data: bytes, start: int, end: int, fourcc: str) -> str:
    # VisualSampleEntry: 8 (SampleEntry) + 70 bytes before child boxes.
    for kind, payload, _ in iter_boxes(data, start + 78, end):
        if kind == b"avcC":
            profile, compat, level = data[payload + 1], data[payload + 2], data[payload + 3]
            return f"{fourcc}.{profile:02x}{compat:02x}{level:02x}"
    raise MediaFormatError("avc sample entry without avcC")


def _config_box(data: bytes, start: int, end: int, box: bytes) -> int:
    """Payload start of the ``box`` child of a VisualSampleEntry (78 bytes before children)."""
    for kind, payload, _ in iter_boxes(data, start + 78, end):
        if kind == box:
            return payload
    raise MediaFormatError(f"video sample entry without {box.decode()}")


def hevc_codecs(config: bytes, fourcc: str = "hvc1") -> str:
    """RFC 6381 string of an HEVCDecoderConfigurationRecord (the ``hvcC`` payload).

    ``hvc1.[A|B|C]<profile_idc>.<compat flags, bit-reversed, hex>.<L|H><level_idc>``
    then the constraint-indicator bytes in hex, trailing zero bytes left out.
    """
    space, tier, profile = config[1] >> 6, (config[1] >> 5) & 1, config[1] & 0x1F
    compat = int.from_bytes(config[2:6], "big")
    reversed_compat = int(f"{compat:032b}"[::-1], 2)
    constraints = list(config[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    level = config[12]
    parts = [
        fourcc,
        ("", "A", "B", "C")[space] + str(profile),
        f"{reversed_compat:X}",
        ("H" if tier else "L") + str(level),
        *(f"{b:X}" for b in constraints),
    ]
    return ".".join(parts)


def av1_codecs(config: bytes) -> str:
    """RFC 6381 string of an AV1CodecConfigurationRecord (the ``av1C`` payload).

    ``av01.<profile>.<level, 2 digits><M|H tier>.<bit depth, 2 digits>``.
    """
    if config[0] & 0x7F != 1:
        raise MediaFormatError(f"unknown av1C version {config[0] & 0x7F}")
    profile, level = config[1] >> 5, config[1] & 0x1F
    tier, high_bitdepth, twelve_bit = config[2] >> 7, (config[2] >> 6) & 1, (config[2] >> 5) & 1
    depth = 12 if high_bitdepth and twelve_bit else 10 if high_bitdepth else 8
    return f"av01.{profile}.{level:02d}{'H' if tier else 'M'}.{depth:02d}"


def _descriptor(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, payload_start, payload_end) of an MPEG-4 descriptor at ``pos``."""
    tag = data[pos]
    pos += 1
    size = 0
    for _ in range(4):
        byte = data[pos]
        pos += 1
        size = (size << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return tag, pos, pos + size


def _mp4a_codecs(data: bytes, start: int, end: int) -> tuple[str, int, int]:
    channels, _, _, _, rate = struct.unpack_from(">HHHHI", data, start + 16)
    sample_rate = rate >> 16
    for kind, payload, box_end in iter_boxes(data, start + 28, end):
        if kind != b"esds":
            continue
        tag, pos, dend = _descriptor(data, payload + 4)  # skip FullBox version/flags
        if tag != 3:
            break
        flags = data[pos + 2]
        pos += 3
        if flags & 0x80:
            pos += 2
        if flags & 0x40:
            pos += 1 + data[pos]
        if flags & 0x20:
            pos += 2
        tag, pos, dend = _descriptor(data, pos)  # DecoderConfigDescriptor
        if tag != 4:
            break
        object_type = data[pos]
        tag, pos, dend = _descriptor(data, pos + 13)  # DecoderSpecificInfo
        if tag == 5 and dend <= box_end and object_type == 0x40:
            aot = data[pos] >> 3
            return f"mp4a.40.{aot}", channels, sample_rate
        return f"mp4a.{object_type:02x}", channels, sample_rate
    raise MediaFormatError("mp4a sample entry without a usable esds")


def parse_init(data: bytes) -> TrackInit:
    """Read the track of a CMAF init segment.

    Args:
        data: the bytes of ``init.mp4``.

    Returns:
        The first track's kind, timescale, geometry and RFC 6381 codecs string.

    Raises:
        MediaFormatError: when the bytes are not an init segment we understand.
    """
    try:
        trak = _one(data, [b"moov", b"trak"])
        mdhd, _ = _one(data, [b"mdia", b"mdhd"], *trak)
        version = data[mdhd]
        timescale = struct.unpack_from(">I", data, mdhd + (20 if version == 1 else 12))[0]
        hdlr, _ = _one(data, [b"mdia", b"hdlr"], *trak)
        handler = data[hdlr + 8 : hdlr + 12]
        kind = {b"vide": "video", b"soun": "audio"}.get(handler, handler.decode("latin-1"))
        stsd, stsd_end = _one(data, [b"mdia", b"minf", b"stbl", b"stsd"], *trak)
        entries = list(iter_boxes(data, stsd + 8, stsd_end))
        if not entries:
            raise MediaFormatError("empty stsd")
        fourcc, entry, entry_end = entries[0]
        trex = find_boxes(data, [b"moov", b"mvex", b"trex"])
        default_duration = struct.unpack_from(">I", data, trex[0][0] + 12)[0] if trex else 0
        if fourcc in (b"avc1", b"avc3"):
            width, height = struct.unpack_from(">HH", data, entry + 24)
            codecs = _avc_codecs(data, entry, entry_end, fourcc.decode())
            return TrackInit(
                kind, timescale, codecs, width, height, default_sample_duration=default_duration
            )
        if fourcc in (b"hvc1", b"hev1", b"av01"):
            width, height = struct.unpack_from(">HH", data, entry + 24)
            if fourcc == b"av01":
                codecs = av1_codecs(data[_config_box(data, entry, entry_end, b"av1C") :][:4])
            else:
                payload = _config_box(data, entry, entry_end, b"hvcC")
                codecs = hevc_codecs(data[payload : payload + 13], fourcc.decode())
            return TrackInit(
                kind, timescale, codecs, width, height, default_sample_duration=default_duration
            )
        if fourcc == b"mp4a":
            codecs, channels, rate = _mp4a_codecs(data, entry, entry_end)
            return TrackInit(
                kind,
                timescale,
                codecs,
                channels=channels,
                sample_rate=rate,
                default_sample_duration=default_duration,
            )
        return TrackInit(
            kind, timescale, fourcc.decode("latin-1"), default_sample_duration=default_duration
        )
    except (struct.error, IndexError) as exc:
        raise MediaFormatError(f"malformed init segment: {exc}") from exc


def parse_fragments(data: bytes, default_sample_duration: int = 0) -> FragmentInfo:
    """Timing of a CMAF media segment (one or more ``moof`` + ``mdat``).

    Args:
        data: the bytes of one ``.m4s`` file.
        default_sample_duration: the init segment's ``trex`` default, used when
            neither ``tfhd`` nor ``trun`` carries durations.

    Returns:
        Start, duration, sample count and whether the first sample is a sync sample.

    Raises:
        MediaFormatError: when there is no fragment or a box is malformed.
    """
    start: int | None = None
    duration = samples = 0
    first_sync: bool | None = None
    try:
        for traf, traf_end in find_boxes(data, [b"moof", b"traf"]):
            tfhd, _ = _one(data, [b"tfhd"], traf, traf_end)
            tf_flags = int.from_bytes(data[tfhd + 1 : tfhd + 4], "big")
            pos = tfhd + 8  # version/flags + track_ID
            if tf_flags & 0x01:
                pos += 8
            if tf_flags & 0x02:
                pos += 4
            dflt_duration, dflt_flags = default_sample_duration, 0
            if tf_flags & 0x08:
                dflt_duration = struct.unpack_from(">I", data, pos)[0]
                pos += 4
            if tf_flags & 0x10:
                pos += 4
            if tf_flags & 0x20:
                dflt_flags = struct.unpack_from(">I", data, pos)[0]
            tfdt = find_boxes(data, [b"tfdt"], traf, traf_end)
            if tfdt and start is None:
                off = tfdt[0][0]
                fmt = ">Q" if data[off] == 1 else ">I"
                start = struct.unpack_from(fmt, data, off + 4)[0]
            for trun, _ in find_boxes(data, [b"trun"], traf, traf_end):
                tr_flags = int.from_bytes(data[trun + 1 : trun + 4], "big")
                count = struct.unpack_from(">I", data, trun + 4)[0]
                pos = trun + 8
                first_flags: int | None = None
                if tr_flags & 0x001:
                    pos += 4
                if tr_flags & 0x004:
                    first_flags = struct.unpack_from(">I", data, pos)[0]
                    pos += 4
                for i in range(count):
                    sample_duration, sample_flags = dflt_duration, dflt_flags
                    if tr_flags & 0x100:
                        sample_duration = struct.unpack_from(">I", data, pos)[0]
                        pos += 4
                    if tr_flags & 0x200:
                        pos += 4
                    if tr_flags & 0x400:
                        sample_flags = struct.unpack_from(">I", data, pos)[0]
                        pos += 4
                    if tr_flags & 0x800:
                        pos += 4
                    if i == 0 and first_flags is not None:
                        sample_flags = first_flags
                    if first_sync is None:
                        first_sync = not sample_flags & _NON_SYNC
                    duration += sample_duration
                samples += count
    except (struct.error, IndexError) as exc:
        raise MediaFormatError(f"malformed media segment: {exc}") from exc
    if start is None or samples == 0:
        raise MediaFormatError("media segment without a fragment")
    return FragmentInfo(start, duration, samples, bool(first_sync))


def rebase(data: bytes, ticks: int, timescale: int, first_sequence: int) -> bytes:
    """A media segment moved ``ticks`` (of ``timescale``, the track's) later (pure).

    Every ``tfdt`` (baseMediaDecodeTime) gains ``ticks``, so does the ``sidx``
    earliest presentation time (in its own timescale), and the ``moof`` boxes are
    numbered from ``first_sequence`` (``mfhd``): a chunk encoded on its own, from
    time 0, becomes the segments a front-to-back encode would have written.

    Raises:
        MediaFormatError: a box is malformed, or a 32-bit ``tfdt`` would overflow.
    """
    out = bytearray(data)
    sequence = first_sequence
    try:
        for sidx, _ in find_boxes(data, [b"sidx"]):
            (scale,) = struct.unpack_from(">I", data, sidx + 8)
            shift = ticks if scale == timescale else round(ticks * scale / timescale)
            fmt = ">Q" if data[sidx] == 1 else ">I"
            (value,) = struct.unpack_from(fmt, data, sidx + 12)
            if fmt == ">I" and value + shift >= 2**32:
                raise MediaFormatError("a 32-bit sidx cannot hold the rebased time")
            struct.pack_into(fmt, out, sidx + 12, value + shift)
        for moof, moof_end in find_boxes(data, [b"moof"]):
            for mfhd, _ in find_boxes(data, [b"mfhd"], moof, moof_end):
                struct.pack_into(">I", out, mfhd + 4, sequence)
            sequence += 1
            for tfdt, _ in find_boxes(data, [b"traf", b"tfdt"], moof, moof_end):
                if data[tfdt] == 1:
                    (value,) = struct.unpack_from(">Q", data, tfdt + 4)
                    struct.pack_into(">Q", out, tfdt + 4, value + ticks)
                    continue
                (value,) = struct.unpack_from(">I", data, tfdt + 4)
                if value + ticks >= 2**32:
                    raise MediaFormatError("a 32-bit tfdt cannot hold the rebased time")
                struct.pack_into(">I", out, tfdt + 4, value + ticks)
    except (struct.error, IndexError) as exc:
        raise MediaFormatError(f"malformed media segment: {exc}") from exc
    return bytes(out)
