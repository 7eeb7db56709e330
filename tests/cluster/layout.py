"""Every address, port, name and path of the test cluster, derived in one place.

The whole cluster lives in a network namespace of its own (see netns.py) with
only ``lo`` and no route off the machine. The node's address is a /32 on that
``lo``; pods get addresses from a bridge inside the namespace. None of these
ranges is the uplink's subnet, and none is reachable from the host.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: The node's address inside the namespace (a /32 on its ``lo``).
NODE_IP = "10.87.0.2"
NODE_NAME = "kubevod-node"
POD_CIDR = "10.88.0.0/16"
POD_GATEWAY = "10.88.0.1"
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
API_PORT = 16443
ETCD_PORT = 12379
ETCD_PEER_PORT = 12380
KUBELET_PORT = 10250
#: The node's fake GPU capacity (the GPU path is tested without a GPU).
FAKE_GPU_RESOURCE = "nvidia.com/gpu"

#: Ranges that must stay unreachable from the namespace before anything starts:
#: the Service range, private ranges, the uplink's kind of address, public
#: addresses, IPv4 and IPv6. ``ip route get`` must fail for every one.
MUST_NOT_ROUTE_V4 = (
    KUBERNETES_SERVICE_IP,
    "10.1.2.3",
    "10.255.255.53",
    "172.16.0.1",
    "192.168.0.1",
    "192.0.2.1",
    "100.64.0.1",
    "169.254.169.254",
    "1.1.1.1",
    "8.8.8.8",
)
MUST_NOT_ROUTE_V6 = ("2606:4700:4700::1111", "fd00::1", "fe80::1")

#: Host-side fence (Layout.fence_chain): the cluster's ranges are dropped on the way out,
#: should anything ever route it to the host (a second fence; the namespace has
#: no link to the host at all).
FENCED_RANGES = (NODE_IP + "/32", POD_CIDR, SERVICE_CIDR)

#: kubelet changes these host-wide sysctls; teardown restores them.
KUBELET_SYSCTLS = ("vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops")


def testenv_root() -> Path:
    """The test environment's cache folder (binaries and image archives)."""
    return Path(os.environ.get("KUBEVOD_TESTENV", Path.home() / ".cache/kubevod/testenv"))


@dataclass(frozen=True)
class Layout:
    """Paths of one cluster's state; everything it writes is under ``state``."""

    state: Path
    netns: str = "kubevod-test"

    @property
    def fence_chain(self) -> str:
        """The host iptables chain of this cluster's fence (28 characters at most)."""
        return ("KV-FENCE-" + self.netns.removeprefix("kubevod-"))[:28]

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def containerd(self) -> Path:
        return self.state / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.state / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.state / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.state / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.state / "kubelet-podlogs"

    @property
    def etcd_data(self) -> Path:
        return self.state / "etcd"

    @property
    def volumes(self) -> Path:
        """hostPath PersistentVolumes (there is no dynamic provisioner)."""
        return self.state / "volumes"

    @property
    def admin_kubeconfig(self) -> Path:
        """The admin kubeconfig as seen from inside the namespace (node address)."""
        return self.pki / "admin.kubeconfig"

    @property
    def host_kubeconfig(self) -> Path:
        """The admin kubeconfig for host clients (the forwarder on 127.0.0.1)."""
        return self.state / "kubeconfig"

    @property
    def baseline(self) -> Path:
        """The host's state before the cluster started (host.py)."""
        return self.state / "host-baseline.json"

    def pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"
