"""The rendered chart against the real kube-apiserver: kubeconform (strict, with
schemas from that server), ``kubectl apply --dry-run=server``, and RBAC checked
with ``kubectl auth can-i`` as the chart's ServiceAccounts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART, COMBINATIONS, template_text
from tests.fixtures.servers import KubeCluster
from tests.fixtures.util import require

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RULES = yaml.safe_load((CHART / "files" / "operator-clusterrole.yaml").read_text())["rules"]


def ensure_namespace(kube: KubeCluster, name: str) -> None:
    """A namespace with its ``default`` ServiceAccount.

    The fixture runs no controller-manager, whose job it is to create that
    account; bare Pods (the bucket Job's, the test hook) are refused without it.
    """
    if kube.kubectl("get", "namespace", name, check=False).returncode != 0:
        kube.kubectl("create", "namespace", name)
        kube.kubectl("create", "serviceaccount", "default", "-n", name)


@pytest.mark.parametrize("combination", sorted(COMBINATIONS))
def test_kubeconform_strict_accepts_the_rendered_chart(
    combination: str, schema_location: str, tmp_path: Path
) -> None:
    text = template_text(COMBINATIONS[combination], tmp=tmp_path, extra=("--include-crds",)).stdout
    result = subprocess.run(
        [require("kubeconform"), "-strict", "-summary", "-output", "json",
         "-schema-location", schema_location, "-"],
        input=text, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    report: dict[str, Any] = json.loads(result.stdout)
    problems = [r for r in report["resources"] if r["status"] != "statusValid"]
    assert result.returncode == 0, json.dumps(problems, indent=1)
    assert report["summary"]["valid"] >= 15
    assert report["summary"]["skipped"] == 0


def test_kubeconform_strict_catches_a_misspelt_field(schema_location: str) -> None:
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i", "resurces": {}}]},
            },
        },
    }
    result = subprocess.run(
        [require("kubeconform"), "-strict", "-schema-location", schema_location, "-"],
        input=json.dumps(bad), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "resurces" in result.stdout


@pytest.mark.parametrize("combination", sorted(COMBINATIONS))
def test_the_api_server_accepts_the_rendered_chart_in_a_dry_run(
    combination: str, kube: KubeCluster, crds_installed: list[str], tmp_path: Path
) -> None:
    namespace = f"dry-{combination}"
    ensure_namespace(kube, namespace)
    text = template_text(COMBINATIONS[combination], namespace=namespace, tmp=tmp_path).stdout
    result = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=text, check=False)
    assert result.returncode == 0, result.stderr
    assert "created (server dry run)" in result.stdout


# --------------------------------------------------------------------------- RBAC


@pytest.fixture(scope="module")
def installed(
    kube: KubeCluster, crds_installed: list[str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The chart applied for real twice: cluster-wide RBAC and namespaced RBAC."""
    tmp = tmp_path_factory.mktemp("rbac")
    namespaces = {"cluster": "rbac-cluster", "namespaced": "rbac-namespaced"}
    for mode, namespace in namespaces.items():
        ensure_namespace(kube, namespace)
        values = COMBINATIONS["namespaced-rbac" if mode == "namespaced" else "default"]
        text = template_text(values, namespace=namespace, tmp=tmp).stdout
        kube.kubectl("apply", "-f", "-", input=text)
    ensure_namespace(kube, "other-app")
    return namespaces


def can_i(kube: KubeCluster, namespace: str, sa: str, *args: str) -> bool:
    result = kube.kubectl(
        "auth", "can-i", *args, as_user=f"system:serviceaccount:{namespace}:{sa}", check=False
    )
    return result.stdout.strip() == "yes"


def rule_checks() -> list[tuple[str, ...]]:
    """One ``can-i`` argument list per (verb, resource) the operator's rules grant."""
    checks = []
    for rule in RULES:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                name, _, sub = resource.partition("/")
                target = f"{name}.{group}" if group else name
                for verb in rule["verbs"]:
                    extra = (f"--subresource={sub}",) if sub else ()
                    checks.append((verb, target, *extra))
    return checks


@pytest.mark.parametrize("mode", ["cluster", "namespaced"])
def test_operator_may_do_what_its_code_does(
    kube: KubeCluster, installed: dict[str, str], mode: str
) -> None:
    ns = installed[mode]
    cluster_scoped = {"customresourcedefinitions.apiextensions.k8s.io", "namespaces",
                      "clusterkopfpeerings.kopf.dev"}  # fmt: skip
    for check in rule_checks():
        if mode == "namespaced" and check[1] in cluster_scoped:
            continue
        assert can_i(kube, ns, "vod-kubevod-operator", *check, "-n", ns), (mode, check)
    # The chunk workers' Deployment (kube.apply_deployment, delete_deployment, owner_reference).
    for verb in ("get", "create", "update", "delete"):
        assert can_i(kube, ns, "vod-kubevod-operator", verb, "deployments.apps", "-n", ns), verb


@pytest.mark.parametrize("mode", ["cluster", "namespaced"])
def test_operator_is_refused_everything_else(
    kube: KubeCluster, installed: dict[str, str], mode: str
) -> None:
    ns = installed[mode]
    refused = [
        ("get", "secrets", "-n", "other-app"),
        ("list", "secrets", "-n", ns),
        ("get", "secrets", "-n", "kube-system"),
        ("create", "pods", "--subresource=exec", "-n", ns),
        ("create", "pods", "-n", ns),
        ("get", "pods", "--subresource=log", "-n", "other-app"),
        ("delete", "namespaces", "other-app"),
        ("create", "clusterrolebindings"),
        ("escalate", "clusterroles"),
        ("bind", "roles", "-n", ns),
        # The chunk workers' Deployment: in the release namespace only.
        ("create", "deployments.apps", "-n", "other-app"),
        ("delete", "deployments.apps", "-n", "kube-system"),
        ("patch", "deployments.apps", "-n", ns),
        ("update", "nodes"),
        ("*", "*"),
        ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
        ("impersonate", "serviceaccounts", "-n", ns),
        ("create", "serviceaccounts/token", "-n", ns),
    ]
    if mode == "namespaced":
        refused += [("create", "jobs.batch", "-n", "other-app"),
                    ("list", "videoassets.kubevod.io", "-n", "other-app")]  # fmt: skip
    for check in refused:
        assert not can_i(kube, ns, "vod-kubevod-operator", *check), (mode, check)


def test_api_worker_cache_and_store_accounts_have_no_kubernetes_rights(
    kube: KubeCluster, installed: dict[str, str]
) -> None:
    ns = installed["cluster"]
    for sa in ("vod-kubevod-api", "vod-kubevod-worker", "vod-kubevod-cache",
               "vod-kubevod-minio", "vod-kubevod-mongodb"):  # fmt: skip
        for check in (("list", "videoassets.kubevod.io"), ("get", "secrets"),
                      ("list", "pods"), ("create", "jobs.batch")):  # fmt: skip
            assert not can_i(kube, ns, sa, *check, "-n", ns), (sa, check)


# --------------------------------------------------------------------------- helm install / upgrade


def test_generated_credentials_survive_helm_upgrade(
    kube: KubeCluster, crds_installed: list[str]
) -> None:
    """Real ``helm install`` then ``helm upgrade`` against the API server.

    Hooks are skipped (``--no-hooks``): the bucket Job would wait for a
    controller-manager the test cluster does not run.
    """
    from tests.chart.helm import CHART, helm

    namespace = "upgrade"
    ensure_namespace(kube, namespace)
    common = ("--namespace", namespace, "--kubeconfig", str(kube.kubeconfig), "--no-hooks")

    def secrets() -> dict[str, dict[str, str]]:
        out = {}
        for name in ("kubevod-minio", "kubevod-mongodb", "kubevod-connections",
                     "kubevod-api-token"):  # fmt: skip
            got = kube.kubectl("get", "secret", name, "-n", namespace, "-o", "json")
            out[name] = json.loads(got.stdout)["data"]
        return out

    helm("install", "kubevod", str(CHART), *common)
    before = secrets()
    helm("upgrade", "kubevod", str(CHART), *common, "--set", "api.replicas=3")
    assert secrets() == before
    helm("uninstall", "kubevod", "--namespace", namespace, "--kubeconfig", str(kube.kubeconfig))
    kept = kube.kubectl("get", "secret", "kubevod-minio", "-n", namespace, check=False)
    assert kept.returncode == 0, "helm.sh/resource-policy: keep must keep the credentials"
    assert kube.kubectl("get", "secret", "kubevod-connections", "-n", namespace,
                        check=False).returncode != 0  # fmt: skip
