"""The Grafana dashboard in the chart queries only metrics that kubevod really exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kubevod.metrics import OperatorMetrics, WorkerMetrics
from kubevod.nginx_exporter import CacheStats, NginxCollector
from tests.fixtures.util import ROOT

DASHBOARD = ROOT / "charts" / "kubevod" / "dashboards" / "kubevod-overview.json"


def exposed_families() -> set[str]:
    registry = CollectorRegistry()
    OperatorMetrics(registry)
    WorkerMetrics(registry)
    registry.register(NginxCollector(CacheStats()))
    names = {family.name for family in registry.collect()}
    try:
        from kubevod.api.metrics import Metrics
    except ImportError:
        pytest.skip("the API is not importable here")
    names |= {family.name for family in Metrics().registry.collect()}
    return names


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_is_valid_grafana_json_with_the_issue_panels() -> None:
    dashboard = json.loads(Path(DASHBOARD).read_text())
    assert dashboard["uid"] == "kubevod-overview"
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for wanted in ("startup", "rebuffer", "cache hit ratio", "queue", "speed"):
        assert wanted in titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_every_queried_metric_is_exposed_by_kubevod() -> None:
    dashboard = json.loads(Path(DASHBOARD).read_text())
    families = exposed_families()
    referenced = set()
    for expr in queries(dashboard):
        for name in re.findall(r"\bkubevod_[a-z0-9_]+", expr):
            referenced.add(re.sub(r"_(bucket|sum|count|total)$", "", name))
    assert referenced, "the dashboard queries kubevod metrics"
    assert not referenced - families, f"unknown metrics: {sorted(referenced - families)}"
