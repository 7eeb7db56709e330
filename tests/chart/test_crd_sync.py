"""The chart ships the very CRDs and operator rules of ``manifests/``, and the
example VideoAssets are accepted by the real API server with that CRD."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.chart.conftest import MANIFESTS
from tests.chart.helm import CHART
from tests.fixtures.servers import KubeCluster

CRD_SOURCES = sorted((MANIFESTS / "crd").glob("*.yaml"))
EXAMPLES = sorted((MANIFESTS / "examples").glob("*.yaml"))


def test_manifests_hold_the_videoasset_crd_and_the_operator_rules() -> None:
    assert (MANIFESTS / "crd" / "videoassets.kubevod.io.yaml").is_file()
    assert (MANIFESTS / "rbac" / "operator-clusterrole.yaml").is_file()


@pytest.mark.parametrize("source", CRD_SOURCES, ids=lambda p: p.name)
def test_chart_crd_is_a_byte_for_byte_copy_of_manifests(source: Path) -> None:
    copy = CHART / "crds" / source.name
    assert copy.is_file(), f"copy {source} to {copy}"
    assert copy.read_bytes() == source.read_bytes(), f"cp {source} {copy}"


def test_chart_has_no_crd_that_manifests_lacks() -> None:
    assert {p.name for p in (CHART / "crds").glob("*.yaml")} == {p.name for p in CRD_SOURCES}


def test_chart_operator_rules_are_a_copy_of_manifests() -> None:
    source = MANIFESTS / "rbac" / "operator-clusterrole.yaml"
    copy = CHART / "files" / "operator-clusterrole.yaml"
    assert copy.read_bytes() == source.read_bytes(), f"cp {source} {copy}"


@pytest.mark.integration
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_accepted_by_the_api_server_with_the_crd(
    example: Path, kube: KubeCluster, crds_installed: list[str]
) -> None:
    assert "videoassets.kubevod.io" in crds_installed
    docs = [d for d in yaml.safe_load_all(example.read_text()) if d]
    assert docs
    result = kube.kubectl(
        "apply", "--dry-run=server", "-n", "default", "-f", str(example), check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.integration
def test_a_malformed_videoasset_is_refused_by_the_crd_schema(
    kube: KubeCluster, crds_installed: list[str]
) -> None:
    bad = {
        "apiVersion": "kubevod.io/v1alpha1",
        "kind": "VideoAsset",
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"title": "no source", "codec": "mpeg2"},
    }
    result = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(bad),
                          check=False)  # fmt: skip
    assert result.returncode != 0
    assert "codec" in result.stderr or "source" in result.stderr
