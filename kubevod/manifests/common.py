"""What the HLS and DASH renderers share: media URLs and the segments a manifest may list.

Media objects live under ``videos/<id>/…`` in the store (docs/architecture.md §4). The
media origin serves key ``videos/<id>/<rest>`` at ``<media_base>/<id>/<rest>``:
in the cluster nginx maps ``/media/`` straight onto the MinIO bucket's
``videos/`` folder, and the API's ``GET /media/{id}/{path}`` route does the
same from whichever store it has. A new generation writes under a new prefix
(``videos/<id>/g2/…``), so a URL never changes meaning and can be cached
forever.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

from kubevod import keys
from kubevod.keys import MEDIA_ROOT as MEDIA_ROOT  # every media key starts with this
from kubevod.models import Segment, TrackKind, Video

#: The default media origin: the API's own ``/media`` route (or nginx in front of it).
DEFAULT_MEDIA_BASE = "/media"
_URL_SAFE = re.compile(r"^[A-Za-z0-9._~/-]*$")


def media_url(key: str, media_base: str = DEFAULT_MEDIA_BASE) -> str:
    """The URL a player fetches object ``key`` from.

    Args:
        key: an object-store key under ``videos/`` (e.g. ``videos/ab12/g1/720p/0.m4s``).
        media_base: the media origin, absolute path or URL, without a trailing slash.

    Returns:
        ``<media_base>/<key without "videos/">``, percent-encoded where needed.

    Raises:
        ValueError: when ``key`` is not under ``videos/`` (the media origin cannot serve it).
    """
    if not key.startswith(MEDIA_ROOT):
        raise ValueError(f"media key outside {MEDIA_ROOT!r}: {key!r}")
    rest = key[len(MEDIA_ROOT) :]
    if not _URL_SAFE.match(rest):  # the worker's keys never need it; quote() is slow
        rest = quote(rest, safe="/")
    return f"{media_base.rstrip('/')}/{rest}"


def media_key(video_id: str, path: str) -> str:
    """The object-store key the media origin serves at ``<media_base>/<video_id>/<path>``."""
    return f"{MEDIA_ROOT}{video_id}/{path}"


def init_key(video: Video, rendition: str) -> str:
    """The key of a rendition's CMAF initialization segment (written by the worker)."""
    return keys.init_key(video.media_prefix(), rendition)


def manifest_segments(video: Video, rendition: str, recorded: Iterable[Segment]) -> list[Segment]:
    """The segments a manifest lists for ``rendition``.

    An on-demand video with chunks still to encode lists every planned segment
    of its video renditions (``Video.plan``): a player sees the whole timeline
    and can seek anywhere; a segment not encoded yet is made when it is asked
    for. Its audio was encoded whole at registration. Every other video lists
    what is recorded (``listable_segments``).
    """
    recorded = list(recorded)
    kinds = {r.name: r.kind for r in video.renditions}
    if video.complete or video.plan is None or kinds.get(rendition) != TrackKind.VIDEO:
        return listable_segments(recorded, rendition)
    have = {s.seq: s for s in recorded if s.rendition == rendition}
    prefix = video.media_prefix()
    planned: list[Segment] = []
    for seq, (start, duration) in enumerate(video.plan.segments()):
        key = keys.segment_key(prefix, rendition, seq)
        planned.append(
            have.get(seq)
            or Segment(rendition=rendition, seq=seq, duration=duration, start=start, key=key)
        )
    return planned


def listable_segments(segments: Iterable[Segment], rendition: str) -> list[Segment]:
    """The segments of ``rendition`` a manifest may list: the contiguous run from seq 0.

    Segments finish out of order while a transcode runs in parallel; a playlist
    must never skip a sequence number (RFC 8216 §6.2.2), so a gap ends the list
    until the missing segment arrives.

    Args:
        segments: recorded segments of any renditions, in any order.
        rendition: the rendition to pick.

    Returns:
        Segments ``0..n-1`` of that rendition, ordered by seq, without duplicates.
    """
    by_seq = {s.seq: s for s in segments if s.rendition == rendition}
    out: list[Segment] = []
    while len(out) in by_seq:
        out.append(by_seq[len(out)])
    return out


def with_query(uri: str, query: str) -> str:
    """``uri`` with ``query`` (no leading ``?``) appended, e.g. a signed-URL token."""
    return f"{uri}?{query}" if query else uri
