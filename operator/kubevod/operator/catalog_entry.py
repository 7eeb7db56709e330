"""The catalog entry of a VideoAsset generation, built by a pure function.

The handlers hand it to ``kubevod.lifecycle.Lifecycle.start_generation``,
which creates the entry (state ``queued``) or moves it forward to the new
generation; from then on the worker's attempt owns progress, segments and
renditions, and the operator only reads them back into status.
"""

from __future__ import annotations

from kubevod.operator.resource import Asset

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
