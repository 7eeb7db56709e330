"""Checks of a VideoAsset spec beyond what the CRD's schema can say (pure).

The API server already refuses what the OpenAPI schema and its CEL rules
describe (one source, enums, ranges, lengths). This catches the rest before a
Job is made: source schemes the worker cannot read, credentials written into
a URL (they would end up in plain Job env and in `kubectl get -o yaml`),
paths escaping a volume, and ladders that make no sense.
"""

from __future__ import annotations

import itertools
import posixpath
import re
from urllib.parse import urlsplit

from kubevod.operator.errors import InvalidSpec
from kubevod.operator.resource import VideoAssetSpec

#: Source URL schemes the worker fetches (docs/architecture.md §6).
URL_SCHEMES = frozenset({"http", "https"})
#: Ladder profiles the worker knows.
PROFILES = frozenset({"default"})
MAX_RUNGS = 10
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def problems(spec: VideoAssetSpec) -> list[str]:
    """Every problem with ``spec``, one sentence each naming its field; empty when fine.

    Args:
        spec: a spec the API server accepted.

    Returns:
        Messages such as ``"spec.source.url: scheme 'ftp' is not supported; use http or https"``.
    """
    found: list[str] = []
    source = spec.source
    given = [k for k in ("url", "s3", "pvc") if getattr(source, k) is not None]
    if len(given) != 1:
        found.append(f"spec.source: set exactly one of url, s3 or pvc (found {len(given)})")
    if source.url is not None:
        found.extend(_url_problems(source.url))
    if source.s3 is not None:
        if not _BUCKET.match(source.s3.bucket):
            found.append(f"spec.source.s3.bucket: {source.s3.bucket!r} is not a valid bucket name")
        if not source.s3.key or source.s3.key.startswith("/"):
            found.append("spec.source.s3.key: must be a non-empty key not starting with '/'")
    if source.pvc is not None:
        found.extend(_path_problems(source.pvc.path))
    found.extend(_ladder_problems(spec))
    if not 1.0 <= spec.segment_seconds <= 30.0:
        found.append(f"spec.segmentSeconds: {spec.segment_seconds} is outside 1..30 seconds")
    return found


def check(spec: VideoAssetSpec) -> None:
    """Raise InvalidSpec listing every problem with ``spec``; return when it is fine."""
    found = problems(spec)
    if found:
        raise InvalidSpec(found)


def _url_problems(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return [f"spec.source.url: {url!r} is not a URL"]
    if parts.scheme.lower() not in URL_SCHEMES:
        scheme = parts.scheme or "(none)"
        return [f"spec.source.url: scheme {scheme!r} is not supported; use http or https"]
    found = []
    if not parts.hostname:
        found.append("spec.source.url: the URL has no host")
    if parts.username or parts.password:
        found.append(
            "spec.source.url: credentials in the URL would be stored in plain text; "
            "use an s3 source or a pre-signed URL instead"
        )
    return found


def _path_problems(path: str) -> list[str]:
    normal = posixpath.normpath("/" + path)
    if not path or path.endswith("/") or normal == "/":
        return ["spec.source.pvc.path: must name a file inside the volume"]
    if ".." in path.split("/"):
        return ["spec.source.pvc.path: must not contain '..' (it would leave the volume)"]
    return []


def _ladder_problems(spec: VideoAssetSpec) -> list[str]:
    ladder = spec.ladder
    found: list[str] = []
    if ladder.profile is not None and ladder.rungs:
        found.append("spec.ladder: set either profile or rungs, not both")
    if ladder.profile is not None and ladder.profile not in PROFILES:
        known = ", ".join(sorted(PROFILES))
        found.append(f"spec.ladder.profile: unknown profile {ladder.profile!r} (known: {known})")
    rungs = ladder.rungs
    if len(rungs) > MAX_RUNGS:
        found.append(f"spec.ladder.rungs: at most {MAX_RUNGS} rungs")
    heights = [r.height for r in rungs]
    if len(set(heights)) != len(heights):
        found.append("spec.ladder.rungs: two rungs have the same height")
    names = [r.name for r in rungs if r.name]
    if len(set(names)) != len(names):
        found.append("spec.ladder.rungs: two rungs have the same name")
    by_height = sorted(rungs, key=lambda r: r.height)
    for low, high in itertools.pairwise(by_height):
        if high.height != low.height and high.bitrate <= low.bitrate:
            found.append(
                f"spec.ladder.rungs: {high.height}p has a bitrate ({high.bitrate}) not above "
                f"{low.height}p's ({low.bitrate}); higher rungs need more bits"
            )
    return found
