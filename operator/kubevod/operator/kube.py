"""The operator's own Kubernetes calls (the Jobs it owns): thin, blocking, typed.

kopf patches the VideoAsset and posts Events itself; everything else the
operator does to the API server is here, so the ClusterRole in
``manifests/rbac/operator-clusterrole.yaml`` can be checked against one file.
"""

from __future__ import annotations

from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubevod.operator import naming

from kubevod.errors import Unavailable


def connect() -> client.ApiClient:
    """An API client: in-cluster credentials in a pod, else ``$KUBECONFIG``."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


def create_job(api: client.ApiClient, manifest: dict[str, Any]) -> bool:
    """Create a Job; False when one of that name exists already (a replay, a restart).

    Raises Unavailable for any other failure (retried by the handler).
    """
    meta = manifest["metadata"]
    try:
        client.BatchV1Api(api).create_namespaced_job(meta["namespace"], cast(Any, manifest))
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise Unavailable(f"creating Job {meta['name']}: {exc.status} {exc.reason}") from exc
    return True


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
    selector = f"{naming.LABEL_ASSET_UID}={asset_uid}"
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
        if except_generation is not None and labels.get(naming.LABEL_GENERATION) == str(
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
