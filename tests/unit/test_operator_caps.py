"""Tenant caps, the outcome table and the unschedulable pod reading (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from kubevod.operator import errors
from kubevod.operator.limits import problems, quantity
from kubevod.operator.resource import VideoAssetSpec
from kubevod.operator.settings import LimitSettings, OperatorSettings
from kubevod.operator.status import PodScheduling

from kubevod.errors import Unavailable

SOURCE = {"url": "https://media.example/a.mp4"}


def spec(**fields: Any) -> VideoAssetSpec:
    return VideoAssetSpec.model_validate({"source": SOURCE, **fields})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, []),
        ({"priority": 100}, []),
        ({"priority": 101}, ["spec.priority: 101 is above the cap of 100 in namespace 'm'"]),
        ({"resources": {"requests": {"cpu": "4000m"}}}, []),
        (
            {"resources": {"requests": {"cpu": "4001m"}}},
            ["spec.resources.requests.cpu: 4001m is above the cap of 4 in namespace 'm'"],
        ),
        (
            {"resources": {"limits": {"cpu": 5, "memory": "9Gi"}}},
            [
                "spec.resources.limits.cpu: 5 is above the cap of 4 in namespace 'm'",
                "spec.resources.limits.memory: 9Gi is above the cap of 8Gi in namespace 'm'",
            ],
        ),
        ({"resources": {"requests": {"memory": "8589934592"}}}, []),  # exactly 8Gi in bytes
        (
            {"resources": {"requests": {"memory": "lots"}}},
            ["spec.resources.requests.memory: 'lots' is not a Kubernetes quantity"],
        ),
    ],
)
def test_specs_are_checked_against_the_default_caps(
    fields: dict[str, Any], expected: list[str]
) -> None:
    assert problems(spec(**fields), "m", LimitSettings().for_namespace("m")) == expected


def test_a_namespace_override_replaces_only_the_caps_it_names() -> None:
    limits = LimitSettings.model_validate(
        {"max_priority": 10, "namespaces": {"family": {"maxPriority": 1000, "maxCpu": "8"}}}
    )
    family, other = limits.for_namespace("family"), limits.for_namespace("other")
    assert (family.max_priority, family.max_cpu, family.max_memory) == (1000, "8", "8Gi")
    assert (other.max_priority, other.max_cpu) == (10, "4")
    assert problems(spec(priority=999, resources={"limits": {"cpu": "8"}}), "family", family) == []


def test_caps_come_from_the_environment_as_the_chart_writes_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBEVOD_LIMITS__MAX_PRIORITY", "50")
    monkeypatch.setenv("KUBEVOD_LIMITS__MAX_CPU", "2")
    monkeypatch.setenv("KUBEVOD_LIMITS__MAX_MEMORY", "4Gi")
    monkeypatch.setenv("KUBEVOD_LIMITS__NAMESPACES", '{"vip": {"maxPriority": 1000}}')
    monkeypatch.setenv("KUBEVOD_TIMING__UNSCHEDULABLE_SECONDS", "600")
    settings = OperatorSettings()
    assert settings.limits.for_namespace("vip").max_priority == 1000
    assert settings.limits.for_namespace("x").max_memory == "4Gi"
    assert settings.timing.unschedulable_seconds == 600


def test_quantities_parse_as_kubernetes_does() -> None:
    assert quantity("500m") * 2 == quantity("1")
    assert quantity("1Gi") == 1024**3
    assert quantity("1G") == 10**9
    with pytest.raises(ValueError):
        quantity("12 apples")


@pytest.mark.parametrize(
    ("exc", "kind", "reason"),
    [
        (errors.OverLimit(["x"]), "permanent", "OverLimit"),
        (errors.InvalidSpec(["x"]), "permanent", "InvalidSpec"),
        (errors.Rejected(422, "invalid"), "permanent", "Rejected"),
        (errors.Unschedulable("no node"), "permanent", "Unschedulable"),
        (Unavailable("down"), "temporary", "Unavailable"),
    ],
)
def test_each_error_has_one_outcome(exc: Exception, kind: str, reason: str) -> None:
    found = errors.outcome(exc)
    assert found is not None and (found.kind, found.reason) == (kind, reason)


def test_an_unknown_error_has_no_outcome_so_kopf_retries_it() -> None:
    assert errors.outcome(RuntimeError("bug")) is None


def test_an_unschedulable_pod_is_read_from_its_scheduler_condition() -> None:
    pod = {
        "metadata": {"name": "job-abc"},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "lastTransitionTime": "2026-01-01T10:00:00Z",
                    "message": "0/1 nodes are available: 1 Insufficient cpu.",
                }
            ],
        },
    }
    found = PodScheduling.from_pod(pod)
    assert found is not None
    assert found.message == "0/1 nodes are available: 1 Insufficient cpu."
    assert found.seconds("2026-01-01T10:15:30Z") == 930
    scheduled = {"status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}}
    assert PodScheduling.from_pod(scheduled) is None
    gated = {"status": {"conditions": [{"type": "PodScheduled", "status": "False",
                                        "reason": "SchedulingGated"}]}}  # fmt: skip
    assert PodScheduling.from_pod(gated) is None
