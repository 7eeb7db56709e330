"""What the JSON API returns for a video: the catalog entry plus ready-to-use URLs.

Clients never need to know the object layout: ``playback`` names the
manifests, the poster, the trickplay index and the WebVTT tracks as URLs on
the media origin. With a signing secret set, each of them carries the video's
``md5``/``expires`` query that nginx checks (docs/architecture.md §7); the manifests pass
it on to every URI they list.
"""

from __future__ import annotations

import time

from kubevod.api.settings import ApiSettings
from pydantic import BaseModel

from kubevod.backends import public_source
from kubevod.manifests.common import media_url, with_query
from kubevod.models import Video


class TextTrack(BaseModel):
    """A WebVTT track a player can fetch directly."""

    name: str
    language: str
    default: bool
    url: str


class PlaybackUrls(BaseModel):
    """Where a player finds a video's manifests and images."""

    hls: str
    dash: str
    watch: str
    poster: str | None = None
    trickplay: str | None = None
    subtitles: list[TextTrack] = []


class VideoView(Video):
    """A catalog entry as the API shows it."""

    playback: PlaybackUrls


class VideoViewPage(BaseModel):
    """One page of the library."""

    items: list[VideoView]
    total: int
    offset: int
    limit: int


def _url(key: str | None, media_base: str, query: str) -> str | None:
    if not key:
        return None
    try:
        return with_query(media_url(key, media_base), query)
    except ValueError:  # a key outside videos/ cannot be served by the media origin
        return None


def playback_urls(video: Video, media_base: str, query: str = "") -> PlaybackUrls:
    """The URLs of one video (manifests on the API, images on the media origin).

    Args:
        video: the catalog entry.
        media_base: the media origin (``ApiSettings.media_base_url``).
        query: appended to every manifest and media URL (the signed-URL query), "" for none.

    Returns:
        The URLs; the watch page's is never signed (nginx does not guard it).
    """
    subtitles = []
    for sub in video.subtitles:
        url = _url(sub.key, media_base, query)
        if url:
            subtitles.append(
                TextTrack(name=sub.name, language=sub.language, default=sub.default, url=url)
            )
    return PlaybackUrls(
        hls=with_query(f"/v/{video.id}/master.m3u8", query),
        dash=with_query(f"/v/{video.id}/manifest.mpd", query),
        watch=f"/watch/{video.id}",
        poster=_url(video.poster_key, media_base, query),
        trickplay=_url(video.trickplay.vtt_key if video.trickplay else None, media_base, query),
        subtitles=subtitles,
    )


def view(video: Video, settings: ApiSettings, now: float | None = None) -> VideoView:
    """The API's view of a catalog entry (a source URL's credentials and query never shown).

    Args:
        video: the catalog entry.
        settings: the media origin and, when set, the URL-signing secret and TTL.
        now: unix time the signed URLs count their lifetime from (default: the clock).

    Returns:
        The entry with its ``playback`` URLs, signed when a secret is set.
    """
    fields = dict(video)
    fields["source"] = public_source(video.source)  # no password, no pre-signed query
    signer = settings.url_signer()
    query = signer.query(video.id, time.time() if now is None else now) if signer else ""
    playback = playback_urls(video, settings.media_base_url, query)
    return VideoView.model_construct(**fields, playback=playback)
