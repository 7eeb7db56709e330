"""The chart's observability wiring: downward-API env, the operator's metrics port and
PodMonitor, and the Grafana dashboard ConfigMap for the sidecar.

Everything here runs the real helm binary; nothing needs a cluster.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chart.helm import CHART, container_env, documents, find, template_text

pytestmark = pytest.mark.integration

MONITORS = ("--api-versions", "monitoring.coreos.com/v1/ServiceMonitor",
            "--api-versions", "monitoring.coreos.com/v1/PodMonitor")  # fmt: skip


def test_api_and_operator_know_their_pod_node_and_namespace(tmp_path: Path) -> None:
    docs = documents(template_text({}, tmp=tmp_path).stdout)
    for name in ("-api", "-operator"):
        env = container_env(find(docs, "Deployment", name))
        assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}, name
        assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}, name
        assert env["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}, name


def test_operator_metrics_are_served_and_scraped_by_a_pod_monitor(tmp_path: Path) -> None:
    docs = documents(template_text({}, tmp=tmp_path, extra=MONITORS).stdout)
    operator = find(docs, "Deployment", "-operator")
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert container_env(operator)["KUBEVOD_METRICS_PORT"] == "9090"
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    monitor = find(docs, "PodMonitor", "-operator")
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    labels = operator["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    without = documents(template_text({}, tmp=tmp_path).stdout)
    assert not [d for d in without if d["kind"] == "PodMonitor"]


def test_dashboard_configmap_for_the_grafana_sidecar_only_when_asked(tmp_path: Path) -> None:
    default = documents(template_text({}, tmp=tmp_path).stdout)
    assert not [
        d for d in default if d["kind"] == "ConfigMap" and "-dashboards" in d["metadata"]["name"]
    ]
    values = {
        "grafana": {"dashboards": {"enabled": True, "namespace": "monitoring", "folder": "kubevod"}}
    }
    docs = documents(template_text(values, tmp=tmp_path).stdout)
    config = find(docs, "ConfigMap", "-dashboards")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config["metadata"]["namespace"] == "monitoring"
    assert config["metadata"]["annotations"]["grafana_folder"] == "kubevod"
    shipped = json.loads(config["data"]["kubevod-overview.json"])
    assert shipped == json.loads((CHART / "dashboards" / "kubevod-overview.json").read_text())
