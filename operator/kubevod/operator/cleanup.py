"""What deleting a VideoAsset removes besides its Jobs: media objects and the catalog entry.

Store first, catalog last: while the store is down the catalog entry stays, so
the video still shows what is left to clean. After the bounded retries the
handler releases the object anyway and says in an Event what was left behind.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubevod.operator import naming

from kubevod import keys
from kubevod.catalog.base import Catalog
from kubevod.errors import Unavailable
from kubevod.store.base import ObjectStore


@dataclass(frozen=True)
class Purged:
    objects: int  # objects deleted from the store


def purge(store: ObjectStore, catalog: Catalog, video_id: str) -> Purged:
    """Delete every generation's media of a video, then its catalog entry.

    Raises Unavailable when the store or the catalog cannot be reached; nothing
    of the catalog is removed before the media is gone.
    """
    objects = store.delete_prefix(naming.video_prefix(video_id))
    # A failed run's ffmpeg log lives outside the public prefix (kubevod.keys).
    objects += store.delete_prefix(keys.logs_root(video_id))
    catalog.delete(video_id)
    return Purged(objects=objects)


def abandon_message(video_id: str, error: Unavailable, attempts: int) -> str:
    """The Warning shown when cleanup gives up, naming what a person must remove by hand."""
    return (
        f"gave up cleaning after {attempts} attempts ({error}); objects under "
        f"{naming.video_prefix(video_id)} and {keys.logs_root(video_id)} and the catalog "
        f"entry {video_id} may be left: "
        f"delete them by hand (e.g. `mc rm --recursive --force <alias>/kubevod/"
        f"{naming.video_prefix(video_id)}`)"
    )
