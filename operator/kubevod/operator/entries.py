"""The catalog entry of a VideoAsset: what the operator writes before a Job starts.

The operator creates the entry (state ``queued``) and starts a new generation
in it; from then on the worker owns progress, segments and renditions, and
the operator only reads them back into status.
"""

from __future__ import annotations

from kubevod.operator.resource import Asset

from kubevod.catalog.base import Catalog
from kubevod.errors import Conflict, NotFound
from kubevod.models import Video, VideoState


def build_entry(asset: Asset) -> Video:
    """A fresh catalog entry for the asset's current generation (pure)."""
    spec = asset.spec
    return Video(
        id=asset.video_id,
        title=spec.title or asset.name,
        description=spec.description,
        tags=list(spec.tags),
        source=spec.source_ref(),
        state=VideoState.QUEUED,
        message="queued by the operator",
        segment_seconds=spec.segment_seconds,
        generation=asset.generation,
        prefix=asset.media_prefix,
    )


def ensure_entry(catalog: Catalog, asset: Asset) -> Video:
    """Create the entry, or move an existing one to this generation (idempotent).

    An entry already at this generation is left as it is apart from the
    metadata: a restarted operator must not reset a transcode in progress.
    Raises Unavailable when the catalog is down.
    """
    fresh = build_entry(asset)
    try:
        current = catalog.get(fresh.id)
    except NotFound:
        try:
            return catalog.create(fresh)
        except Conflict:
            current = catalog.get(fresh.id)
    meta = {"title": fresh.title, "description": fresh.description, "tags": fresh.tags}
    if current.generation >= asset.generation:
        return catalog.update(fresh.id, **meta)
    catalog.clear_segments(fresh.id)
    return catalog.update(
        fresh.id,
        **meta,
        source=fresh.source,
        state=VideoState.QUEUED,
        message=fresh.message,
        progress=0.0,
        playable=False,
        duration=0.0,
        renditions=[],
        subtitles=[],
        trickplay=None,
        poster_key=None,
        segment_seconds=fresh.segment_seconds,
        generation=fresh.generation,
        prefix=fresh.prefix,
    )


def update_metadata(catalog: Catalog, asset: Asset) -> None:
    """Copy title, description and tags (a change that needs no new transcode)."""
    spec = asset.spec
    catalog.update(
        asset.video_id,
        title=spec.title or asset.name,
        description=spec.description,
        tags=list(spec.tags),
    )
