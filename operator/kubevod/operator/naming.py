"""Every name the operator derives from a VideoAsset, in one place.

Names are pure functions of the parent object (namespace, name, uid,
generation), so a restarted operator or a replayed event computes the very
same names and never creates a second child (docs/architecture.md §2).
"""

from __future__ import annotations

import hashlib
import re

from kubevod import contract
from kubevod.models import is_valid_video_id

GROUP = contract.GROUP
VERSION = "v1alpha1"
PLURAL = "videoassets"
KIND = "VideoAsset"
API_VERSION = f"{GROUP}/{VERSION}"

FINALIZER = f"{GROUP}/cleanup"

#: Kubernetes label values and Job names (pods carry ``job-name``) are at most 63 characters.
MAX_LABEL = 63

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def _slug(text: str, limit: int) -> str:
    """Lowercase ``text`` to ``[a-z0-9-]`` and cut it to ``limit`` characters."""
    slug = _NOT_ALNUM.sub("-", text.lower()).strip("-")
    return slug[:limit].strip("-")


def _digest(*parts: str, length: int) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def video_id(namespace: str, name: str, uid: str) -> str:
    """The catalog id (and media prefix) of a VideoAsset.

    Readable (namespace and name first), unique (a hash of namespace, name and
    uid, so re-creating an object of the same name gets fresh media and no
    cache ever serves the old bytes), at most 63 characters, and matching
    ``kubevod.models.VIDEO_ID_PATTERN``.

    Args:
        namespace: the VideoAsset's namespace.
        name: its name (a DNS subdomain, may hold dots).
        uid: its metadata.uid.

    Returns:
        For example ``"default-big-buck-bunny-3f9c2a71d0"``.
    """
    digest = _digest(namespace, name, uid, length=10)
    readable = _slug(f"{namespace}-{name}", MAX_LABEL - len(digest) - 1)
    result = f"{readable}-{digest}" if readable else f"v{digest}"
    assert is_valid_video_id(result), result
    return result


def job_name(name: str, uid: str, generation: int) -> str:
    """The transcode Job of one generation of one VideoAsset (a DNS label, ≤ 63).

    Args:
        name: the VideoAsset's name.
        uid: its metadata.uid (a re-created object never meets its
            predecessor's Job, which may linger: there is no GC in some clusters).
        generation: the spec generation the Job transcodes.

    Returns:
        For example ``"big-buck-bunny-8d1e2f-g3"``.
    """
    suffix = f"-{_digest(uid, length=6)}-g{generation}"
    readable = _slug(name, MAX_LABEL - len(suffix)) or "video"
    return f"{readable}{suffix}"


def label_value(text: str) -> str:
    """``text`` cut to a valid label value (≤ 63, alphanumeric at both ends)."""
    cut = re.sub(r"[^A-Za-z0-9._-]", "-", text)[:MAX_LABEL]
    return cut.strip("-_.")
