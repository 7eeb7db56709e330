"""The host's state, as far as a cluster could change it: taken before bring-up,
compared after teardown, so a test can say "the host is as it was"."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.cluster import layout

#: Folders kubelet, containerd and CNI write outside the cluster's state folder.
OUTSIDE_DIRS = (
    "/var/log/containers",
    "/var/log/pods",
    "/run/containerd",
    "/var/lib/cni",
    "/etc/cni",
)
#: Programs of the cluster; none may outlive teardown.
PROGRAMS = re.compile(
    r"(^|/)(containerd|containerd-shim\S*|kubelet|kube-apiserver|kube-controller-manager|"
    r"kube-scheduler|kube-proxy|etcd|coredns|metrics-server|pause)( |$)"
)


def _out(*argv: str) -> str:
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    return r.stdout


def _iptables(binary: str) -> list[str]:
    rules = []
    for table in ("filter", "nat", "mangle", "raw"):
        rules += [f"{table} {r}" for r in _out(binary, "-t", table, "-S").splitlines()]
    return rules


def snapshot() -> dict[str, Any]:
    """What the host looks like now (only what a cluster could leave behind)."""
    cgroups = sorted(
        str(p)
        for p in Path("/sys/fs/cgroup").glob("**/")
        if p.name in ("kubepods", "k8s.io", "kubepods.slice") and len(p.parts) <= 6
    )
    processes = sorted(
        line.split(None, 1)[1]
        for line in _out("ps", "-eo", "pid,args").splitlines()[1:]
        if len(line.split(None, 1)) == 2 and PROGRAMS.search(line.split(None, 1)[1].split()[0])
    )
    return {
        "iptables": _iptables("iptables"),
        "ip6tables": _iptables("ip6tables"),
        "links": sorted(
            line.split(":")[1].strip() for line in _out("ip", "-o", "link").splitlines()
        ),
        "routes": sorted(_out("ip", "route").splitlines() + _out("ip", "-6", "route").splitlines()),
        "mounts": sorted(_out("findmnt", "-rn", "-o", "TARGET").splitlines()),
        "netns": sorted(_out("lsns", "-t", "net", "-n", "-o", "NS").split()),
        "named_netns": sorted(_out("ip", "netns", "list").splitlines()),
        "cgroups": cgroups,
        "processes": processes,
        "sysctls": {k: _out("sysctl", "-n", k).strip() for k in layout.KUBELET_SYSCTLS},
        "dirs": sorted(d for d in OUTSIDE_DIRS if Path(d).exists()),
    }


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed between two snapshots, one line per key (empty: nothing)."""
    lines = []
    for key in before:
        old, new = before[key], after.get(key)
        if old == new:
            continue
        if isinstance(old, list) and isinstance(new, list):
            added = sorted(set(new) - set(old))
            gone = sorted(set(old) - set(new))
            lines.append(f"{key}: added {added} removed {gone}")
        else:
            lines.append(f"{key}: {old!r} -> {new!r}")
    return lines


def save(path: Path) -> dict[str, Any]:
    snap = snapshot()
    path.write_text(json.dumps(snap, indent=1))
    return snap


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data
