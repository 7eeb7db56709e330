"""The chart on the test cluster: ``helm install`` with the locally built images.

The only values set are those a user of these substitute images would set as
well (repository, tag, pull policy: tests/cluster/images.py), plus whatever a
test passes for the behaviour it checks.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.cluster import images, layout
from tests.cluster.cluster import Cluster, ClusterError, testenv_bin

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubevod"
RELEASE = "kubevod"
NAMESPACE = "kubevod"
#: The fetch guard as a home user sets it for this cluster: sources may be served
#: from the node's own address (the "NAS on the home network"), never from the
#: cluster's Pod and Service ranges.
FETCH_VALUES: dict[str, object] = {
    "worker.fetch.allow": [f"{layout.NODE_IP}/32"],
    "worker.fetch.deny": [layout.POD_CIDR, layout.SERVICE_CIDR],
}


def component(name: str, release: str = RELEASE) -> str:
    """The chart's name of a component's objects (``kubevod.componentName``)."""
    return f"{release}-{name}" if release != "kubevod" else f"kubevod-{name}"


def helm(cluster: Cluster, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    argv = [testenv_bin("helm"), f"--kubeconfig={cluster.kubeconfig}", *args]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        # A --wait that ran out says only "context deadline exceeded": say which pod.
        raise ClusterError(
            f"helm {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n"
            f"{cluster.diagnose()}"
        )
    return r


def set_args(values: Mapping[str, object]) -> list[str]:
    """``--set``/``--set-string`` per value; a list becomes helm's ``{a,b}``."""
    out: list[str] = []
    for key, value in values.items():
        if isinstance(value, list | tuple):
            out += ["--set", f"{key}={{{','.join(str(v) for v in value)}}}"]
        else:
            out += ["--set-string" if isinstance(value, str) else "--set", f"{key}={value}"]
    return out


def install(
    cluster: Cluster,
    values: Mapping[str, object] | None = None,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    upgrade: bool = False,
    timeout: str = "300s",
) -> subprocess.CompletedProcess[str]:
    """``helm install`` (or ``upgrade``) the chart and wait for every workload to roll out."""
    verb = ["upgrade", release] if upgrade else ["install", release]
    overrides = {**images.helm_overrides(), **(values or {})}
    return helm(
        cluster,
        *verb,
        str(CHART),
        "-n",
        namespace,
        "--create-namespace",
        "--wait",
        "--timeout",
        timeout,
        *set_args(overrides),
    )
