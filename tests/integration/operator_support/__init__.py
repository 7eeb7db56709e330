"""Helpers for the operator's integration tests: a namespace wired like the chart
wires one, the operator as a real process under its ServiceAccount, and an
honest stand-in for the kubelet and the Job controller (which this test
cluster does not have).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from tests.fixtures.util import ROOT, ServerProcess, free_port, port_open

CRD = ROOT / "manifests" / "crd" / "videoassets.kubevod.io.yaml"
PEERING_CRD = ROOT / "manifests" / "crd" / "kopfpeerings.kopf.dev.yaml"
CLUSTER_ROLE = ROOT / "manifests" / "rbac" / "operator-clusterrole.yaml"
EXAMPLES = ROOT / "manifests" / "examples"
VENV_BIN = Path(sys.executable).parent
SA = "kubevod-operator"
T = TypeVar("T")
TEST_NODE = "test-node"  # the node the simulated pods "run" on
REACHED = "Reached expected number of succeeded pods"  # the Job controller's words


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 60, every: float = 0.25) -> T:
    """Poll ``fn`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Namespace:
    """One test namespace with the operator's ServiceAccount, Secret and peering object."""

    kube: Any
    name: str
    catalog_url: str
    store_url: str
    processes: list[ServerProcess] = field(default_factory=list)
    metrics_port: int = 0  # of the operator started last

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result: subprocess.CompletedProcess[str] = self.kube.kubectl(
            "-n", self.name, *args, check=check, input=input
        )
        return result

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        out = self.kubectl("get", kind, name, "-o", "json", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def list(self, kind: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(self.kubectl("get", kind, "-o", "json").stdout)[
            "items"
        ]
        return items

    def apply(self, manifest: dict[str, Any] | str) -> None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        self.kubectl("apply", "-f", "-", input=text)

    def status(self, name: str) -> dict[str, Any]:
        obj = self.get("videoasset", name) or {}
        status: dict[str, Any] = obj.get("status") or {}
        return status

    def wait_phase(self, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        return wait_for(
            f"{name} to reach {phase}",
            lambda: ((s := self.status(name)).get("phase") == phase and s) or None,
            timeout,
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.list("events") if e.get("involvedObject", {}).get("name") == name]

    def jobs(self) -> list[dict[str, Any]]:
        return self.list("jobs")

    # ----------------------------------------------------------------- operator

    def start_operator(self, **settings: str) -> ServerProcess:
        """``kubevod-operator`` as a real process, authenticated as the ServiceAccount."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBEVOD_")}
        port, self.metrics_port = free_port(), free_port()
        env.update(
            KUBECONFIG=str(self.kube.kubeconfig_for(self.name, SA)),
            KUBEVOD_CATALOG_URL=self.catalog_url,
            KUBEVOD_STORE_URL=self.store_url,
            KUBEVOD_NAMESPACES=self.name,
            KUBEVOD_PUBLIC_URL="http://tv.test",
            KUBEVOD_LIVENESS_ENDPOINT=f"http://127.0.0.1:{port}/healthz",
            KUBEVOD_TIMING__POLL_SECONDS="0.5",
            KUBEVOD_TIMING__RETRY_SECONDS="1",
            KUBEVOD_PEERING__LIFETIME_SECONDS="5",
            KUBEVOD_WORKER__IMAGE="kubevod/worker:test",
            KUBEVOD_METRICS_PORT=str(self.metrics_port),
        )
        env.update(settings)
        proc = ServerProcess(
            f"kubevod-operator-{len(self.processes)}",
            [str(VENV_BIN / "kubevod-operator")],
            self.kube.root / f"operator-{self.name}-{len(self.processes)}.log",
            env=env,
        ).start()
        self.processes.append(proc)
        wait_for(
            "the operator's liveness endpoint", lambda: proc.check_alive() or port_open(port), 60
        )
        return proc

    @staticmethod
    def kill(proc: ServerProcess) -> None:
        """SIGKILL: no graceful shutdown, no goodbye to the peering."""
        assert proc.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.proc.pid, signal.SIGKILL)
        proc.proc.wait(10)
        proc.proc = None

    def metrics(self) -> str:
        """The last-started operator's Prometheus exposition text."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text: str = response.read().decode()
        return text

    def stop_all(self) -> None:
        for proc in self.processes:
            proc.stop()

    # ------------------------------------------------------------- the "kubelet"

    def secret_value(self, name: str, key: str) -> str:
        secret = self.get("secret", name)
        assert secret is not None, f"secret {name} is missing"
        return base64.b64decode(secret["data"][key]).decode()

    def job_env(self, job: dict[str, Any]) -> dict[str, str]:
        """The container env exactly as a kubelet would resolve it.

        ``secretKeyRef`` from the real Secret; the downward API's ``fieldRef``
        from the pod this "kubelet" pretends to run: ``<job>-<5 chars>`` (the
        Job controller's pod name pattern) on node ``test-node``.
        """
        pod = {
            "metadata.name": f"{job['metadata']['name']}-{uuid.uuid4().hex[:5]}",
            "metadata.namespace": self.name,
            "spec.nodeName": TEST_NODE,
        }
        env: dict[str, str] = {}
        for item in job["spec"]["template"]["spec"]["containers"][0]["env"]:
            if "valueFrom" not in item:  # the API server drops an empty value
                env[item["name"]] = item.get("value", "")
            elif "fieldRef" in item["valueFrom"]:
                env[item["name"]] = pod[item["valueFrom"]["fieldRef"]["fieldPath"]]
            else:
                ref = item["valueFrom"]["secretKeyRef"]
                env[item["name"]] = self.secret_value(ref["name"], ref["key"])
        return env

    def set_job_status(self, name: str, status: dict[str, Any]) -> None:
        self.kubectl(
            "patch", "job", name, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": status}),
        )  # fmt: skip

    def run_pod(self, job_name: str, scratch: Path, **node_env: str) -> int:
        """Run the Job's pod: there is no kubelet in this cluster, so the test does its work.

        Marks the Job active as the Job controller would, runs the real worker
        with the Job's own environment (secrets resolved from the real Secret)
        against the real MinIO and catalog, then writes the terminal status the
        Job controller writes for that exit code (pod failure policy included).
        ``node_env`` is what the node adds to every container (e.g.
        ``KUBERNETES_SERVICE_HOST``); the worker's output lands in
        ``scratch / "worker.log"``.
        """
        job = self.get("job", job_name)
        assert job is not None, f"no Job {job_name}"
        started = now()
        self.set_job_status(job_name, {"startTime": started, "active": 1, "ready": 0})
        code = run_worker({**node_env, **self.job_env(job)}, scratch)
        if code == 0:
            done = now()
            self.set_job_status(
                job_name,
                {
                    "active": 0, "succeeded": 1, "ready": 0, "completionTime": done,
                    "conditions": [
                        _cond("SuccessCriteriaMet", "CompletionsReached", REACHED, done),
                        _cond("Complete", "CompletionsReached", REACHED, done),
                    ],
                },
            )  # fmt: skip
        elif code == 2:  # matches the pod failure policy's FailJob rule
            msg = (
                f"Container worker for pod {self.name}/{job_name}-x failed with exit code 2 "
                "matching FailJob rule at index 0"
            )
            done = now()
            self.set_job_status(
                job_name,
                {
                    "active": 0, "failed": 1, "ready": 0,
                    "conditions": [
                        _cond("FailureTarget", "PodFailurePolicy", msg, done),
                        _cond("Failed", "PodFailurePolicy", msg, done),
                    ],
                },
            )  # fmt: skip
        else:
            raise AssertionError(f"worker exited {code}; a transient failure would be retried")
        return code


def _cond(type_: str, reason: str, message: str, at: str) -> dict[str, str]:
    return {
        "type": type_, "status": "True", "reason": reason, "message": message,
        "lastProbeTime": at, "lastTransitionTime": at,
    }  # fmt: skip


def run_worker(env: dict[str, str], scratch: Path) -> int:
    """The worker process with the pod's env; its exit code (0 ok, 2 bad source, 1 transient)."""
    scratch.mkdir(parents=True, exist_ok=True)
    full = {k: v for k, v in os.environ.items() if not k.startswith("KUBEVOD_")}
    full.update(env)
    full.update(TMPDIR=str(scratch), HOME=str(scratch))  # the pod's /scratch emptyDir
    argv = [str(VENV_BIN / "kubevod-worker")]
    result = subprocess.run(
        argv, env=full, cwd=scratch, capture_output=True, text=True, timeout=240
    )
    (scratch / "worker.log").write_text(result.stdout + result.stderr)
    if result.returncode not in (0, 2):
        print(result.stdout[-3000:], result.stderr[-3000:])
    return result.returncode


@contextlib.contextmanager
def namespace(
    kube: Any, catalog_url: str, store_url: str, *, namespaced_rbac: bool = False
) -> Iterator[Namespace]:
    """A fresh namespace wired like the chart wires one (namespaces never finalize here).

    ``namespaced_rbac`` binds the ClusterRole with a RoleBinding only, as the
    chart's namespaced mode does: the cluster-scoped rules then do not apply.
    """
    name = f"op-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", name)
    ns = Namespace(kube, name, catalog_url, store_url)
    ns.kubectl("create", "serviceaccount", SA)
    binding = ("rolebinding", "-n", name) if namespaced_rbac else ("clusterrolebinding",)
    kube.kubectl(
        "create", *binding, f"{SA}-{name}", f"--clusterrole={SA}",
        f"--serviceaccount={name}:{SA}",
    )  # fmt: skip
    ns.kubectl(
        "create", "secret", "generic", "kubevod-backends",
        f"--from-literal=catalog-url={catalog_url}", f"--from-literal=store-url={store_url}",
    )  # fmt: skip
    ns.apply({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "kubevod"}})
    try:
        yield ns
    finally:
        ns.stop_all()
