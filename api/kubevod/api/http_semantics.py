"""Pure HTTP semantics for serving stored objects (RFC 9110 §13, §14).

Byte ranges (single, suffix, multiple, unsatisfiable), conditional requests
(If-None-Match, If-Modified-Since, If-Range), validators and MIME types. No I/O:
the media route feeds these the object's metadata and the request headers.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

#: MIME types by extension; these win over what an uploader stored (docs/architecture.md §7).
MIME_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".mp4": "video/mp4",
    ".m4s": "video/mp4",
    ".m4a": "audio/mp4",
    ".vtt": "text/vtt; charset=utf-8",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".json": "application/json",
}
#: The most ranges one request may ask for before the Range header is ignored (a 200 instead).
MAX_RANGES = 16


class RangeNotSatisfiable(Exception):
    """No range of a syntactically valid Range header overlaps the object (416)."""


@dataclass(frozen=True)
class ByteRange:
    """Inclusive byte range ``start..end`` of an object of ``size`` bytes."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def content_type_for(key: str, stored: str | None = None) -> str:
    """The MIME type to serve ``key`` with: by extension, else the stored one, else a guess."""
    dot = key.rfind(".")
    if dot > key.rfind("/"):
        known = MIME_TYPES.get(key[dot:].lower())
        if known:
            return known
    if stored and stored != "application/octet-stream":
        return stored
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def quote_etag(etag: str) -> str:
    """A strong entity tag in header form (``"abc"``)."""
    return etag if etag.startswith(('"', 'W/"')) else f'"{etag}"'


def http_date(moment: datetime) -> str:
    """An IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``)."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def _parse_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def etag_matches(header: str, etag: str) -> bool:
    """Weak comparison of ``etag`` against an If-None-Match list (``*`` matches anything)."""
    if header.strip() == "*":
        return True
    mine = _opaque(quote_etag(etag))
    return any(_opaque(tag) == mine for tag in header.split(","))


def not_modified(headers: dict[str, str], etag: str, last_modified: datetime) -> bool:
    """True when a GET/HEAD with these (lower-cased) headers deserves a 304.

    If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    """
    inm = headers.get("if-none-match")
    if inm is not None:
        return etag_matches(inm, etag)
    ims = headers.get("if-modified-since")
    if ims is not None:
        since = _parse_date(ims)
        return since is not None and last_modified.replace(microsecond=0) <= since
    return False


def if_range_allows(header: str | None, etag: str, last_modified: datetime) -> bool:
    """True when the Range header may be honoured given If-Range (strong comparison)."""
    if header is None:
        return True
    header = header.strip()
    if header.startswith('"'):
        return header == quote_etag(etag)
    if header.startswith("W/"):
        return False
    date = _parse_date(header)
    return date is not None and last_modified.replace(microsecond=0) == date


def parse_range(header: str | None, size: int) -> list[ByteRange] | None:
    """The byte ranges a Range header asks for.

    Args:
        header: the Range header value, or None.
        size: the object's size in bytes.

    Returns:
        None when the whole object should be sent (no header, another unit, bad
        syntax, or too many ranges); else the satisfiable ranges, clipped to
        the object, in request order with overlapping or adjacent ones merged.

    Raises:
        RangeNotSatisfiable: when the header is valid but no range overlaps the object.
    """
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    parts = spec.split(",")
    if len(parts) > MAX_RANGES:
        return None
    wanted: list[ByteRange] = []
    for raw in parts:
        first, dash, last = raw.strip().partition("-")
        if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
            return None
        if first == "":
            if last == "":
                return None
            suffix = int(last)
            if suffix > 0 and size > 0:
                wanted.append(ByteRange(max(0, size - suffix), size - 1))
            continue
        start = int(first)
        end = int(last) if last else size - 1
        if last and end < start:
            return None
        if start < size:
            wanted.append(ByteRange(start, min(end, size - 1)))
    if not wanted:
        raise RangeNotSatisfiable(f"bytes */{size}")
    return _merge(wanted)


def _merge(ranges: list[ByteRange]) -> list[ByteRange]:
    """Coalesce overlapping or adjacent ranges (RFC 9110 §14.2 lets a server do so)."""
    ordered = sorted(ranges, key=lambda r: r.start)
    merged = [ordered[0]]
    for r in ordered[1:]:
        last = merged[-1]
        if r.start <= last.end + 1:
            merged[-1] = ByteRange(last.start, max(last.end, r.end))
        else:
            merged.append(r)
    if len(merged) == len(ranges):
        return ranges  # nothing overlapped: keep the order the client asked for
    return merged


def multipart_headers(boundary: str, content_type: str, size: int, r: ByteRange) -> bytes:
    """The delimiter and header block that precede one part of multipart/byteranges."""
    return (
        f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n"
        f"Content-Range: {r.content_range(size)}\r\n\r\n"
    ).encode()


def multipart_trailer(boundary: str) -> bytes:
    """The closing delimiter of a multipart/byteranges body."""
    return f"\r\n--{boundary}--\r\n".encode()


def multipart_length(boundary: str, content_type: str, size: int, ranges: list[ByteRange]) -> int:
    """The exact Content-Length of a multipart/byteranges body for these ranges."""
    return sum(
        len(multipart_headers(boundary, content_type, size, r)) + r.length for r in ranges
    ) + len(multipart_trailer(boundary))
