"""What a k3s node brings and this bare one lacks: DNS, metrics, storage, a GPU runtime.

Pure manifest builders; cluster.py applies them after the node is Ready.
CoreDNS answers cluster names only (no ``forward``: nothing outside the
cluster is ever resolved). Storage is a default StorageClass with static
hostPath PersistentVolumes under the cluster's state folder (k3s would bring
its local-path provisioner). The GPU path runs without a GPU: a RuntimeClass
``nvidia`` whose handler is plain runc on this node, and a fake
``nvidia.com/gpu`` capacity (cluster.py patches the node's status).
"""

from __future__ import annotations

from typing import Any

from tests.cluster import images, layout
from tests.cluster.layout import Layout

COREDNS_IMAGE = images.image("coredns").reference
METRICS_SERVER_IMAGE = images.image("metrics-server").reference
KUBE_ROUTER_IMAGE = images.image("kube-router").reference
STORAGE_CLASS = "kubevod-test-local"
PERSISTENT_VOLUMES = 8
#: GPU feature discovery would set the first; the chart's GPU node selector uses it.
NODE_LABELS = "nvidia.com/gpu.present=true,kubevod.io/test-node=true"
#: What must have rolled out before the cluster is ready: namespace/kind/name.
WORKLOADS = (
    "kube-system/deploy/coredns",
    "kube-system/deploy/metrics-server",
    "kube-system/ds/kube-router",
)


def _meta(name: str, namespace: str | None = "kube-system", **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    return meta


def _restricted() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def deployment(
    name: str, labels: dict[str, str], pod: dict[str, Any], namespace: str | None = "kube-system"
) -> dict[str, Any]:
    """A one-replica Deployment of ``pod`` (a pod spec), selected by ``labels``."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, **labels),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def coredns() -> list[dict[str, Any]]:
    corefile = f"""\
.:53 {{
    errors
    health :8080
    ready :8181
    kubernetes {layout.CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
    loop
    reload
}}
"""
    labels = {"k8s-app": "kube-dns"}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("coredns")},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta("system:coredns", None),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta("system:coredns", None),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("coredns"),
            "data": {"Corefile": corefile},
        },
        deployment(
            "coredns",
            labels,
            {
                "serviceAccountName": "coredns",
                "dnsPolicy": "Default",
                "priorityClassName": "system-cluster-critical",
                "containers": [
                    {
                        "name": "coredns",
                        "image": COREDNS_IMAGE,
                        "imagePullPolicy": "Never",
                        "args": ["-conf", "/etc/coredns/Corefile"],
                        "ports": [
                            {"containerPort": 53, "protocol": "UDP", "name": "dns"},
                            {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"},
                        ],
                        "securityContext": {
                            **_restricted(),
                            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                        },
                        "readinessProbe": {
                            "httpGet": {"path": "/ready", "port": 8181},
                            "periodSeconds": 2,
                        },
                        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}},
                        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
                    }
                ],
                "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
            },
        ),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("kube-dns", **labels),
            "spec": {
                "clusterIP": layout.DNS_SERVICE_IP,
                "selector": labels,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                ],
            },
        },
    ]


def metrics_server() -> list[dict[str, Any]]:
    """metrics-server, so the HPA really scales (the cluster is its own metrics source)."""
    labels = {"k8s-app": "metrics-server"}
    sa = [{"kind": "ServiceAccount", "name": "metrics-server", "namespace": "kube-system"}]
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("metrics-server")},
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": _meta(
                "system:aggregated-metrics-reader",
                None,
                **{
                    "rbac.authorization.k8s.io/aggregate-to-view": "true",
                    "rbac.authorization.k8s.io/aggregate-to-edit": "true",
                    "rbac.authorization.k8s.io/aggregate-to-admin": "true",
                },
            ),
            "rules": [
                {
                    "apiGroups": ["metrics.k8s.io"],
                    "resources": ["pods", "nodes"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": _meta("system:metrics-server", None),
            "rules": [
                {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                {
                    "apiGroups": [""],
                    "resources": ["pods", "nodes"],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": _meta("system:metrics-server", None),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:metrics-server",
            },
            "subjects": sa,
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": _meta("metrics-server:system:auth-delegator", None),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:auth-delegator",
            },
            "subjects": sa,
        },
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": _meta("metrics-server-auth-reader"),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "extension-apiserver-authentication-reader",
            },
            "subjects": sa,
        },
        deployment(
            "metrics-server",
            labels,
            {
                "serviceAccountName": "metrics-server",
                "priorityClassName": "system-cluster-critical",
                "containers": [
                    {
                        "name": "metrics-server",
                        "image": METRICS_SERVER_IMAGE,
                        "imagePullPolicy": "Never",
                        "args": [
                            "--cert-dir=/tmp",
                            "--secure-port=10250",
                            "--kubelet-preferred-address-types=InternalIP",
                            # kubelet's serving certificate is self-signed on this node.
                            "--kubelet-insecure-tls",
                            "--kubelet-use-node-status-port",
                            "--metric-resolution=15s",
                        ],
                        "ports": [{"name": "https", "containerPort": 10250}],
                        "readinessProbe": {
                            "httpGet": {
                                "path": "/readyz",
                                "port": "https",
                                "scheme": "HTTPS",
                            },
                            "periodSeconds": 2,
                        },
                        "securityContext": _restricted(),
                        "resources": {"requests": {"cpu": "20m", "memory": "48Mi"}},
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }
                ],
                "volumes": [{"name": "tmp", "emptyDir": {}}],
            },
        ),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("metrics-server", **labels),
            "spec": {
                "selector": labels,
                "ports": [{"name": "https", "port": 443, "targetPort": "https"}],
            },
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": _meta("v1beta1.metrics.k8s.io", None, **labels),
            "spec": {
                "service": {"name": "metrics-server", "namespace": "kube-system"},
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "insecureSkipTLSVerify": True,
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]


def network_policy() -> list[dict[str, Any]]:
    """kube-router's NetworkPolicy controller alone (what k3s embeds), so policies are enforced.

    It runs on the node's network (the cluster's namespace), where a ClusterIP
    has no route: it is pointed at the API server's node address instead.
    """
    labels = {"k8s-app": "kube-router"}
    rbac = "rbac.authorization.k8s.io/v1"
    read = ["get", "list", "watch"]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("kube-router")},
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": _meta("kube-router", None),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["namespaces", "pods", "services", "nodes", "endpoints"],
                    "verbs": read,
                },
                {
                    "apiGroups": ["networking.k8s.io"],
                    "resources": ["networkpolicies"],
                    "verbs": read,
                },
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
                {
                    "apiGroups": ["", "events.k8s.io"],
                    "resources": ["events"],
                    "verbs": ["create", "patch"],
                },
            ],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": _meta("kube-router", None),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "kube-router",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": "kube-router", "namespace": "kube-system"}
            ],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": _meta("kube-router", **labels),
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "kube-router",
                        "hostNetwork": True,
                        "priorityClassName": "system-node-critical",
                        "containers": [
                            {
                                "name": "kube-router",
                                "image": KUBE_ROUTER_IMAGE,
                                "imagePullPolicy": "Never",
                                "args": [
                                    "--run-router=false",
                                    "--run-service-proxy=false",
                                    "--run-firewall=true",
                                    f"--service-cluster-ip-range={layout.SERVICE_CIDR}",
                                    f"--hostname-override={layout.NODE_NAME}",
                                    "--health-port=20244",
                                    "--metrics-port=0",
                                ],
                                "env": [
                                    {"name": "KUBERNETES_SERVICE_HOST", "value": layout.NODE_IP},
                                    {
                                        "name": "KUBERNETES_SERVICE_PORT",
                                        "value": str(layout.API_PORT),
                                    },
                                ],
                                "securityContext": {"privileged": True},
                                "readinessProbe": {
                                    "httpGet": {"path": "/healthz", "port": 20244},
                                    "periodSeconds": 3,
                                },
                                "resources": {"requests": {"cpu": "10m", "memory": "48Mi"}},
                                "volumeMounts": [
                                    {"name": "xtables-lock", "mountPath": "/run/xtables.lock"}
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "xtables-lock",
                                "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"},
                            }
                        ],
                    },
                },
            },
        },
    ]


def storage(lay: Layout) -> list[dict[str, Any]]:
    """A default StorageClass and static hostPath PersistentVolumes."""
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "kubernetes.io/no-provisioner",
            "reclaimPolicy": "Retain",
            "volumeBindingMode": "Immediate",
        }
    ]
    for i in range(PERSISTENT_VOLUMES):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {
                    "name": f"kubevod-test-pv{i}",
                    "labels": {"kubevod.io/test-pv": str(i)},
                },
                "spec": {
                    "capacity": {"storage": "1Ti"},
                    "accessModes": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": STORAGE_CLASS,
                    "hostPath": {"path": str(lay.volumes / f"pv{i}"), "type": "DirectoryOrCreate"},
                },
            }
        )
    return docs


def gpu_runtime() -> list[dict[str, Any]]:
    """The RuntimeClass the chart's GPU pods ask for; its handler is runc on this node."""
    return [
        {
            "apiVersion": "node.k8s.io/v1",
            "kind": "RuntimeClass",
            "metadata": {"name": "nvidia"},
            "handler": "nvidia",
        }
    ]


def manifests(lay: Layout) -> list[dict[str, Any]]:
    return [*coredns(), *metrics_server(), *network_policy(), *storage(lay), *gpu_runtime()]
