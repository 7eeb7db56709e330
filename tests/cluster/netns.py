"""The cluster's network namespace: made with only ``lo``, proven to have no
route off the machine before any daemon starts, and fenced on the host.

Daemons enter it with ``nsenter --net=...`` (not ``ip netns exec``, which also
unshares a mount namespace and remounts /sys: /sys/fs/cgroup would look empty
and kubelet's volume mounts would be invisible to containerd).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tests.cluster import layout

CLONE_NEWNET = 0x40000000


class NoRouteProofFailed(RuntimeError):
    """The namespace could reach something off the machine; nothing was started."""


def run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr}")
    return result


def enter(name: str) -> list[str]:
    """The argv prefix that runs a program inside the namespace (network only)."""
    return ["nsenter", f"--net=/run/netns/{name}"]


def in_ns(name: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([*enter(name), *argv], check=check)


@dataclass(frozen=True)
class RouteCheck:
    """One ``ip route get`` from inside the namespace."""

    address: str
    family: int
    returncode: int
    output: str

    @property
    def routed(self) -> bool:
        return self.returncode == 0


def proof_failures(
    checks: Iterable[RouteCheck], links: Sequence[str], routes: Sequence[str]
) -> list[str]:
    """Why the namespace is not sealed (empty when it is).

    Args:
        checks: ``ip route get`` results for addresses that must not route.
        links: the namespace's interface names.
        routes: its routes outside the ``local`` table (must be none).

    Returns:
        One line per problem.
    """
    problems = [f"route to {c.address}: {c.output.strip()}" for c in checks if c.routed]
    if list(links) != ["lo"]:
        problems.append(f"links other than lo: {', '.join(links)}")
    problems += [f"non-local route: {r}" for r in routes]
    return problems


def create(name: str, node_ip: str = layout.NODE_IP) -> None:
    """Make the namespace, prove it is sealed, or delete it again and raise."""
    if os.path.exists(f"/run/netns/{name}"):
        raise RuntimeError(
            f"network namespace {name} already exists: a cluster is running "
            "(stop it with `make cluster-down`)"
        )
    run(["ip", "netns", "add", name])
    try:
        in_ns(name, "ip", "link", "set", "lo", "up")
        in_ns(name, "ip", "addr", "add", f"{node_ip}/32", "dev", "lo")
        # Pod -> ClusterIP -> pod is routed through the bridge inside the namespace.
        in_ns(name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # ICMP errors to pods are not rate limited: an attempt to reach an outside
        # address fails in milliseconds instead of timing out.
        in_ns(name, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
        problems = proof_failures(*inspect(name))
        if problems:
            raise NoRouteProofFailed(
                f"network namespace {name} is not sealed; nothing was started:\n  "
                + "\n  ".join(problems)
            )
    except BaseException:
        run(["ip", "netns", "del", name], check=False)
        raise


def inspect(name: str) -> tuple[list[RouteCheck], list[str], list[str]]:
    """Route checks, link names and non-local routes of the namespace."""
    checks = []
    for family, addresses in ((4, layout.MUST_NOT_ROUTE_V4), (6, layout.MUST_NOT_ROUTE_V6)):
        for address in addresses:
            r = in_ns(name, "ip", f"-{family}", "route", "get", address, check=False)
            checks.append(RouteCheck(address, family, r.returncode, r.stdout + r.stderr))
    out = in_ns(name, "ip", "-o", "link").stdout
    links = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line]
    routes = []
    for family in ("-4", "-6"):
        table = in_ns(name, "ip", family, "route", "show", "table", "all").stdout
        routes += [r for r in table.splitlines() if r and " table local" not in r]
    return checks, links, routes


def delete(name: str, keep_run_netns: bool = False) -> None:
    """Delete the namespace: its lo, bridge, veths and every iptables rule go with it.

    ``keep_run_netns``: /run/netns was there before (another namespace's owner
    made it); leave it.
    """
    run(["ip", "netns", "del", name], check=False)
    with contextlib.suppress(OSError):
        if not keep_run_netns and os.path.isdir("/run/netns") and not os.listdir("/run/netns"):
            # `ip netns add` bind-mounted /run/netns on itself.
            run(["umount", "/run/netns"], check=False)
            os.rmdir("/run/netns")


def pids(name: str) -> list[int]:
    out = run(["ip", "netns", "pids", name], check=False).stdout
    return [int(p) for p in out.split()]


# --------------------------------------------------------------------------- host fence


def fence_rules(chain: str, uplinks: Sequence[str]) -> list[list[str]]:
    """iptables rules of the host's fence chain: drop the cluster's ranges on every uplink."""
    rules = []
    for dev in uplinks:
        for cidr in layout.FENCED_RANGES:
            rules.append(["-A", chain, "-o", dev, "-d", cidr, "-j", "DROP"])
            rules.append(["-A", chain, "-o", dev, "-s", cidr, "-j", "DROP"])
    return rules


def uplinks() -> list[str]:
    """The host's interfaces other than lo."""
    out = run(["ip", "-o", "link"]).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line]
    return [n for n in names if n != "lo"]


def fence_up(chain: str) -> None:
    """Add the fence chain to the host's OUTPUT and FORWARD (removed by fence_down)."""
    fence_down(chain)
    run(["iptables", "-N", chain])
    for rule in fence_rules(chain, uplinks()):
        run(["iptables", *rule])
    for hook in ("OUTPUT", "FORWARD"):
        run(["iptables", "-I", hook, "1", "-j", chain])


def fence_down(chain: str) -> None:
    for hook in ("OUTPUT", "FORWARD"):
        while run(["iptables", "-D", hook, "-j", chain], check=False).returncode == 0:
            pass
    run(["iptables", "-F", chain], check=False)
    run(["iptables", "-X", chain], check=False)


def fence_counters(chain: str) -> int:
    """Packets the fence has dropped so far (0 when nothing tried to leave)."""
    out = run(["iptables", "-L", chain, "-v", "-n", "-x"], check=False).stdout
    total = 0
    for line in out.splitlines()[2:]:
        fields = line.split()
        if fields and fields[0].isdigit():
            total += int(fields[0])
    return total


# --------------------------------------------------------------------------- threads


_libc = ctypes.CDLL(None, use_errno=True)


def setns_thread(name: str) -> None:
    """Move the calling thread (and threads it starts) into the namespace."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({name}): {os.strerror(errno)}")
    finally:
        os.close(fd)
