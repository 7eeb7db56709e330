"""The transcode Job of one VideoAsset generation, and the warm chunk workers, built
by pure functions.

``build_job`` maps (VideoAsset, settings, traceparent) to a ``batch/v1`` Job
manifest, and ``build_chunk_workers`` maps the settings to the ``apps/v1``
Deployment of warm workers that encode the chunks viewers of on-demand videos
wait for (``kubevod-worker chunks``): the same image, credentials, fetch
policy, scratch volume and security context as a Job's pod, from the same
helpers. No client, no environment, no clock, so they are tested in
``tests/unit/test_operator_job_manifest.py`` and applied by the handlers unchanged.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from kubevod.operator.limits import quantity
from kubevod.operator.resource import PVC_MOUNT, Asset
from kubevod.operator.settings import GpuSettings, WorkerJobSettings

from kubevod import contract
from kubevod.jobs import TranscodeJob
from kubevod.models import TranscodePolicy

CONTAINER = contract.CONTAINER
SCRATCH = "/scratch"
NVIDIA_GPU = "nvidia.com/gpu"
INTEL_GPU = "gpu.intel.com/i915"

Vendor = Literal["nvidia", "intel"]


def gpu_vendor(asset: Asset, gpu: GpuSettings) -> Vendor | None:
    """Which GPU a VideoAsset's pod is scheduled on, or None for a CPU node.

    Only ``spec.gpu`` schedules on a GPU node; ``spec.accelerator`` picks the
    vendor (nvidia → NVIDIA; vaapi and qsv → Intel; auto → the setting). An
    accelerator without ``gpu: true`` runs where the pod lands and falls back
    to software there, which status reports.
    """
    spec = asset.spec
    if not spec.gpu or spec.accelerator == "none":
        return None
    if spec.accelerator == "nvidia":
        return "nvidia"
    if spec.accelerator in ("vaapi", "qsv"):
        return "intel"
    return gpu.default_vendor


def pods(asset: Asset, worker: WorkerJobSettings) -> int:
    """Pods the asset's transcode is spread over: its own ``spec.transcode.pods``, else the
    install's ``worker.pods``."""
    asked = asset.spec.transcode.pods if asset.spec.transcode else None
    return asked or worker.pods


def policy(asset: Asset, worker: WorkerJobSettings) -> TranscodePolicy:
    """When the asset is encoded: its own ``spec.transcode.policy``, else the install's
    ``worker.policy``; eager for a source on a PVC, which the warm chunk workers, whatever
    they are asked, cannot mount."""
    asked = asset.spec.transcode.policy if asset.spec.transcode else None
    if asset.spec.source.pvc is not None:
        return TranscodePolicy.EAGER
    return asked or worker.policy


def transcode_job(
    asset: Asset,
    video_id: str,
    *,
    pods: int = 1,
    policy: TranscodePolicy = TranscodePolicy.EAGER,
) -> TranscodeJob:
    """What the worker is asked to do (travels in ``KUBEVOD_JOB``); an on-demand job is
    one pod's (its registration: the chunk workers encode the rest)."""
    spec = asset.spec
    on_demand = policy == TranscodePolicy.ON_DEMAND
    return TranscodeJob(
        video_id=video_id,
        source=spec.source_ref(),
        generation=asset.generation,
        segment_seconds=spec.segment_seconds,
        ladder=spec.ladder_ref(),
        codec=spec.codec,
        accelerator=spec.accelerator,
        passthrough=spec.transcode.passthrough if spec.transcode else "auto",
        policy=policy,
        pods=1 if on_demand else pods,
        title=spec.title or asset.name,
    )


def labels(asset: Asset, video_id: str) -> dict[str, str]:
    """Labels of the Job and its pod (the operator's Job index selects on managed-by)."""
    return {
        contract.LABEL_NAME: contract.WORKER_NAME,
        contract.LABEL_COMPONENT: contract.WORKER_COMPONENT,
        contract.LABEL_PART_OF: "kubevod",
        contract.LABEL_MANAGED_BY: contract.MANAGED_BY,
        contract.LABEL_VIDEO_ID: video_id,
        contract.LABEL_ASSET_UID: asset.uid,
        contract.LABEL_GENERATION: str(asset.generation),
    }


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def max_source_bytes(worker: WorkerJobSettings) -> int:
    """The largest source a Job may download: its share of the scratch volume (bytes).

    The source lands on the scratch emptyDir next to the segments being
    encoded; a source as large as the volume would get the pod evicted by the
    kubelet mid-encode, so it may fill only ``worker.source_share`` of it.
    """
    return int(quantity(worker.scratch_size_limit) * Decimal(str(worker.source_share)))


def fetch_env(worker: WorkerJobSettings) -> list[dict[str, str]]:
    """What the worker's fetch guard is told (docs/security.md; names in kubevod.contract).

    An empty list is left out (the worker's default is empty too): the API
    server drops an empty ``value``, and the Job should read as it is stored.
    """
    env = [
        (contract.FETCH_ALLOW, ",".join(worker.fetch_allow)),
        (contract.FETCH_DENY, ",".join(worker.fetch_deny)),
        (contract.FETCH_DEADLINE, f"{worker.fetch_deadline_seconds:g}"),
        (contract.MAX_SOURCE_BYTES, str(max_source_bytes(worker))),
        (contract.S3_SOURCE_BUCKETS, ",".join(worker.s3_source_buckets)),
    ]
    return [{"name": name, "value": value} for name, value in env if value]


def _env(asset: Asset, video_id: str, worker: WorkerJobSettings, traceparent: str) -> list[Any]:
    job = transcode_job(
        asset, video_id, pods=_job_pods(asset, worker), policy=policy(asset, worker)
    )
    env: list[Any] = [{"name": k, "value": v} for k, v in job.to_env().items()]
    # W3C trace context: the worker's spans join the operator's trace (docs/architecture.md §8).
    env += _worker_env(worker, traceparent)
    if job.pods > 1:
        env.append({"name": contract.SPREAD_CHUNK_SECONDS, "value": f"{worker.chunk_seconds:g}"})
    return env


def _worker_env(worker: WorkerJobSettings, traceparent: str | None) -> list[Any]:
    """What every worker pod is told besides its job: a Job's and a chunk worker's."""
    env: list[Any] = [
        # Credentials only by reference: `kubectl get job -o yaml` shows no secret.
        _secret_env(contract.CATALOG_URL, worker.secret_name, worker.catalog_url_key),
        _secret_env(contract.STORE_URL, worker.secret_name, worker.store_url_key),
    ]
    if traceparent is not None:
        env.append({"name": contract.TRACEPARENT, "value": traceparent})
    env += [
        {"name": "OTEL_SERVICE_NAME", "value": "kubevod-worker"},
        # Downward API: the worker's spans and logs say which pod and node ran them.
        _field_env("POD_NAME", "metadata.name"),
        _field_env("POD_NAMESPACE", "metadata.namespace"),
        _field_env("NODE_NAME", "spec.nodeName"),
        # The root filesystem is read-only; everything writable lives in the scratch volume.
        {"name": "TMPDIR", "value": SCRATCH},
        {"name": "HOME", "value": SCRATCH},
        *fetch_env(worker),
    ]
    if worker.otel_endpoint:
        env.append({"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": worker.otel_endpoint})
    return env


def _resources(asset: Asset, worker: WorkerJobSettings, vendor: Vendor | None) -> dict[str, Any]:
    asked = asset.spec.resources
    requests: dict[str, Any] = {
        "cpu": asked.requests.cpu or worker.cpu_request,
        "memory": asked.requests.memory or worker.memory_request,
    }
    limits: dict[str, Any] = {"memory": asked.limits.memory or worker.memory_limit}
    if asked.limits.cpu:
        limits["cpu"] = asked.limits.cpu
    if vendor is not None:
        # Extended resources are set as limits; requests default to the same value.
        limits[NVIDIA_GPU if vendor == "nvidia" else INTEL_GPU] = 1
    # Quantities are strings in the API (the typed client refuses bare numbers).
    return {
        "requests": {k: str(v) for k, v in requests.items()},
        "limits": {k: str(v) for k, v in limits.items()},
    }


def _container(
    asset: Asset, video_id: str, worker: WorkerJobSettings, gpu: GpuSettings, traceparent: str
) -> dict[str, Any]:
    vendor = gpu_vendor(asset, gpu)
    env = _env(asset, video_id, worker, traceparent)
    if vendor == "nvidia":
        env.append({"name": "NVIDIA_DRIVER_CAPABILITIES", "value": gpu.nvidia_driver_capabilities})
    mounts: list[dict[str, Any]] = [{"name": "scratch", "mountPath": SCRATCH}]
    if asset.spec.source.pvc is not None:
        mounts.append({"name": "source", "mountPath": PVC_MOUNT, "readOnly": True})
    return {
        "name": CONTAINER,
        "image": worker.image,
        "imagePullPolicy": worker.image_pull_policy,
        "command": list(worker.command),
        "env": env,
        "resources": _resources(asset, worker, vendor),
        "volumeMounts": mounts,
        "workingDir": SCRATCH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": CONTAINER_SECURITY,
    }


#: Every worker container's security context.
CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}


def _pod_security(worker: WorkerJobSettings) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": worker.run_as_user,
        "runAsGroup": worker.run_as_user,
        "fsGroup": worker.run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod_spec(
    asset: Asset, video_id: str, worker: WorkerJobSettings, gpu: GpuSettings, traceparent: str
) -> dict[str, Any]:
    vendor = gpu_vendor(asset, gpu)
    pod_security = _pod_security(worker)
    volumes: list[dict[str, Any]] = [
        {"name": "scratch", "emptyDir": {"sizeLimit": worker.scratch_size_limit}}
    ]
    pvc = asset.spec.source.pvc
    if pvc is not None:
        claim = {"claimName": pvc.claim_name, "readOnly": True}
        volumes.append({"name": "source", "persistentVolumeClaim": claim})
    spec: dict[str, Any] = {
        "restartPolicy": "Never",  # required by podFailurePolicy; the Job retries pods
        "serviceAccountName": worker.service_account,
        "automountServiceAccountToken": False,  # the worker never talks to the API server
        "enableServiceLinks": False,
        "securityContext": pod_security,
        "containers": [_container(asset, video_id, worker, gpu, traceparent)],
        "volumes": volumes,
    }
    if vendor == "nvidia":
        if gpu.nvidia_runtime_class:
            spec["runtimeClassName"] = gpu.nvidia_runtime_class
        if gpu.nvidia_node_selector:
            spec["nodeSelector"] = dict(gpu.nvidia_node_selector)
        if gpu.nvidia_tolerations:
            spec["tolerations"] = [dict(t) for t in gpu.nvidia_tolerations]
    elif vendor == "intel":
        if gpu.intel_node_selector:
            spec["nodeSelector"] = dict(gpu.intel_node_selector)
        if gpu.intel_tolerations:
            spec["tolerations"] = [dict(t) for t in gpu.intel_tolerations]
        if gpu.intel_render_group is not None:
            pod_security["supplementalGroups"] = [gpu.intel_render_group]
    return spec


def _job_pods(asset: Asset, worker: WorkerJobSettings) -> int:
    """The Job's pods: one for an on-demand registration, else ``pods``."""
    return 1 if policy(asset, worker) == TranscodePolicy.ON_DEMAND else pods(asset, worker)


def _spread(count: int) -> dict[str, Any]:
    """An Indexed Job of ``count`` pods running at once (each told its index in
    ``contract.POD_INDEX``), or nothing for one pod (the Job as it always was)."""
    if count <= 1:
        return {}
    return {"completionMode": "Indexed", "completions": count, "parallelism": count}


def build_job(
    asset: Asset,
    *,
    video_id: str,
    worker: WorkerJobSettings,
    gpu: GpuSettings,
    traceparent: str,
) -> dict[str, Any]:
    """The Job that transcodes ``asset``'s current generation.

    Args:
        asset: the VideoAsset (its uid and generation name the Job).
        video_id: the catalog id (``naming.video_id``).
        worker: image, Secret, limits and deadlines for the pod.
        gpu: how ``spec.gpu`` is scheduled.
        traceparent: W3C trace context of the operator's span.

    Returns:
        A ``batch/v1`` Job manifest, owned by the VideoAsset.
    """
    job_labels = labels(asset, video_id)
    annotations = {
        contract.ANNOTATION_ASSET: f"{asset.namespace}/{asset.name}",
        contract.ANNOTATION_TRACEPARENT: traceparent,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": asset.job_name,
            "namespace": asset.namespace,
            "labels": job_labels,
            "annotations": annotations,
            "ownerReferences": [asset.owner_reference()],
        },
        "spec": {
            "backoffLimit": worker.backoff_limit,
            "activeDeadlineSeconds": worker.active_deadline_seconds,
            "ttlSecondsAfterFinished": worker.ttl_seconds_after_finished,
            "podFailurePolicy": {
                "rules": [
                    {
                        # A bad source fails the same way every time, and a video
                        # deleted or moved past stays so: do not retry either.
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": CONTAINER,
                            "operator": "In",
                            "values": list(contract.EXIT_PERMANENT),
                        },
                    },
                    {
                        # Evictions and preemptions are not the video's fault.
                        "action": "Ignore",
                        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                    },
                ]
            },
            **_spread(_job_pods(asset, worker)),
            "template": {
                "metadata": {"labels": job_labels, "annotations": annotations},
                "spec": _pod_spec(asset, video_id, worker, gpu, traceparent),
            },
        },
    }


#: The argument that makes the worker image a warm chunk worker (``kubevod.worker.main``).
CHUNKS_ARG = "chunks"


def chunk_worker_labels(worker: WorkerJobSettings) -> dict[str, str]:
    """Labels of the chunk workers: a worker's (the network policies let workers reach the
    catalog and the store), without a video id or ``managed-by`` (no Job of a video)."""
    return {
        contract.LABEL_NAME: contract.WORKER_NAME,
        contract.LABEL_COMPONENT: contract.WORKER_COMPONENT,
        contract.LABEL_PART_OF: "kubevod",
        contract.LABEL_ROLE: contract.CHUNK_WORKER_ROLE,
    }


def build_chunk_workers(
    worker: WorkerJobSettings,
    *,
    namespace: str,
    owner: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The Deployment of ``worker.chunk_workers`` warm chunk workers in ``namespace``.

    Args:
        worker: image, Secret, resources and fetch policy (a Job's pod's).
        namespace: the operator's own namespace (the Secret is there).
        owner: an ownerReference (the operator's Deployment), so uninstalling the
            operator removes the workers; None for none.
        labels: more labels for the Deployment and its pods (the release's).

    Returns:
        An ``apps/v1`` Deployment manifest.
    """
    pod_labels = {**(labels or {}), **chunk_worker_labels(worker)}
    selector = {contract.LABEL_ROLE: contract.CHUNK_WORKER_ROLE}
    resources = {
        "requests": {
            "cpu": worker.chunk_worker_cpu_request,
            "memory": worker.chunk_worker_memory_request,
        },
        "limits": {"memory": str(worker.memory_limit)},
    }
    container = {
        "name": CONTAINER,
        "image": worker.image,
        "imagePullPolicy": worker.image_pull_policy,
        "command": [*worker.command, CHUNKS_ARG],
        "env": _worker_env(worker, None),
        "resources": resources,
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}],
        "workingDir": SCRATCH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": CONTAINER_SECURITY,
    }
    metadata: dict[str, Any] = {
        "name": worker.chunk_worker_name,
        "namespace": namespace,
        "labels": pod_labels,
    }
    if owner is not None:
        metadata["ownerReferences"] = [owner]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": worker.chunk_workers,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "serviceAccountName": worker.service_account,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    # A chunk being encoded stops on SIGTERM; what it uploaded stays.
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": _pod_security(worker),
                    "containers": [container],
                    "volumes": [
                        {"name": "scratch", "emptyDir": {"sizeLimit": worker.scratch_size_limit}}
                    ],
                },
            },
        },
    }
