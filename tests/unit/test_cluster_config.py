"""The test cluster's pure builders: configs, the no-route proof, the host fence, host diffs."""

from __future__ import annotations

import ipaddress
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.cluster import addons, config, host, layout, netns
from tests.cluster.layout import Layout

LAY = Layout(Path("/srv/kv-state"))


def _paths(value: object) -> list[str]:
    if isinstance(value, dict):
        return [p for v in value.values() for p in _paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in _paths(v)]
    return [value] if isinstance(value, str) and value.startswith("/") else []


def test_containerd_keeps_all_state_under_the_cluster_folder() -> None:
    conf = tomllib.loads(config.containerd_toml(LAY))
    cri = conf["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == config.PAUSE_IMAGE
    assert cri["cni"]["bin_dir"] == "/usr/lib/cni"
    runtimes = cri["containerd"]["runtimes"]
    assert runtimes["runc"]["options"]["SystemdCgroup"] is False
    # The handler of the chart's GPU RuntimeClass exists on the node.
    assert {rc["handler"] for rc in addons.gpu_runtime()} <= set(runtimes)
    written = [p for p in _paths(conf) if p != "/usr/lib/cni"]
    assert written and all(p.startswith("/srv/kv-state/") for p in written), written


def test_kubelet_and_proxy_write_under_the_cluster_folder_and_use_the_node_address() -> None:
    kubelet = config.kubelet_config(LAY)
    proxy = config.kube_proxy_config(LAY)
    for p in _paths(kubelet) + _paths(proxy):
        assert p.startswith("/srv/kv-state/"), p
    assert kubelet["address"] == proxy["bindAddress"] == layout.NODE_IP
    assert kubelet["cgroupDriver"] == "cgroupfs"
    assert kubelet["clusterDNS"] == [layout.DNS_SERVICE_IP]
    assert kubelet["authentication"]["anonymous"]["enabled"] is False
    assert all(v in (0, "0s") for v in proxy["conntrack"].values())


def test_cluster_ranges_are_disjoint_and_hold_their_fixed_addresses() -> None:
    node = ipaddress.ip_network(layout.NODE_IP + "/32")
    pods = ipaddress.ip_network(layout.POD_CIDR)
    services = ipaddress.ip_network(layout.SERVICE_CIDR)
    for a, b in ((node, pods), (node, services), (pods, services)):
        assert not a.overlaps(b)
    assert ipaddress.ip_address(layout.KUBERNETES_SERVICE_IP) in services
    assert ipaddress.ip_address(layout.DNS_SERVICE_IP) in services
    assert ipaddress.ip_address(layout.POD_GATEWAY) in pods
    bridge = config.cni_conflist(LAY)["plugins"][0]
    assert bridge["ipam"]["ranges"] == [
        [{"subnet": layout.POD_CIDR, "gateway": layout.POD_GATEWAY}]
    ]


def test_cluster_ranges_are_not_the_uplinks_subnets() -> None:
    out = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    subnets = [
        ipaddress.ip_interface(line.split()[3]).network
        for line in out.splitlines()
        if line.split()[1] != "lo"
    ]
    for cidr in (layout.NODE_IP + "/32", layout.POD_CIDR, layout.SERVICE_CIDR):
        for subnet in subnets:
            assert not ipaddress.ip_network(cidr).overlaps(subnet), (cidr, subnet)


def _check(address: str, rc: int) -> netns.RouteCheck:
    return netns.RouteCheck(address, 4, rc, "out" if rc == 0 else "RTNETLINK answers: unreachable")


@pytest.mark.parametrize(
    ("checks", "links", "routes", "problems"),
    [
        ([_check("10.96.0.1", 2), _check("8.8.8.8", 2)], ["lo"], [], 0),
        ([_check("10.96.0.1", 0), _check("8.8.8.8", 2)], ["lo"], [], 1),
        ([_check("10.96.0.1", 0), _check("8.8.8.8", 0)], ["lo"], [], 2),
        ([_check("8.8.8.8", 2)], ["lo", "veth0"], [], 1),
        ([_check("8.8.8.8", 2)], ["lo"], ["default via 192.0.2.1 dev eth0"], 1),
        ([], [], [], 1),
    ],
)
def test_no_route_proof_names_every_way_out(
    checks: list[netns.RouteCheck], links: list[str], routes: list[str], problems: int
) -> None:
    found = netns.proof_failures(checks, links, routes)
    assert len(found) == problems, found


def test_the_proof_covers_service_private_metadata_and_public_addresses_v4_and_v6() -> None:
    v4 = [ipaddress.ip_address(a) for a in layout.MUST_NOT_ROUTE_V4]
    assert any(a in ipaddress.ip_network(layout.SERVICE_CIDR) for a in v4)
    for private in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"):
        assert any(a in ipaddress.ip_network(private) for a in v4), private
    assert ipaddress.ip_address("169.254.169.254") in v4
    assert any(a.is_global for a in v4)
    v6 = [ipaddress.ip_address(a) for a in layout.MUST_NOT_ROUTE_V6]
    assert any(a.is_global for a in v6) and any(a.is_private for a in v6)


def test_fence_drops_each_cluster_range_both_ways_on_every_uplink() -> None:
    rules = netns.fence_rules(LAY.fence_chain, ["eth0", "wlan0"])
    assert len(rules) == 2 * len(layout.FENCED_RANGES) * 2
    for dev in ("eth0", "wlan0"):
        for cidr in layout.FENCED_RANGES:
            for flag in ("-d", "-s"):
                assert ["-A", LAY.fence_chain, "-o", dev, flag, cidr, "-j", "DROP"] in rules


def test_each_cluster_has_its_own_fence_chain_within_iptables_limits() -> None:
    names = {Layout(Path("/s"), n).fence_chain for n in ("kubevod-test", "kubevod-test-123456")}
    assert len(names) == 2 and all(len(n) <= 28 for n in names)


def test_host_differences_name_what_was_added_and_removed() -> None:
    before = {"links": ["lo", "eth0"], "sysctls": {"kernel.panic": "0"}, "mounts": ["/"]}
    after = {"links": ["lo", "eth0", "cni0"], "sysctls": {"kernel.panic": "10"}, "mounts": ["/"]}
    lines = host.differences(before, after)
    assert len(lines) == 2
    assert "cni0" in lines[0] and "added" in lines[0]
    assert "'0'" in lines[1] and "'10'" in lines[1]
    assert host.differences(before, dict(before)) == []


def test_static_volumes_are_default_class_and_under_the_cluster_folder() -> None:
    docs = addons.storage(LAY)
    sc = docs[0]
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    pvs = docs[1:]
    assert len(pvs) == addons.PERSISTENT_VOLUMES
    for pv in pvs:
        assert pv["spec"]["storageClassName"] == sc["metadata"]["name"]
        assert pv["spec"]["hostPath"]["path"].startswith("/srv/kv-state/volumes/")


def test_coredns_never_resolves_outside_the_cluster() -> None:
    corefile = next(d for d in addons.coredns() if d["kind"] == "ConfigMap")["data"]["Corefile"]
    assert "forward" not in corefile
    assert f"kubernetes {layout.CLUSTER_DOMAIN}" in corefile


def _service(*ports: tuple[str, int]) -> dict[str, object]:
    return {
        "metadata": {"name": "web"},
        "spec": {"ports": [{"name": n, "port": p} for n, p in ports]},
    }


def _slice(name: str, target: int, *endpoints: tuple[str, bool]) -> dict[str, object]:
    return {
        "ports": [{"name": name, "port": target}],
        "endpoints": [{"addresses": [a], "conditions": {"ready": r}} for a, r in endpoints],
    }


def test_a_service_is_forwarded_to_a_ready_pod_of_the_right_port() -> None:
    from tests.cluster.cluster import ready_endpoint

    svc = _service(("http", 80), ("metrics", 9113))
    slices = {
        "items": [
            _slice("http", 8080, ("10.88.0.5", False), ("10.88.0.6", True)),
            _slice("metrics", 9113, ("10.88.0.7", True)),
        ]
    }
    assert ready_endpoint(svc, slices, 80) == ("10.88.0.6", 8080)
    assert ready_endpoint(svc, slices, 9113) == ("10.88.0.7", 9113)
    with pytest.raises(LookupError, match="no port 443"):
        ready_endpoint(svc, slices, 443)
    with pytest.raises(LookupError, match="no ready endpoint"):
        ready_endpoint(svc, {"items": [_slice("http", 8080, ("10.88.0.5", False))]}, 80)
