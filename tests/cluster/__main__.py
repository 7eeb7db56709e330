"""``make cluster`` / ``make cluster-down``: the test cluster for people.

python -m tests.cluster up      build images, start the cluster, install the chart,
                                write .cluster/env, keep the forwarders running
python -m tests.cluster down    stop everything and check the host is as it was
python -m tests.cluster serve   (internal) the forwarder process that ``up`` leaves behind
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.cluster import images, release
from tests.cluster.cluster import Cluster, ClusterError

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / ".cluster"
STATE = HOME / "state"
ENV = HOME / "env"
API_PORT = int(os.environ.get("KUBEVOD_CLUSTER_API_PORT", "16443"))
CACHE_PORT = int(os.environ.get("KUBEVOD_CLUSTER_CACHE_PORT", "18080"))


def _env_text(cluster: Cluster) -> str:
    return f"KUBECONFIG={cluster.kubeconfig}\nKUBEVOD_URL=http://127.0.0.1:{CACHE_PORT}\n"


def _wait_listening(proc: subprocess.Popen[bytes], ports: tuple[int, ...]) -> None:
    """Return once the forwarder process accepts on every port (it starts in the background)."""
    deadline = time.monotonic() + 30
    for port in ports:
        while True:
            if proc.poll() is not None:
                raise ClusterError(f"the forwarder exited ({proc.returncode}): see its log")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise ClusterError(f"the forwarder does not listen on 127.0.0.1:{port}")
            time.sleep(0.1)


def up() -> int:
    if os.geteuid() != 0:
        print(
            "make cluster needs root (network namespaces, mounts, cgroups): run `sudo make cluster`"
        )
        return 2
    archives = images.build_cluster_images(progress=print)
    cluster = Cluster(STATE)
    cluster.up(archives, api_port=API_PORT)
    try:
        cluster.wait_addons()
        cluster.wait_metrics()
        print("[cluster] helm install charts/kubevod ...")
        release.install(cluster, release.FETCH_VALUES)
    except BaseException:
        cluster.down()
        raise
    cluster.forwarders.stop()  # the serve process takes the same ports over
    # Not Cluster.start: the forwarders listen on the host, outside the namespace.
    with cluster.layout.log_file("forwarder").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.cluster", "serve"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    cluster.layout.pid_file("forwarder").write_text(str(proc.pid))
    try:
        _wait_listening(proc, (API_PORT, CACHE_PORT))
    except ClusterError:
        cluster.stop_daemon("forwarder")
        cluster.down()
        raise
    ENV.write_text(_env_text(cluster))
    print(
        f"""
The cluster is up; kubevod is installed in namespace {release.NAMESPACE}.
  source {ENV.relative_to(ROOT)}     # KUBECONFIG and KUBEVOD_URL
  export KUBECONFIG=$(sed -n 's/^KUBECONFIG=//p' .cluster/env)
  kubectl get pods -n {release.NAMESPACE}
  kubectl apply -n {release.NAMESPACE} -f video.yaml
      (a source must be inside the cluster: it has no route off this machine)
  open http://127.0.0.1:{CACHE_PORT}/   (the cache Service)
Stop it with `make cluster-down`."""
    )
    return 0


def serve() -> int:
    cluster = Cluster(STATE)
    cluster.forward_api(API_PORT)
    cluster.forward_service(release.NAMESPACE, release.component("cache"), 80, CACHE_PORT)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(3600):
        pass
    cluster.forwarders.stop()
    return 0


def down() -> int:
    if os.geteuid() != 0:
        print("make cluster-down needs root: run `sudo make cluster-down`")
        return 2
    cluster = Cluster(STATE)
    cluster.stop_daemon("forwarder")  # it holds the namespace open
    left = cluster.down()
    ENV.unlink(missing_ok=True)
    if left:
        print("[cluster] the host is NOT as it was before `make cluster`:")
        return 1
    print("[cluster] down; the host is as it was before `make cluster`")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "serve"))
    args = parser.parse_args()
    try:
        return {"up": up, "down": down, "serve": serve}[args.command]()
    except ClusterError as e:
        print(f"[cluster] {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
