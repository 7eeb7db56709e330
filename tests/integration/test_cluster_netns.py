"""The test cluster's network namespace for real: sealed before anything starts."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.cluster import host, netns

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def test_a_new_namespace_has_no_route_off_the_machine_and_leaves_nothing_behind() -> None:
    name = f"kv-proof-{uuid.uuid4().hex[:6]}"
    before = host.snapshot()
    netns.create(name)
    try:
        assert netns.proof_failures(*netns.inspect(name)) == []
        with pytest.raises(RuntimeError, match="already exists"):
            netns.create(name)
    finally:
        netns.delete(name)
    assert host.differences(before, host.snapshot()) == []


def test_the_proof_catches_a_namespace_with_a_way_out() -> None:
    name = f"kv-proof-{uuid.uuid4().hex[:6]}"
    netns.create(name)
    try:
        netns.in_ns(name, "ip", "route", "add", "10.0.0.0/8", "dev", "lo")
        netns.in_ns(name, "ip", "route", "add", "default", "dev", "lo")
        problems = netns.proof_failures(*netns.inspect(name))
        routed = [p for p in problems if p.startswith("route to")]
        assert any("10.96.0.1" in p for p in routed)
        assert any("8.8.8.8" in p for p in routed)
        assert any(p.startswith("non-local route: default") for p in problems)
    finally:
        netns.delete(name)


def test_the_host_fence_is_added_and_removed_without_a_trace() -> None:
    before = host.snapshot()
    netns.fence_up("KV-FENCE-selftest")
    try:
        rules = netns.run(["iptables", "-S", "OUTPUT"]).stdout
        assert "-j KV-FENCE-selftest" in rules
        assert netns.fence_counters("KV-FENCE-selftest") == 0
    finally:
        netns.fence_down("KV-FENCE-selftest")
    assert host.differences(before, host.snapshot()) == []
