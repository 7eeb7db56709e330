"""Operator settings (pydantic-settings), grouped by concern, read from the environment.

Every variable starts with ``KUBEVOD_``; nested groups use ``__``, e.g.
``KUBEVOD_QUEUE__MAX_CONCURRENT=2`` or ``KUBEVOD_WORKER__IMAGE=...``. Lists
and mappings are JSON (``KUBEVOD_NAMESPACES`` also takes a comma list).
The catalog and store URLs hold credentials: in the cluster they come into
the operator's env from a Secret, and into each Job's env from the same
Secret by ``secretKeyRef`` (never as plain values).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kubevod import images
from kubevod.models import TranscodePolicy


class QueueSettings(BaseModel):
    """How many transcodes run at once."""

    max_concurrent: int = Field(
        default=2,
        ge=1,
        le=1000,
        description="Transcode Jobs running at once (count). Default 2: a home cluster has one "
        "or two nodes that can encode; more Jobs would only share the same CPUs or GPU. "
        "The rest wait in phase Queued, priority first, then creation order.",
    )


class TimingSettings(BaseModel):
    """How often the operator looks again."""

    poll_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between two looks at a queued or transcoding VideoAsset (queue "
        "slot, Job state, catalog progress). Default 5: progress in kubectl stays fresh "
        "without loading the API server or the catalog. Tests use 0.5.",
    )
    retry_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Seconds before retrying a handler when the catalog or the API server "
        "is unreachable. Default 10: long enough for a restarting MongoDB.",
    )
    unschedulable_seconds: float = Field(
        default=15 * 60.0,
        gt=0,
        description="Seconds a transcode pod may stay unschedulable (the scheduler finds no "
        "node with the CPU, memory or GPU it asks for, or matching its selector) before the "
        "Job is deleted and the VideoAsset ends Failed with the scheduler's message. "
        "Default 15 min: long enough for a cluster autoscaler to add a node or a GPU node "
        "to come back, short enough that one impossible spec does not hold a queue slot "
        "for hours. Tests use a few seconds.",
    )


class NamespaceLimits(BaseModel):
    """Caps for one namespace; a field left out keeps the default cap."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    max_priority: int | None = Field(default=None, ge=0, le=1000)
    max_cpu: str | None = None
    max_memory: str | None = None


class LimitSettings(BaseModel):
    """What a VideoAsset author may ask for (tenant limits, docs/security.md).

    A spec over a cap ends Failed with a message naming the field, the value
    and the cap, rather than being clamped: a clamped priority or memory limit
    would change what the author asked for without telling them, and a Job
    clamped below what the video needs fails later (OOM) with a far less clear
    reason. The operator's own defaults (``worker.*``) are not capped.
    """

    max_priority: int = Field(
        default=100,
        ge=0,
        le=1000,
        description="Highest spec.priority (0..1000 in the CRD) in a namespace without an "
        "override. Default 100: ordinary tenants can order their own videos, and an admin "
        "namespace can be given 1000 to jump every queue.",
    )
    max_cpu: str = Field(
        default="4",
        description='Largest CPU quantity (cores, e.g. "4" or "3500m") in '
        "spec.resources.requests or limits. Default 4: a whole small node; more only blocks "
        "the queue waiting for a node that may not exist.",
    )
    max_memory: str = Field(
        default="8Gi",
        description='Largest memory quantity (bytes, e.g. "8Gi") in spec.resources.requests '
        "or limits. Default 8Gi: twice what a 4K ladder needs (the worker's default limit is "
        "4Gi).",
    )
    namespaces: dict[str, NamespaceLimits] = Field(
        default_factory=dict,
        description='Per-namespace caps replacing the defaults (JSON: {"family": '
        '{"maxPriority": 1000}}). Default none.',
    )

    def for_namespace(self, namespace: str) -> Caps:
        """The caps that apply in ``namespace``."""
        override = self.namespaces.get(namespace) or NamespaceLimits()
        return Caps(
            max_priority=(
                self.max_priority if override.max_priority is None else override.max_priority
            ),
            max_cpu=override.max_cpu or self.max_cpu,
            max_memory=override.max_memory or self.max_memory,
        )


@dataclass(frozen=True)
class Caps:
    """The resolved caps of one namespace."""

    max_priority: int
    max_cpu: str
    max_memory: str


class WorkerJobSettings(BaseModel):
    """The transcode Job's pod (jobs.build_job reads these)."""

    image: str = Field(
        default=images.reference("worker"),
        description="Worker image (tag or digest). Default: the release this operator ships "
        "with, as kubevod.images names it (the chart sets it from worker.image).",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="Pull policy; IfNotPresent suits tagged releases."
    )
    command: list[str] = Field(
        default_factory=lambda: ["kubevod-worker"],
        description="Container command; the worker image's console script.",
    )
    service_account: str = Field(
        default="kubevod-worker",
        description="ServiceAccount of worker pods; it needs no API permissions (the token is "
        "not even mounted).",
    )
    secret_name: str = Field(
        default="kubevod-backends",
        description="Secret in the VideoAsset's namespace holding the catalog and store URLs.",
    )
    catalog_url_key: str = Field(default="catalog-url", description="Key of the catalog URL.")
    store_url_key: str = Field(default="store-url", description="Key of the store URL.")
    backoff_limit: int = Field(
        default=2,
        ge=0,
        description="Pod retries after a transient failure (count). Default 2; a bad source "
        "(exit code 2) is never retried whatever this says (pod failure policy).",
    )
    pods: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Pods one video's transcode is spread over (an Indexed Job; a "
        "VideoAsset's spec.transcode.pods overrides it). Default 1: one pod per video; "
        "on several nodes more pods encode a film on all of them at once.",
    )
    policy: TranscodePolicy = Field(
        default=TranscodePolicy.EAGER,
        description="When a VideoAsset without spec.transcode.policy is encoded: eager (all "
        "of it now) or onDemand (what makes it watchable now, every other chunk when a viewer "
        "reaches it, by the warm chunk workers).",
    )
    chunk_workers: int = Field(
        default=1,
        ge=0,
        le=64,
        description="Pods of the warm chunk-worker Deployment the operator keeps in its own "
        "namespace (kubevod-worker chunks): they encode the chunks viewers of on-demand "
        "videos wait for. 0: none (on-demand videos then play only what was registered).",
    )
    chunk_worker_cpu_request: str = Field(
        default="100m",
        description="CPU request of a chunk worker (cores): small, since it waits most of the "
        "time, and it has no CPU limit, so it takes the node's idle cores when a viewer waits.",
    )
    chunk_worker_memory_request: str = Field(
        default="256Mi", description="Memory request of a chunk worker (its limit: memory_limit)."
    )
    chunk_worker_name: str = Field(
        default="kubevod-chunks",
        description="Name of that Deployment (the chart sets it from the release).",
    )
    chunk_worker_namespace: str = Field(
        default="",
        description="Where that Deployment runs: the operator's own namespace (the chart "
        "sets it). Empty: the operator keeps none (an operator run outside the cluster).",
    )
    chunk_worker_owner: str = Field(
        default="",
        description="The operator's own Deployment there, which owns the chunk workers: "
        "removing the operator (helm uninstall) removes them. Empty: no owner.",
    )
    chunk_worker_labels: dict[str, str] = Field(
        default_factory=dict,
        description="More labels for the chunk workers (JSON; the chart sets the release's).",
    )
    chunk_seconds: float = Field(
        default=20.0,
        ge=1.0,
        le=3600.0,
        description="Least length of a chunk of a spread transcode (s; the Job's "
        "KUBEVOD_SPREAD_CHUNK_SECONDS): the unit of work a pod takes.",
    )
    active_deadline_seconds: int = Field(
        default=6 * 3600,
        ge=60,
        description="Seconds a Job may run in all. Default 6 h: a 4K feature film in software "
        "on a small node; a stuck encode must not hold a queue slot forever.",
    )
    ttl_seconds_after_finished: int = Field(
        default=3600,
        ge=0,
        description="Seconds a finished Job is kept (for `kubectl logs`). Default 1 h; the "
        "result lives in the catalog and in status, not in the Job.",
    )
    scratch_size_limit: str = Field(
        default="20Gi",
        description="Size limit of the emptyDir scratch volume (quantity). Default 20Gi: the "
        "source download plus one rung of segments in flight.",
    )
    source_share: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="Share of the scratch volume a downloaded source may fill: the Job's "
        "KUBEVOD_MAX_SOURCE_BYTES is scratch_size_limit times this. Default 0.5: the encoded "
        "segments in flight (every rung of the ladder together, at most about the source's "
        "own bitrate again), the poster and logs need the other half; the kubelet evicts a "
        "pod whose emptyDir outgrows its limit, which would be a far worse failure.",
    )
    fetch_allow: list[str] = Field(
        default_factory=list,
        description="CIDRs and host names a source URL may reach although private or "
        "loopback (the Job's KUBEVOD_FETCH_ALLOW). Default none: a NAS on the home network "
        "must be named (chart value worker.fetch.allow).",
    )
    fetch_deny: list[str] = Field(
        default_factory=lambda: ["10.42.0.0/16", "10.43.0.0/16"],
        description="CIDRs a source URL may never reach, whatever fetch_allow says (the "
        "Job's KUBEVOD_FETCH_DENY). Default k3s's Pod and Service ranges; set the cluster's "
        "own podCIDR and serviceCIDR.",
    )
    fetch_deadline_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds a whole source download may take (the Job's "
        "KUBEVOD_FETCH_DEADLINE). Default 1 h: 200 GiB at 60 MB/s; a trickling server is cut.",
    )
    s3_source_buckets: list[str] = Field(
        default_factory=list,
        description="Buckets an s3 source may name besides the store's own (the Job's "
        "KUBEVOD_S3_SOURCE_BUCKETS); the chart grants the worker user read on them.",
    )
    run_as_user: int = Field(
        default=10001, ge=1, description="UID of the worker process (non-root)."
    )
    cpu_request: str = Field(default="1", description="Default CPU request (cores).")
    memory_request: str = Field(default="1Gi", description="Default memory request.")
    memory_limit: str = Field(
        default="4Gi",
        description="Default memory limit: one ffmpeg with a 4K ladder stays well under it.",
    )
    otel_endpoint: str | None = Field(
        default=None,
        description="OTLP endpoint given to workers (OTEL_EXPORTER_OTLP_ENDPOINT); none: off.",
    )


class GpuSettings(BaseModel):
    """How a VideoAsset with ``spec.gpu: true`` is scheduled."""

    default_vendor: Literal["nvidia", "intel"] = Field(
        default="nvidia",
        description="Vendor for `accelerator: auto` with `gpu: true`. NVIDIA: the common case.",
    )
    nvidia_runtime_class: str | None = Field(
        default="nvidia",
        description="runtimeClassName for NVIDIA pods (the k3s/GPU-operator default); "
        "none when the default runtime already has the NVIDIA hook.",
    )
    nvidia_node_selector: dict[str, str] = Field(
        default_factory=lambda: {"nvidia.com/gpu.present": "true"},
        description="Node selector for NVIDIA pods (label set by GPU feature discovery).",
    )
    nvidia_tolerations: list[dict[str, Any]] = Field(
        default_factory=lambda: [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ],
        description="Tolerations for NVIDIA pods (GPU nodes are often tainted).",
    )
    nvidia_driver_capabilities: str = Field(
        default="compute,video,utility",
        description="NVIDIA_DRIVER_CAPABILITIES: `video` is what NVENC/NVDEC need.",
    )
    intel_node_selector: dict[str, str] = Field(
        default_factory=lambda: {"intel.feature.node.kubernetes.io/gpu": "true"},
        description="Node selector for Intel GPU pods (label set by the Intel device plugin).",
    )
    intel_tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Tolerations for Intel GPU pods."
    )
    intel_render_group: int | None = Field(
        default=None,
        description="GID of the node's `render` group, added to the pod's supplemental groups "
        "so a non-root worker may open /dev/dri (it differs between distributions).",
    )


class CleanupSettings(BaseModel):
    """How hard deletion tries before releasing the object."""

    max_retries: int = Field(
        default=5,
        ge=0,
        description="Retries of the cleanup when the store or catalog is down (count). After "
        "them the object is released anyway with a Warning event naming what was left.",
    )
    retry_seconds: float = Field(
        default=10.0, gt=0, description="Seconds between two cleanup retries. Default 10."
    )


class PeeringSettings(BaseModel):
    """kopf peering: with two replicas only the one of highest priority acts."""

    name: str = Field(
        default="kubevod",
        description="Name of the (Cluster)KopfPeering object shared by the replicas.",
    )
    standalone: bool = Field(
        default=False, description="Run without peering (a single replica, or tests)."
    )
    priority: int | None = Field(
        default=None,
        description="This replica's priority; none: a random one at start, so two replicas "
        "never tie (equal priorities make kopf pause both).",
    )
    lifetime_seconds: int = Field(
        default=60,
        ge=5,
        description="Seconds a silent peer is still believed alive: how long a standby waits "
        "after the active replica is killed. Default 60 (kopf's).",
    )


class OperatorSettings(BaseSettings):
    """Everything the operator reads from its environment, validated at start."""

    model_config = SettingsConfigDict(
        env_prefix="KUBEVOD_", env_nested_delimiter="__", extra="ignore"
    )

    catalog_url: str = Field(
        default="", description="Catalog URL (mongodb://...); from a Secret in the cluster."
    )
    store_url: str = Field(
        default="", description="Object store URL (s3://...); from a Secret in the cluster."
    )
    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces to watch; empty: the whole cluster (needs the ClusterRole).",
    )
    public_url: str = Field(
        default="http://kubevod.local",
        description="Base URL viewers reach (the nginx cache's Ingress); playback URLs in "
        "status start with it.",
    )
    liveness_endpoint: str | None = Field(
        default="http://0.0.0.0:8080/healthz",
        description="kopf's liveness endpoint (the Deployment's livenessProbe); none: off.",
    )
    metrics_port: int | None = Field(
        default=9090,
        ge=0,
        le=65535,
        description="Port of the Prometheus /metrics server (queue depth, Jobs by phase, "
        "transcode durations); none: off. 9090: the chart's ServiceMonitor scrapes it.",
    )
    queue: QueueSettings = Field(default_factory=QueueSettings)
    timing: TimingSettings = Field(default_factory=TimingSettings)
    worker: WorkerJobSettings = Field(default_factory=WorkerJobSettings)
    gpu: GpuSettings = Field(default_factory=GpuSettings)
    cleanup: CleanupSettings = Field(default_factory=CleanupSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    peering: PeeringSettings = Field(default_factory=PeeringSettings)

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")


@functools.cache
def load_settings() -> OperatorSettings:
    """The process's settings, read once from the environment."""
    return OperatorSettings()
