"""The operator's own Kubernetes calls (the Jobs it owns): thin, blocking, typed.

kopf patches the VideoAsset and posts Events itself; everything else the
operator does to the API server is here, so the ClusterRole in
``manifests/rbac/operator-clusterrole.yaml`` can be checked against one file.
"""

from __future__ import annotations

import json
from typing import Any, cast

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubevod.operator.errors import Rejected
from kubevod.operator.status import PodScheduling

from kubevod import contract
from kubevod.errors import Unavailable


def connect() -> client.ApiClient:
    """An API client: in-cluster credentials in a pod, else ``$KUBECONFIG``."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


#: 4xx answers that mean "not now" rather than "never": 408 timeout, 429 throttled,
#: 401 (the operator's own credentials expired: not the VideoAsset's fault).
_TEMPORARY_4XX = frozenset({401, 408, 429})


def api_message(exc: ApiException) -> str:
    """Kubernetes' own message of a failed call (the Status object's), or the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or f"{exc.status} {exc.reason}")


def create_job(api: client.ApiClient, manifest: dict[str, Any]) -> bool:
    """Create a Job; False when one of that name exists already (a replay, a restart).

    Raises:
        Rejected: a 4xx answer that would come again (422 invalid, 403 forbidden by
            a quota or an admission policy, 400...), with Kubernetes' message.
        Unavailable: a 5xx, a timeout, throttling or no connection (retried).
    """
    meta = manifest["metadata"]
    try:
        client.BatchV1Api(api).create_namespaced_job(meta["namespace"], cast(Any, manifest))
    except ApiException as exc:
        if exc.status == 409:
            return False
        status = int(exc.status or 0)
        if 400 <= status < 500 and status not in _TEMPORARY_4XX:
            raise Rejected(status, api_message(exc)) from exc
        raise Unavailable(f"creating Job {meta['name']}: {exc.status} {exc.reason}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise Unavailable(f"creating Job {meta['name']}: {exc}") from exc
    return True


def _pods(api: client.ApiClient, namespace: str, selector: str, what: str) -> Any:
    """The pods matching a label selector; Unavailable when they cannot be listed."""
    try:
        return client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector)
    except ApiException as exc:
        raise Unavailable(f"listing {what}: {exc.status} {exc.reason}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise Unavailable(f"listing {what}: {exc}") from exc


def unschedulable(api: client.ApiClient, namespace: str, job_name: str) -> PodScheduling | None:
    """The Job's pod the scheduler cannot place, if any: since when and the scheduler's message.

    Raises Unavailable when the pods cannot be listed.
    """
    pods = _pods(api, namespace, f"job-name={job_name}", f"pods of Job {job_name}")
    for pod in pods.items:
        found = PodScheduling.from_pod(api.sanitize_for_serialization(pod))  # type: ignore[no-untyped-call]
        if found is not None:
            return found
    return None


def live_pods(api: client.ApiClient, namespace: str, asset_uid: str) -> list[str]:
    """Names of the VideoAsset's Job pods that have not ended (a worker may still write).

    Raises Unavailable when the pods cannot be listed.
    """
    pods = _pods(api, namespace, f"{contract.LABEL_ASSET_UID}={asset_uid}", "Job pods")
    return sorted(
        str(pod.metadata.name)
        for pod in pods.items
        if pod.metadata is not None
        and (pod.status is None or pod.status.phase not in ("Succeeded", "Failed"))
    )


def delete_jobs(
    api: client.ApiClient, namespace: str, asset_uid: str, *, except_generation: int | None = None
) -> list[str]:
    """Delete the Jobs of one VideoAsset (all, or all but one generation's).

    Background propagation: the Job goes at once and the garbage collector
    removes its pods; we never rely on the collector for the Job itself.

    Returns:
        Names of the Jobs deleted.
    """
    batch = client.BatchV1Api(api)
    selector = f"{contract.LABEL_ASSET_UID}={asset_uid}"
    try:
        found = batch.list_namespaced_job(namespace, label_selector=selector).items
    except ApiException as exc:
        raise Unavailable(f"listing Jobs: {exc.status} {exc.reason}") from exc
    deleted = []
    for job in found:
        if job.metadata is None or not job.metadata.name:
            continue
        name = str(job.metadata.name)
        labels = job.metadata.labels or {}
        if except_generation is not None and labels.get(contract.LABEL_GENERATION) == str(
            except_generation
        ):
            continue
        try:
            batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise Unavailable(f"deleting Job {name}: {exc.status}") from exc
        deleted.append(name)
    return deleted


def owner_reference(
    api: client.ApiClient, namespace: str, deployment: str
) -> dict[str, Any] | None:
    """An ownerReference to a Deployment (the operator's own), or None when it cannot be
    read (an operator run outside the cluster, or the name unset)."""
    if not deployment:
        return None
    try:
        found = client.AppsV1Api(api).read_namespaced_deployment(deployment, namespace)
    except (ApiException, urllib3.exceptions.HTTPError, OSError):
        return None
    if found.metadata is None or not found.metadata.uid:
        return None
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment,
        "uid": str(found.metadata.uid),
        "blockOwnerDeletion": False,
    }


def apply_deployment(api: client.ApiClient, manifest: dict[str, Any]) -> None:
    """Create a Deployment, or replace the one of that name with it (a new image, other
    settings: what is not in ``manifest`` is gone, unlike a merge patch).

    Raises:
        Unavailable: the API server refused or could not be reached (retried by the caller).
    """
    meta = manifest["metadata"]
    apps = client.AppsV1Api(api)
    try:
        try:
            apps.create_namespaced_deployment(meta["namespace"], cast(Any, manifest))
        except ApiException as exc:
            if exc.status != 409:
                raise
            found = apps.read_namespaced_deployment(meta["name"], meta["namespace"])
            version = found.metadata.resource_version if found.metadata else None
            body = {**manifest, "metadata": {**meta, "resourceVersion": version}}
            apps.replace_namespaced_deployment(meta["name"], meta["namespace"], cast(Any, body))
    except ApiException as exc:
        raise Unavailable(f"applying Deployment {meta['name']}: {api_message(exc)}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise Unavailable(f"applying Deployment {meta['name']}: {exc}") from exc


def delete_deployment(api: client.ApiClient, namespace: str, name: str) -> None:
    """Delete a Deployment (its pods with it); no error when there is none."""
    try:
        client.AppsV1Api(api).delete_namespaced_deployment(
            name, namespace, propagation_policy="Background"
        )
    except ApiException as exc:
        if exc.status != 404:
            raise Unavailable(f"deleting Deployment {name}: {api_message(exc)}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise Unavailable(f"deleting Deployment {name}: {exc}") from exc
