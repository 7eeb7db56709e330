"""Render the chart with the real helm for the value combinations users install."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.util import require

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubevod"
KUBE_VERSION = "1.32.0"
DIGEST = "sha256:" + "ab" * 32

#: name -> values; each is rendered, validated by kubeconform and dry-run applied.
COMBINATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "external-s3-and-mongo": {
        "minio": {"enabled": False},
        "externalS3": {
            "endpoint": "s3.example.com:443",
            "bucket": "videos-prod",
            "accessKey": "AKIAEXAMPLE",
            "secretKey": "secret/with+chars",
            "publicRead": True,
        },
        "mongodb": {"enabled": False},
        "externalMongo": {"uri": "mongodb://db.example.com:27017/kubevod"},
    },
    "external-existing-secrets": {
        "minio": {"enabled": False},
        "mongodb": {"enabled": False},
        "connections": {"existingSecret": "my-connections"},
        "api": {"apiToken": {"existingSecret": "my-token"}},
    },
    "gpu": {
        "worker": {
            "gpu": {
                "defaultVendor": "intel",
                "nvidia": {
                    "runtimeClassName": "nvidia-experimental",
                    "nodeSelector": {"gpu": "rtx", "nvidia.com/gpu.present": None},
                    "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                },
                "intel": {"renderGroup": 105},
            }
        }
    },
    "signed-urls": {
        "cache": {"signedUrls": {"enabled": True}},
        "networkPolicy": {"enabled": False},
    },
    "ha": {
        "operator": {"replicas": 2},
        "api": {"autoscaling": {"enabled": False}, "replicas": 3},
        "cache": {"replicas": 2, "persistence": {"enabled": True, "size": "20Gi"}},
    },
    "namespaced-rbac": {"operator": {"rbac": {"namespaced": True}}},
    "tls-telemetry-pinned": {
        "ingress": {
            "className": "traefik",
            "tls": {"enabled": True, "clusterIssuer": "letsencrypt"},
        },
        "telemetry": {"collector": {"enabled": True}},
        "cache": {
            "tls": {"enabled": True, "secretName": "kubevod-tls"},
            "metrics": {"enabled": True},
            "image": {"digest": DIGEST},
        },
        "operator": {"image": {"digest": DIGEST}},
        "api": {"image": {"digest": DIGEST}},
        "worker": {"image": {"digest": DIGEST}},
    },
}


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real helm binary."""
    result = subprocess.run(
        [require("helm"), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result


def template_text(
    values: Mapping[str, Any],
    *,
    namespace: str = "kubevod",
    release: str = "vod",
    extra: Sequence[str] = (),
    tmp: Path,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``helm template`` with ``values`` written to a file, as a user would pass -f."""
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
    values_file = tmp / f"values-{digest}.yaml"
    values_file.write_text(yaml.safe_dump(dict(values)))
    return helm(
        "template", release, str(CHART), "--namespace", namespace,
        "--kube-version", KUBE_VERSION, "-f", str(values_file), *extra,
        check=check,
    )  # fmt: skip


def documents(text: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a rendered chart."""
    return [d for d in yaml.safe_load_all(text) if d]


def pod_specs(docs: Sequence[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(kind/name, pod spec)`` of every workload and bare Pod."""
    for d in docs:
        name = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
            yield name, d["spec"]["template"]["spec"]
        elif d["kind"] == "Pod":
            yield name, d["spec"]


def find(docs: Sequence[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    """The one document of ``kind`` whose name ends with ``suffix``."""
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"{kind} *{suffix}: {[d['metadata']['name'] for d in found]}"
    return found[0]


def container_env(workload: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """Env of a workload's container: name -> value (or the valueFrom mapping)."""
    container = workload["spec"]["template"]["spec"]["containers"][index]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
