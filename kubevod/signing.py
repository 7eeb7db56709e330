"""Signed, expiring playback URLs: the token nginx's ``secure_link`` checks (architecture §7).

The cache tier (``charts/kubevod/files/nginx.conf``) guards ``/media/<id>/`` and
``/v/<id>/`` with::

    secure_link $arg_md5,$arg_expires;
    secure_link_md5 "$secure_link_expires/$kv_video_id ${KUBEVOD_SIGNING_SECRET}";

so a link carries ``?md5=<token>&expires=<unix time>`` where the token is the
unpadded base64url of ``md5("<expires>/<video id> <secret>")``. One token covers
every URL of one video (manifests, segments, poster, thumbnails, captions);
the API signs the URLs it hands out and passes the query of a signed manifest
on to every URI the manifest lists. nginx answers 403 to a missing or wrong
token and 410 once ``expires`` has passed.

Everything here is pure: the caller supplies the clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from dataclasses import dataclass
from urllib.parse import urlencode

#: Expiry times are rounded up to a multiple of this many seconds, so that every viewer
#: in the same window gets the same URLs and the manifest caches (nginx's microcache and
#: the API's render cache, both keyed by the query) keep working.
DEFAULT_GRANULARITY_S = 300


def token(video_id: str, expires: int, secret: str) -> str:
    """The ``md5`` query value nginx expects for ``video_id`` until ``expires``.

    Args:
        video_id: the video's id, as in ``/media/<id>/…`` and ``/v/<id>/…``.
        expires: unix time (seconds) after which nginx answers 410.
        secret: the shared signing secret (``KUBEVOD_SIGNING_SECRET``).

    Returns:
        ``base64url(md5("<expires>/<video_id> <secret>"))`` without ``=`` padding
        (22 characters), exactly what ``secure_link_md5`` computes.
    """
    message = f"{expires}/{video_id} {secret}".encode()
    digest = hashlib.md5(message, usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def expires_at(now: float, ttl_s: int, granularity_s: int = DEFAULT_GRANULARITY_S) -> int:
    """When a link made at ``now`` stops working.

    Args:
        now: the current unix time, seconds.
        ttl_s: the least lifetime a link gets, seconds (> 0).
        granularity_s: round up to a multiple of this (>= 1), so links made in the same
            window are identical and cacheable.

    Returns:
        The smallest multiple of ``granularity_s`` that is at least ``now + ttl_s``, so a
        link lives between ``ttl_s`` and ``ttl_s + granularity_s`` seconds.

    Raises:
        ValueError: when ``ttl_s`` or ``granularity_s`` is not positive.
    """
    if ttl_s <= 0 or granularity_s <= 0:
        raise ValueError(f"ttl_s and granularity_s must be positive: {ttl_s}, {granularity_s}")
    return math.ceil((now + ttl_s) / granularity_s) * granularity_s


def signed_query(video_id: str, expires: int, secret: str) -> str:
    """The query string (no leading ``?``) that signs any URL of ``video_id``.

    Args:
        video_id: the video the URLs belong to.
        expires: unix time after which the links stop working.
        secret: the shared signing secret.

    Returns:
        ``md5=<token>&expires=<expires>``, the form the API's manifest routes accept
        and pass on (``kubevod.api.deps.signed_query``).
    """
    return urlencode({"md5": token(video_id, expires, secret), "expires": expires})


@dataclass(frozen=True)
class UrlSigner:
    """Signs the URLs of one API process: a secret and how long links live."""

    secret: str
    ttl_s: int
    granularity_s: int = DEFAULT_GRANULARITY_S

    def query(self, video_id: str, now: float) -> str:
        """The signed query for ``video_id``'s URLs made at unix time ``now``.

        Args:
            video_id: the video the URLs belong to.
            now: the current unix time, seconds.

        Returns:
            ``md5=…&expires=…`` valid for at least ``ttl_s`` seconds after ``now``.
        """
        # A window no longer than the TTL, so a short TTL is not stretched many times over.
        granularity = max(1, min(self.granularity_s, self.ttl_s))
        return signed_query(video_id, expires_at(now, self.ttl_s, granularity), self.secret)

    def verify(self, video_id: str, md5: str | None, expires: str | None, now: float) -> bool:
        """True when ``md5``/``expires`` is a valid, unexpired signature of ``video_id``.

        The API checks it itself on the routes nginx guards with ``secure_link``, so
        reaching the API past the cache does not open a private library.

        Args:
            video_id: the video the request is for.
            md5: the ``md5`` query value, None when absent.
            expires: the ``expires`` query value (unix time, digits), None when absent.
            now: the current unix time, seconds.

        Returns:
            False for a missing, malformed, wrong or expired signature.
        """
        if not md5 or not expires or not expires.isdigit() or len(expires) > 12:
            return False
        if int(expires) < now:
            return False
        expected = token(video_id, int(expires), self.secret)
        return hmac.compare_digest(md5.encode(), expected.encode())
