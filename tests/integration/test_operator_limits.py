"""Tenant limits and permanent Kubernetes answers, against a real kube-apiserver.

The operator runs as a real process under its ServiceAccount (see
test_operator.py). What these tests show a VideoAsset author: a spec over the
namespace's caps ends Failed naming the cap and makes no Job; a Job the API
server refuses (422) ends Failed with the API server's own words, once, not an
endless retry; a Job whose pod the scheduler cannot place leaves the queue
after the configured time with the scheduler's message. The test cluster has
no scheduler, so the pod and its PodScheduled condition are written here as
the Job controller and kube-scheduler would write them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.operator_support import (
    SA,
    Namespace,
    namespace,
    wait_for,
)
from tests.integration.operator_support.flow import install_crds

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(kube: Any) -> Any:
    install_crds(kube)
    return kube


@pytest.fixture
def ns(cluster: Any, minio: Any, mongo_url: str) -> Iterator[Namespace]:
    with namespace(cluster, mongo_url, minio.store_url) as space:
        yield space


def asset(name: str, **spec: Any) -> dict[str, Any]:
    source = {"s3": {"bucket": "kubevod", "key": "sources/none.mp4"}}
    return {
        "apiVersion": "kubevod.io/v1alpha1",
        "kind": "VideoAsset",
        "metadata": {"name": name},
        "spec": {"source": source, "title": name, **spec},
    }


def ready_reason(status: dict[str, Any]) -> str:
    return next(c["reason"] for c in status["conditions"] if c["type"] == "Ready")


def test_over_the_namespace_caps_ends_failed_naming_the_cap_and_makes_no_job(
    ns: Namespace,
) -> None:
    caps = {ns.name: {"maxPriority": 600}}
    ns.start_operator(
        KUBEVOD_LIMITS__MAX_PRIORITY="10",
        KUBEVOD_LIMITS__MAX_MEMORY="2Gi",
        KUBEVOD_LIMITS__NAMESPACES=json.dumps(caps),
    )
    ns.apply(asset("greedy", priority=900, resources={"limits": {"memory": "16Gi"}}))
    st = ns.wait_phase("greedy", "Failed", timeout=30)
    assert ready_reason(st) == "OverLimit"
    assert f"spec.priority: 900 is above the cap of 600 in namespace '{ns.name}'" in st["message"]
    assert "spec.resources.limits.memory: 16Gi is above the cap of 2Gi" in st["message"]
    warnings = [e for e in ns.events("greedy") if e["type"] == "Warning"]
    assert any(e["reason"] == "OverLimit" for e in warnings), warnings
    assert ns.jobs() == []
    # Within the namespace's override (600, not the default 10): it runs.
    ns.apply(asset("allowed", priority=500))
    ns.wait_phase("allowed", "Transcoding", timeout=30)
    assert len(ns.jobs()) == 1


def test_a_job_the_api_server_rejects_fails_once_with_its_message(ns: Namespace) -> None:
    proc = ns.start_operator()
    # Within every cap, but above the Job's default memory limit (4Gi): the API
    # server refuses the Job with 422 (requests must not exceed limits).
    ns.apply(asset("refused", resources={"requests": {"memory": "6Gi"}}))
    st = ns.wait_phase("refused", "Failed", timeout=30)
    assert ready_reason(st) == "Rejected"
    assert "(422)" in st["message"], st["message"]
    assert "must be less than or equal to memory limit" in st["message"], st["message"]
    assert ns.jobs() == []
    # Not retried: the operator tried once and stays quiet (kopf.PermanentError).
    time.sleep(3)
    log = proc.log.read_text()
    assert log.count("Kubernetes refused Job") <= 2, log[-2000:]  # our line and kopf's
    assert ns.status("refused")["phase"] == "Failed"


def _unschedulable_pod(ns: Namespace, job_name: str, seconds_ago: float) -> None:
    """The pod the Job controller makes and the condition kube-scheduler sets on it."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{job_name}-x7k2p", "labels": {"job-name": job_name}},
        "spec": {
            "serviceAccountName": SA,  # no controller here makes the default account
            "automountServiceAccountToken": False,
            "containers": [{"name": "worker", "image": "kubevod/worker:test"}],
        },
    }
    ns.apply(pod)
    since = (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    condition = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "lastTransitionTime": since,
        "message": "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
        "available: 1 No preemption victims found for incoming pod.",
    }
    ns.kubectl(
        "patch", "pod", pod["metadata"]["name"], "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"phase": "Pending", "conditions": [condition]}}),
    )  # fmt: skip


def test_an_unschedulable_pod_leaves_the_queue_with_the_schedulers_reason(
    ns: Namespace,
) -> None:
    ns.start_operator(KUBEVOD_TIMING__UNSCHEDULABLE_SECONDS="20", KUBEVOD_QUEUE__MAX_CONCURRENT="1")
    ns.apply(asset("too-big", resources={"requests": {"cpu": "3"}}))
    ns.wait_phase("too-big", "Transcoding", timeout=30)
    ns.apply(asset("next-in-line"))
    ns.wait_phase("next-in-line", "Queued", timeout=30)
    job = ns.jobs()[0]["metadata"]["name"]
    ns.set_job_status(job, {"startTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "active": 1, "ready": 0})  # fmt: skip
    # Unschedulable for 5 s of the allowed 20: it stays.
    _unschedulable_pod(ns, job, seconds_ago=5)
    time.sleep(3)
    assert ns.status("too-big")["phase"] == "Transcoding"
    # Then past the limit (the condition's time is what counts): Failed, Job gone.
    ns.kubectl("delete", "pod", f"{job}-x7k2p", "--wait=false")
    wait_for("the old pod gone", lambda: ns.get("pod", f"{job}-x7k2p") is None, 30)
    _unschedulable_pod(ns, job, seconds_ago=60)
    st = ns.wait_phase("too-big", "Failed", timeout=30)
    assert ready_reason(st) == "Unschedulable"
    assert "could not be scheduled for 20 s" in st["message"], st["message"]
    assert "1 Insufficient cpu" in st["message"], st["message"]
    wait_for("the Job deleted", lambda: ns.get("job", job) is None, 30)
    # Its slot goes to the next VideoAsset.
    ns.wait_phase("next-in-line", "Transcoding", timeout=30)
