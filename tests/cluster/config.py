"""Pure builders of the cluster's configuration files (no I/O, no environment).

containerd, kubelet, kube-proxy, the CNI bridge and kubeconfigs, each from the
Layout, tested directly in tests/unit/test_cluster_config.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cluster import images, layout
from tests.cluster.layout import Layout

PAUSE_IMAGE = images.image("pause").reference


def containerd_toml(lay: Layout, root: Path | None = None) -> str:
    """containerd's config: all state under the cluster's folder, CNI from Debian.

    ``root`` (content and snapshots) may be a store kept across clusters, so
    images imported once are not unpacked again; the default is under state.

    ``restrict_oom_score_adj``: this machine lacks CAP_SYS_RESOURCE, and without
    it every sandbox fails with "can't get final child's PID from pipe: EOF".
    """
    c = lay.containerd
    return f"""version = 2
root = "{root or c / "root"}"
state = "{c / "state"}"
oom_score = 0

[grpc]
  address = "{lay.containerd_socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  tolerate_missing_hugetlb_controller = true
  disable_hugetlb_controller = true

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{lay.cni_conf_dir}"
    max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    disable_snapshot_annotations = true

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{c / "runc"}"
        SystemdCgroup = false

    # The handler of the chart's GPU RuntimeClass: plain runc here (no GPU on
    # this machine); on a real GPU node it is the NVIDIA container runtime.
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]
        Root = "{c / "runc"}"
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{c / "opt"}"
"""


def cni_conflist(lay: Layout) -> dict[str, Any]:
    """The bridge network of the pods, inside the namespace."""
    return {
        "cniVersion": "1.0.0",
        "name": "kubevod-test-pods",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": layout.POD_CIDR, "gateway": layout.POD_GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(lay.cni_ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(lay: Layout) -> dict[str, Any]:
    """KubeletConfiguration: cgroupfs, state under the cluster's folder, webhook auth."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{lay.containerd_socket}",
        "podLogsDir": str(lay.pod_logs),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(lay.pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "address": layout.NODE_IP,
        "port": layout.KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "clusterDomain": layout.CLUSTER_DOMAIN,
        "clusterDNS": [layout.DNS_SERVICE_IP],
        "registerNode": True,
        "serializeImagePulls": False,
        # No image is ever pulled; nothing may be garbage-collected mid-test either.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "200Mi",
            "nodefs.available": "2%",
            "imagefs.available": "2%",
        },
        "maxPods": 60,
        "resolvConf": str(lay.state / "resolv.conf"),
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "nodeStatusUpdateFrequency": "5s",
        "shutdownGracePeriod": "0s",
    }


def kube_proxy_config(lay: Layout) -> dict[str, Any]:
    """kube-proxy in iptables mode; conntrack settings zeroed (no host sysctl writes)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(lay.pki / "proxy.kubeconfig")},
        "hostnameOverride": layout.NODE_NAME,
        "clusterCIDR": layout.POD_CIDR,
        "bindAddress": layout.NODE_IP,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": ["primary"],
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
            "udpTimeout": "0s",
            "udpStreamTimeout": "0s",
        },
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False},
    }


def kubeconfig(server: str, ca: Path, token: str, user: str, namespace: str = "default") -> str:
    """A kubeconfig that authenticates with a bearer token."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kubevod-test",
                    "cluster": {"server": server, "certificate-authority": str(ca)},
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {
                    "name": "kubevod-test",
                    "context": {"cluster": "kubevod-test", "user": user, "namespace": namespace},
                }
            ],
            "current-context": "kubevod-test",
        },
        indent=2,
    )


def api_server_url(host: str = layout.NODE_IP, port: int = layout.API_PORT) -> str:
    return f"https://{host}:{port}"
