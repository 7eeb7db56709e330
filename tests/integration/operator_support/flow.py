"""One video through the cluster path, as the observability tests need it.

``kubectl apply`` of a VideoAsset → the real ``kubevod-operator`` (under its
ServiceAccount) creates the Job → the test plays the kubelet and runs the real
``kubevod-worker`` with the Job's own env (``Namespace.run_pod``; there is no
kubelet here) against the real MinIO and MongoDB-wire catalog → the real
``kubevod-api`` serves the result. Every process exports its spans to the
given OTLP endpoint and writes JSON log lines.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubevod.backends import open_store
from tests.fixtures.media import make_video
from tests.fixtures.util import ServerProcess, free_port, port_open
from tests.integration.operator_support import (
    CLUSTER_ROLE,
    CRD,
    PEERING_CRD,
    VENV_BIN,
    Namespace,
    namespace,
    wait_for,
)

ASSET = "traced"
#: Spans leave a long-running process within this many ms (the SDK's default is 5000).
EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100", "KUBEVOD_LOG_FORMAT": "json"}


@dataclass
class Flow:
    """What one video's trip left behind."""

    ns: Namespace
    operator: ServerProcess
    api: ServerProcess
    api_url: str
    job: dict[str, Any]
    traceparent: str  # the Job's TRACEPARENT
    status: dict[str, Any]  # the VideoAsset's status once Ready
    worker_log: str

    @property
    def trace_id(self) -> str:
        return self.traceparent.split("-")[1]

    @property
    def video_id(self) -> str:
        return str(self.status["videoId"])


def install_crds(kube: Any) -> None:
    """The CRDs and the operator's ClusterRole, as the chart installs them."""
    kube.kubectl("apply", "-f", str(CRD), "-f", str(PEERING_CRD), "-f", str(CLUSTER_ROLE))
    kube.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/videoassets.kubevod.io", "crd/kopfpeerings.kopf.dev",
    )  # fmt: skip


def start_api(ns: Namespace, log: Path, **env: str) -> tuple[ServerProcess, str]:
    """``kubevod-api`` as a real process on the namespace's catalog and store."""
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith(("KUBEVOD_", "OTEL_"))}
    full.update(
        KUBEVOD_CATALOG_URL=ns.catalog_url,
        KUBEVOD_STORE_URL=ns.store_url,
        KUBEVOD_HOST="127.0.0.1",
        KUBEVOD_PORT=str(port),
        KUBEVOD_DATA_DIR=str(log.parent / "api-data"),
        **env,
    )
    api = ServerProcess("kubevod-api", [str(VENV_BIN / "kubevod-api")], log, env=full).start()
    wait_for("the API to listen", lambda: api.check_alive() or port_open(port), 60)
    return api, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def one_video(kube: Any, minio: Any, mongo: Any, otlp_endpoint: str, tmp: Path) -> Iterator[Flow]:
    """Apply one VideoAsset and carry it to Ready; yield the processes and what they wrote."""
    telemetry = {**EXPORT, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint}
    catalog_url = f"{mongo.uri}obs{uuid.uuid4().hex[:10]}"
    with namespace(kube, catalog_url, minio.store_url) as ns:
        source = make_video(tmp / "clip.mp4", seconds=2, width=320, height=180, fps=24)
        open_store(ns.store_url).put_file("sources/traced.mp4", source, content_type="video/mp4")
        operator = ns.start_operator(KUBEVOD_WORKER__OTEL_ENDPOINT=otlp_endpoint, **telemetry)
        ns.apply(
            {
                "apiVersion": "kubevod.io/v1alpha1",
                "kind": "VideoAsset",
                "metadata": {"name": ASSET},
                "spec": {
                    "source": {"s3": {"bucket": "kubevod", "key": "sources/traced.mp4"}},
                    "title": "Traced",
                },
            }
        )
        job_name = ns.wait_phase(ASSET, "Transcoding")["jobName"]
        job = ns.get("job", job_name)
        assert job is not None
        # The pod's env is the Job's (OTLP endpoint and TRACEPARENT included); the node
        # adds nothing but JSON logs, which a pod gets from KUBERNETES_SERVICE_HOST.
        assert ns.run_pod(job_name, tmp / "pod", KUBEVOD_LOG_FORMAT="json") == 0
        status = ns.wait_phase(ASSET, "Ready")
        api, url = start_api(ns, tmp / "api.log", **telemetry)
        try:
            yield Flow(
                ns=ns,
                operator=operator,
                api=api,
                api_url=url,
                job=job,
                traceparent=ns.job_env(job)["TRACEPARENT"],
                status=status,
                worker_log=(tmp / "pod" / "worker.log").read_text(),
            )
        finally:
            api.stop()
