"""Fixtures of the chart tests: the chart's CRDs installed in the real API server,
and kubeconform schemas made offline from that server's OpenAPI document."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.chart.helm import CHART
from tests.chart.schemas import write_schemas
from tests.fixtures.servers import KubeCluster

MANIFESTS = CHART.parents[1] / "manifests"


@pytest.fixture(scope="session")
def crds_installed(kube: KubeCluster) -> list[str]:
    """Apply every CRD of the chart for real; return their names once established."""
    names: list[str] = []
    for path in sorted((CHART / "crds").glob("*.yaml")):
        out = kube.kubectl("apply", "-f", str(path), "-o", "name")
        names += [line.split("/", 1)[1] for line in out.stdout.split() if line]
    for name in names:
        kube.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return names


@pytest.fixture(scope="session")
def schema_location(
    kube: KubeCluster, crds_installed: list[str], tmp_path_factory: pytest.TempPathFactory
) -> str:
    """kubeconform's ``-schema-location`` for this API server's kinds (CRDs included)."""
    crd_kinds = set()
    for name in crds_installed:
        crd = json.loads(kube.kubectl("get", "crd", name, "-o", "json").stdout)
        crd_kinds.add(crd["spec"]["names"]["kind"])
    deadline = time.monotonic() + 60
    while True:
        doc = json.loads(kube.kubectl("get", "--raw", "/openapi/v2", timeout=120).stdout)
        published = {
            gvk["kind"]
            for d in doc["definitions"].values()
            for gvk in d.get("x-kubernetes-group-version-kind", [])
        }
        if crd_kinds <= published or time.monotonic() > deadline:
            break
        time.sleep(1)
    folder: Path = tmp_path_factory.mktemp("kubeconform-schemas")
    return write_schemas(doc, folder)
