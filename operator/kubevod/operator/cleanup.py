"""What a person must hear when deleting a VideoAsset could not clean everything.

The purge itself is ``kubevod.lifecycle.Lifecycle.purge`` (media first, the
catalog entry last); after the bounded retries the handler releases the object
anyway and says in an Event what was left behind.
"""

from __future__ import annotations

from kubevod import keys
from kubevod.errors import Unavailable


def abandon_message(video_id: str, error: Unavailable, attempts: int) -> str:
    """The Warning shown when cleanup gives up, naming what a person must remove by hand."""
    return (
        f"gave up cleaning after {attempts} attempts ({error}); objects under "
        f"{keys.video_root(video_id)} and {keys.logs_root(video_id)} and the catalog "
        f"entry {video_id} may be left: "
        f"delete them by hand (e.g. `mc rm --recursive --force <alias>/kubevod/"
        f"{keys.video_root(video_id)}`)"
    )
