"""The VideoAsset resource as typed data: spec model, phases and the parent view.

The CRD (``manifests/crd/videoassets.kubevod.io.yaml``) is what the API server
enforces; this module is how the operator reads an accepted object. Field
names are the CRD's camelCase names through aliases.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from kubevod.operator import naming
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from kubevod import keys
from kubevod.jobs import Accelerator, Codec, LadderRung
from kubevod.models import TranscodePolicy

#: Where a PVC source is mounted read-only inside the worker pod.
PVC_MOUNT = "/source"


class Phase(StrEnum):
    """``status.phase`` of a VideoAsset (docs/architecture.md §5)."""

    PENDING = "Pending"
    QUEUED = "Queued"
    TRANSCODING = "Transcoding"
    READY = "Ready"
    FAILED = "Failed"


TERMINAL = frozenset({Phase.READY, Phase.FAILED})
#: spec fields that do not shape the media: changing only these never transcodes again.
METADATA_FIELDS = frozenset({"title", "description", "tags", "priority", "retainOnDelete"})


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class S3Source(_Model):
    bucket: str
    key: str


class PvcSource(_Model):
    claim_name: str
    path: str


class Source(_Model):
    url: str | None = None
    s3: S3Source | None = None
    pvc: PvcSource | None = None


class Ladder(_Model):
    profile: str | None = None
    rungs: list[LadderRung] = Field(default_factory=list)


class ResourceList(_Model):
    cpu: str | int | None = None
    memory: str | int | None = None


class Resources(_Model):
    requests: ResourceList = Field(default_factory=ResourceList)
    limits: ResourceList = Field(default_factory=ResourceList)


class TranscodeSpec(_Model):
    #: When the video is encoded; None: the install's ``worker.policy``.
    policy: TranscodePolicy | None = None
    passthrough: Literal["auto", "never"] = "auto"
    #: Pods the transcode is spread over; None: the install's ``worker.pods``.
    pods: int | None = Field(default=None, ge=1, le=64)


class VideoAssetSpec(_Model):
    """``spec`` of a VideoAsset, defaults as in the CRD."""

    source: Source
    title: str = ""
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    ladder: Ladder = Field(default_factory=Ladder)
    codec: Codec = "h264"
    segment_seconds: float = 4.0
    accelerator: Accelerator = "auto"
    gpu: bool = False
    resources: Resources = Field(default_factory=Resources)
    priority: int = 0
    retain_on_delete: bool = False
    #: None when the spec has no ``transcode`` (so the fingerprint of specs written before
    #: it existed, and their media, stay as they are).
    transcode: TranscodeSpec | None = None

    def source_ref(self) -> str:
        """The source as the worker reads it: an http(s) URL, ``s3://bucket/key`` or a path."""
        if self.source.url is not None:
            return self.source.url
        if self.source.s3 is not None:
            return f"s3://{self.source.s3.bucket}/{self.source.s3.key}"
        if self.source.pvc is not None:
            return f"{PVC_MOUNT}/{self.source.pvc.path.lstrip('/')}"
        return ""

    def fingerprint(self) -> str:
        """A short hash of the fields that shape the media (all but METADATA_FIELDS)."""
        shaping = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        for key in METADATA_FIELDS:
            shaping.pop(key, None)
        # How many pods encode it is where the work runs, not what it makes.
        (shaping.get("transcode") or {}).pop("pods", None)
        text = json.dumps(shaping, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def ladder_ref(self) -> str | list[LadderRung]:
        """The ladder as ``TranscodeJob.ladder`` takes it: a profile name or explicit rungs."""
        return self.ladder.rungs or self.ladder.profile or "default"


@dataclass(frozen=True)
class Asset:
    """The parts of one VideoAsset object that children are derived from."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: VideoAssetSpec
    created: str = ""  # metadata.creationTimestamp (RFC 3339)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Asset:
        """Read a VideoAsset object (a dict as the API server returns it)."""
        meta = body.get("metadata", {})
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta["name"]),
            uid=str(meta["uid"]),
            generation=int(meta.get("generation", 1)),
            spec=VideoAssetSpec.model_validate(body.get("spec", {})),
            created=str(meta.get("creationTimestamp", "")),
        )

    @property
    def video_id(self) -> str:
        return naming.video_id(self.namespace, self.name, self.uid)

    @property
    def job_name(self) -> str:
        return naming.job_name(self.name, self.uid, self.generation)

    @property
    def media_prefix(self) -> str:
        return keys.media_prefix(self.video_id, self.generation)

    def owner_reference(self) -> dict[str, Any]:
        """An ownerReference making this VideoAsset the controller of a child."""
        return {
            "apiVersion": naming.API_VERSION,
            "kind": naming.KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
