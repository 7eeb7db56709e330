"""What the JSON API returns for a video: the catalog entry plus ready-to-use URLs.

Clients never need to know the object layout: ``playback`` names the
manifests, the poster, the trickplay index and the WebVTT tracks as URLs on
the media origin.
"""

from __future__ import annotations

from pydantic import BaseModel

from kubevod.backends import redact_url
from kubevod.manifests.common import media_url
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


def _url(key: str | None, media_base: str) -> str | None:
    if not key:
        return None
    try:
        return media_url(key, media_base)
    except ValueError:  # a key outside videos/ cannot be served by the media origin
        return None


def playback_urls(video: Video, media_base: str) -> PlaybackUrls:
    """The URLs of one video (manifests on the API, images on the media origin)."""
    subtitles = []
    for sub in video.subtitles:
        url = _url(sub.key, media_base)
        if url:
            subtitles.append(
                TextTrack(name=sub.name, language=sub.language, default=sub.default, url=url)
            )
    return PlaybackUrls(
        hls=f"/v/{video.id}/master.m3u8",
        dash=f"/v/{video.id}/manifest.mpd",
        watch=f"/watch/{video.id}",
        poster=_url(video.poster_key, media_base),
        trickplay=_url(video.trickplay.vtt_key if video.trickplay else None, media_base),
        subtitles=subtitles,
    )


def view(video: Video, media_base: str) -> VideoView:
    """The API's view of a catalog entry (a source URL's password is never shown)."""
    fields = dict(video)
    if "@" in video.source:
        fields["source"] = redact_url(video.source)
    return VideoView.model_construct(**fields, playback=playback_urls(video, media_base))
