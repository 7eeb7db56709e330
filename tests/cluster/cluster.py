"""A real one-node Kubernetes inside its own network namespace: bring-up and teardown.

containerd, etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kubelet and kube-proxy run as child processes entered into the namespace;
pid files and logs are under the cluster's state folder, so another process
(``make cluster-down``) can stop what ``make cluster`` started. Host clients
reach the API server through a forwarder on 127.0.0.1 (forward.py).

Order of bring-up, each step waiting for the one before it:
namespace (proved sealed) -> host fence -> PKI -> containerd -> images ->
etcd -> kube-apiserver -> controller-manager, scheduler -> kubelet, kube-proxy
-> node Ready -> CoreDNS, metrics-server, storage, GPU stand-ins.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import shutil
import signal
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.cluster import addons, config, forward, host, layout, netns, pki
from tests.cluster.layout import Layout

Progress = Callable[[str], None]


def ready_endpoint(service: dict[str, Any], slices: dict[str, Any], port: int) -> tuple[str, int]:
    """A ready endpoint (pod IP, target port) of a Service port, chosen at random as
    kube-proxy would, from the Service and its EndpointSlices (API objects).

    Raises:
        LookupError: no endpoint of that port is ready.
    """
    wanted = next((p for p in service["spec"]["ports"] if p["port"] == port), None)
    if wanted is None:
        raise LookupError(f"service {service['metadata']['name']} has no port {port}")
    name = wanted.get("name") or ""
    ready = []
    for s in slices["items"]:
        ports = [p for p in s.get("ports") or [] if (p.get("name") or "") == name]
        for ep in s.get("endpoints") or [] if ports else []:
            if (ep.get("conditions") or {}).get("ready"):
                ready += [(address, int(ports[0]["port"])) for address in ep["addresses"]]
    if not ready:
        raise LookupError(f"service {service['metadata']['name']}:{port} has no ready endpoint")
    return random.choice(ready)


def archive_reference(archive: Path) -> tuple[str, str]:
    """(name, manifest digest) of the one image in an OCI archive (its index.json)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        assert member is not None, f"{archive} has no index.json"
        index = json.load(member)
    manifest = index["manifests"][0]
    return manifest["annotations"]["org.opencontainers.image.ref.name"], manifest["digest"]


class ClusterError(RuntimeError):
    """The cluster could not be started (the message says which part and why)."""


def testenv_bin(name: str) -> str:
    path = layout.testenv_root() / "bin" / name
    if not path.exists():
        raise ClusterError(
            f"{name} is not installed: run `scripts/testenv cluster` (or `make test`)"
        )
    return str(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _kill(pids: Iterable[int], grace: float = 5) -> None:
    pids = [p for p in pids if p > 1 and p != os.getpid()]
    for p in pids:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.1)
    for p in pids:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(p, os.WNOHANG)


class Cluster:
    """One cluster's processes, files and host-side forwarders."""

    #: The programs of the test environment a cluster runs or drives.
    BINARIES = (
        "containerd", "ctr", "runc", "etcd", "kube-apiserver", "kube-controller-manager",
        "kube-scheduler", "kubelet", "kube-proxy", "kubectl", "helm",
    )  # fmt: skip

    def __init__(self, state: Path, netns_name: str = "kubevod-test") -> None:
        self.layout = Layout(state.resolve(), netns_name)
        self.forwarders = forward.Forwarders(netns_name)
        self.api_port: int | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self._import_error = ""

    # ------------------------------------------------------------------ processes

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        """Start a daemon inside the namespace; its log and pid go under the state folder."""
        lay = self.layout
        lay.logs.mkdir(parents=True, exist_ok=True)
        lay.pids.mkdir(parents=True, exist_ok=True)
        with lay.log_file(name).open("ab") as log:
            proc = subprocess.Popen(
                [*netns.enter(lay.netns), *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self.children[name] = proc
        lay.pid_file(name).write_text(str(proc.pid))

    def pid(self, name: str) -> int | None:
        try:
            return int(self.layout.pid_file(name).read_text())
        except (OSError, ValueError):
            return None

    def alive(self, name: str) -> bool:
        pid = self.pid(name)
        return pid is not None and _pid_alive(pid)

    def check_alive(self, name: str) -> None:
        if not self.alive(name):
            raise ClusterError(f"{name} exited:\n{self.log_tail(name)}")

    def stop_daemon(self, name: str, grace: float = 10) -> None:
        pid = self.pid(name)
        if pid is not None:
            _kill([pid], grace)
        proc = self.children.pop(name, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(1)
        self.layout.pid_file(name).unlink(missing_ok=True)

    def log_tail(self, name: str, lines: int = 40) -> str:
        try:
            text = self.layout.log_file(name).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # ------------------------------------------------------------------ clients

    @property
    def kubeconfig(self) -> Path:
        return self.layout.host_kubeconfig

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """kubectl on the host, through the API forwarder."""
        argv = [testenv_bin("kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        r = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout)
        if check and r.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
        return r

    def apply(self, docs: Sequence[dict[str, Any]] | str, namespace: str | None = None) -> None:
        text = docs if isinstance(docs, str) else yaml.safe_dump_all(list(docs))
        ns = ["-n", namespace] if namespace else []
        self.kubectl("apply", "--server-side", "--force-conflicts", *ns, "-f", "-", input=text)

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def ctr(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        argv = [testenv_bin("ctr"), "--address", str(self.layout.containerd_socket), "-n", "k8s.io"]
        r = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise ClusterError(f"ctr {' '.join(args)} failed: {r.stderr}")
        return r

    def _api_get_inside(self, path: str) -> Any:
        """GET from the API server at its node address: only from a thread inside the namespace.

        The forwarders' threads live in the namespace, where neither kubectl's
        host kubeconfig (127.0.0.1) nor a ClusterIP works; the node address does.
        """
        k = self.layout.pki
        context = ssl.create_default_context(cafile=str(k / "ca.crt"))
        token = (k / "admin.token").read_text().strip()
        req = urllib.request.Request(
            config.api_server_url() + path, headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, context=context, timeout=5) as r:
            return json.loads(r.read())

    def _endpoint_inside(self, namespace: str, service: str, port: int) -> tuple[str, int]:
        svc = self._api_get_inside(f"/api/v1/namespaces/{namespace}/services/{service}")
        slices = self._api_get_inside(
            f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
            f"?labelSelector=kubernetes.io%2Fservice-name%3D{service}"
        )
        return ready_endpoint(svc, slices, port)

    def forward_api(self, local: int = 0) -> int:
        """Forward host 127.0.0.1:local to the API server's node address."""
        return self.forwarders.add("apiserver", (layout.NODE_IP, layout.API_PORT), local)

    def forward_service(self, namespace: str, service: str, port: int, local: int = 0) -> int:
        """Forward host 127.0.0.1:local to a ready pod of the Service (looked up per connection)."""
        return self.forwarders.add(
            f"{namespace}/{service}:{port}",
            lambda: self._endpoint_inside(namespace, service, port),
            local,
        )

    # ------------------------------------------------------------------ bring-up

    def up(self, images: Sequence[Path], progress: Progress = print, api_port: int = 0) -> None:
        """Start everything; on any failure tear down what was started and raise."""
        if os.geteuid() != 0:
            raise ClusterError(
                "the test cluster needs root (network namespaces, mounts, cgroups): "
                "run it as root, e.g. `sudo make cluster`"
            )
        t0 = time.monotonic()

        def step(what: str) -> None:
            progress(f"[cluster] {what:<34} {time.monotonic() - t0:6.1f} s")

        lay = self.layout
        if lay.netns_path.exists():
            raise ClusterError(
                f"network namespace {lay.netns} already exists: a cluster is running "
                "(stop it with `make cluster-down`)"
            )
        if self._mounts_under_state():
            raise ClusterError(
                f"{lay.state} still has mounts of a cluster: run `make cluster-down`"
            )
        # A state folder used before (make cluster) starts from nothing: a new etcd,
        # PKI and node; the logs of the last run are kept beside it.
        if lay.state.exists():
            shutil.rmtree(lay.logs.with_name("logs.previous"), ignore_errors=True)
            if lay.logs.exists():
                lay.logs.rename(lay.logs.with_name("logs.previous"))
            for item in lay.state.iterdir():
                if item.name != "logs.previous":
                    shutil.rmtree(item) if item.is_dir() else item.unlink()
        lay.state.mkdir(parents=True, exist_ok=True)
        host.save(lay.baseline)
        try:
            netns.create(lay.netns)
            netns.fence_up(lay.fence_chain)
            step("namespace sealed, host fenced")
            self.api_port = self.forward_api(api_port)
            pki.make(lay)
            lay.host_kubeconfig.write_text(pki.host_kubeconfig(lay, self.api_port))
            lay.host_kubeconfig.chmod(0o600)
            self._write_configs()
            step("pki and configs")
            self.start(
                "containerd",
                [testenv_bin("containerd"), "--config", str(lay.state / "containerd.toml")],
            )
            self._wait(lambda: self._ctr_ok(), "containerd", 30)
            importer = self._import_images(images)
            step("containerd (importing images)")
            self._start_control_plane()
            step("control plane ready")
            importer.join(600)
            if self._import_error:
                raise ClusterError(f"image import failed: {self._import_error}")
            step("images imported")
            self._start_node()
            self._wait(self._node_ready, "node Ready", 120, "kubelet")
            self._wait(
                lambda: self.kubectl("get", "sa", "default", check=False).returncode == 0,
                "default ServiceAccount",
                60,
            )
            step("node Ready")
            self._install_addons()
            step("addons applied")
        except BaseException:
            self.down(progress=lambda _: None)
            raise

    def wait_addons(self, progress: Progress = print) -> None:
        """Wait until CoreDNS, metrics-server and the policy controller are ready."""
        t0 = time.monotonic()
        for workload in addons.WORKLOADS:
            ns, name = workload.split("/", 1)
            r = self.kubectl(
                "-n", ns, "rollout", "status", name, "--timeout=180s", check=False, timeout=200
            )  # fmt: skip
            if r.returncode != 0:
                raise ClusterError(f"{workload} not ready: {r.stderr}\n{self.diagnose(ns)}")
        progress(f"[cluster] addons ready in {time.monotonic() - t0:.1f} s")

    def wait_metrics(self, timeout: float = 120) -> None:
        """Wait until the metrics API serves the node's usage (its first scrape; for the HPA)."""
        self._wait(self._metrics_ready, "metrics API", timeout)

    def _import_images(self, archives: Sequence[Path]) -> threading.Thread:
        """Import the image archives into containerd (one ``ctr import`` per file), meanwhile."""
        self._import_error = ""

        def run() -> None:
            try:
                listing = self.ctr("images", "ls", timeout=30).stdout
            except (ClusterError, subprocess.TimeoutExpired):
                listing = ""
            present = {tuple(line.split()[::2][:2]) for line in listing.splitlines()[1:] if line}
            for archive in archives:
                if archive_reference(archive) in present:
                    continue  # already in the kept image store, same digest
                try:
                    self.ctr("images", "import", str(archive), timeout=600)
                except (ClusterError, subprocess.TimeoutExpired) as e:
                    self._import_error = f"{archive.name}: {e}"
                    return

        thread = threading.Thread(target=run, daemon=True, name="image-import")
        thread.start()
        return thread

    def diagnose(self, namespace: str | None = None) -> str:
        """Pods, recent events and the logs of pods that are not ready (for error messages)."""
        scope = ["-n", namespace] if namespace else ["-A"]
        parts = [self.kubectl("get", "pods", *scope, "-o", "wide", check=False).stdout]
        events = self.kubectl("get", "events", *scope, "--sort-by=.lastTimestamp", check=False)
        parts.append("\n".join(events.stdout.splitlines()[-25:]))
        r = self.kubectl("get", "pods", *scope, "-o", "json", check=False)
        if r.returncode == 0:
            for pod in json.loads(r.stdout)["items"]:
                statuses = pod["status"].get("containerStatuses") or []
                if statuses and all(c.get("ready") for c in statuses):
                    continue
                ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
                log = self.kubectl(
                    "logs", "-n", ns, name, "--all-containers", "--tail=30", check=False
                )
                parts.append(f"--- logs of {ns}/{name}:\n{log.stdout}{log.stderr}")
        return "\n".join(parts)

    def _ctr_ok(self) -> bool:
        self.check_alive("containerd")
        try:
            self.ctr("version", timeout=5)
        except (ClusterError, subprocess.TimeoutExpired):
            return False
        return True

    def _wait(
        self, ok: Callable[[], bool], what: str, timeout: float, daemon: str | None = None
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if daemon:
                self.check_alive(daemon)
            if ok():
                return
            time.sleep(0.2)
        raise ClusterError(
            f"{what}: not after {timeout} s\n" + (self.log_tail(daemon) if daemon else "")
        )

    def _write_configs(self) -> None:
        lay = self.layout
        (lay.state / "containerd.toml").write_text(config.containerd_toml(lay, self.image_store()))
        lay.cni_conf_dir.mkdir(parents=True, exist_ok=True)
        (lay.cni_conf_dir / "10-kubevod-test.conflist").write_text(
            json.dumps(config.cni_conflist(lay), indent=1)
        )
        (lay.state / "kubelet.yaml").write_text(yaml.safe_dump(config.kubelet_config(lay)))
        (lay.state / "kube-proxy.yaml").write_text(yaml.safe_dump(config.kube_proxy_config(lay)))
        # Pods with dnsPolicy Default get this: no resolver outside the cluster.
        (lay.state / "resolv.conf").write_text("# no name resolution outside the test cluster\n")
        for i in range(addons.PERSISTENT_VOLUMES):
            # hostPath volumes keep their mode: the chart's pods run as non-root users.
            volume = lay.volumes / f"pv{i}"
            volume.mkdir(parents=True, exist_ok=True)
            volume.chmod(0o777)
        sysctls = {k: netns.run(["sysctl", "-n", k]).stdout.strip() for k in layout.KUBELET_SYSCTLS}
        saved = lay.state / "sysctls.json"
        if not saved.exists():
            saved.write_text(json.dumps(sysctls))

    def image_store(self) -> Path:
        """containerd's root: the shared one in the test environment's cache when no
        other containerd holds it (images stay unpacked between clusters), else one
        under this cluster's state."""
        shared = layout.testenv_root() / "cluster-containerd" / "root"
        db = shared / "io.containerd.metadata.v1.bolt" / "meta.db"
        if not db.exists():
            shared.mkdir(parents=True, exist_ok=True)
            return shared
        fd = os.open(db, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # bbolt's own lock
        except BlockingIOError:
            return self.layout.containerd / "root"
        finally:
            os.close(fd)
        return shared

    def _readyz(self) -> bool:
        r = self.kubectl("get", "--raw", "/readyz", check=False, timeout=10)
        return r.returncode == 0 and r.stdout.strip() == "ok"

    def _start_control_plane(self) -> None:
        lay, k = self.layout, self.layout.pki
        etcd = f"http://127.0.0.1:{layout.ETCD_PORT}"
        peer = f"http://127.0.0.1:{layout.ETCD_PEER_PORT}"
        self.start(
            "etcd",
            [
                testenv_bin("etcd"),
                "--data-dir",
                str(lay.etcd_data),
                "--name",
                "kubevod-test",
                "--listen-client-urls",
                etcd,
                "--advertise-client-urls",
                etcd,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                f"kubevod-test={peer}",
                "--log-level",
                "warn",
                "--quota-backend-bytes",
                str(2 * 1024**3),
            ],
        )
        self.start(
            "kube-apiserver",
            [
                testenv_bin("kube-apiserver"),
                f"--etcd-servers={etcd}",
                f"--bind-address={layout.NODE_IP}",
                f"--advertise-address={layout.NODE_IP}",
                f"--secure-port={layout.API_PORT}",
                f"--tls-cert-file={k / 'apiserver.crt'}",
                f"--tls-private-key-file={k / 'apiserver.key'}",
                f"--client-ca-file={k / 'ca.crt'}",
                f"--cert-dir={k / 'apiserver-certs'}",
                f"--token-auth-file={k / 'tokens.csv'}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={k / 'sa.pub'}",
                f"--service-account-signing-key-file={k / 'sa.key'}",
                f"--service-cluster-ip-range={layout.SERVICE_CIDR}",
                "--allow-privileged=true",
                f"--kubelet-client-certificate={k / 'kubelet-client.crt'}",
                f"--kubelet-client-key={k / 'kubelet-client.key'}",
                # The node's name resolves to 127.0.0.1 here: logs/exec need the InternalIP.
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                # The aggregation layer (metrics-server's APIService): the API server
                # calls the endpoint's pod IP, since a ClusterIP has no route from here.
                f"--requestheader-client-ca-file={k / 'front-proxy-ca.crt'}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-username-headers=X-Remote-User",
                f"--proxy-client-cert-file={k / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={k / 'front-proxy-client.key'}",
                "--enable-aggregator-routing=true",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--v=0",
            ],
        )
        self._wait(self._readyz, "kube-apiserver /readyz", 120, "kube-apiserver")
        self.start(
            "kube-controller-manager",
            [
                testenv_bin("kube-controller-manager"),
                f"--kubeconfig={k / 'kcm.kubeconfig'}",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={k / 'sa.key'}",
                f"--root-ca-file={k / 'ca.crt'}",
                f"--cluster-signing-cert-file={k / 'ca.crt'}",
                f"--cluster-signing-key-file={k / 'ca.key'}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--allocate-node-cidrs=false",
                "--profiling=false",
                # The HPA test watches a scale-up and the way back within minutes.
                "--horizontal-pod-autoscaler-sync-period=5s",
                "--horizontal-pod-autoscaler-downscale-stabilization=30s",
            ],
        )
        self.start(
            "kube-scheduler",
            [
                testenv_bin("kube-scheduler"),
                f"--kubeconfig={k / 'sched.kubeconfig'}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--profiling=false",
            ],
        )

    def _start_node(self) -> None:
        lay, k = self.layout, self.layout.pki
        self.start(
            "kubelet",
            [
                testenv_bin("kubelet"),
                f"--config={lay.state / 'kubelet.yaml'}",
                f"--kubeconfig={k / 'node.kubeconfig'}",
                f"--root-dir={lay.kubelet_root}",
                f"--cert-dir={lay.kubelet_root / 'pki'}",
                f"--hostname-override={layout.NODE_NAME}",
                f"--node-ip={layout.NODE_IP}",
                f"--node-labels={addons.NODE_LABELS}",
            ],
        )
        self.start(
            "kube-proxy", [testenv_bin("kube-proxy"), f"--config={lay.state / 'kube-proxy.yaml'}"]
        )

    def _node_ready(self) -> bool:
        r = self.kubectl("get", "node", layout.NODE_NAME, "-o", "json", check=False, timeout=10)
        if r.returncode != 0:
            return False
        conditions = json.loads(r.stdout)["status"].get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _metrics_ready(self) -> bool:
        r = self.kubectl(
            "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", check=False, timeout=10
        )
        return r.returncode == 0 and '"items":[{' in r.stdout.replace(" ", "")

    def _install_addons(self) -> None:
        self.apply(addons.manifests(self.layout))
        # An extended resource is advertised by patching the node's status (the
        # way a device plugin's registration ends up): one fake NVIDIA GPU.
        patch = json.dumps(
            [{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": "1"}]
        )
        self.kubectl(
            "patch", "node", layout.NODE_NAME, "--subresource=status", "--type=json", "-p", patch
        )

    # ------------------------------------------------------------------ teardown

    def down(self, progress: Progress = print) -> list[str]:
        """Stop everything and put the host back; returns what still differs from before."""
        lay = self.layout
        self.forwarders.stop()
        self.stop_daemon("kube-controller-manager")
        if self.alive("kube-apiserver") and self.alive("kubelet") and self.api_port:
            self.kubectl(
                "delete",
                "pods",
                "--all",
                "-A",
                "--force",
                "--grace-period=0",
                "--wait=false",
                check=False,
                timeout=60,
            )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self._tasks():
                time.sleep(0.5)  # kubelet stops the sandboxes (CNI DEL)
        for name in ("kubelet", "kube-proxy", "kube-scheduler", "kube-apiserver", "etcd"):
            self.stop_daemon(name)
        if self.alive("containerd"):
            for task in self._tasks():
                with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                    self.ctr("tasks", "kill", "-s", "SIGKILL", task, timeout=10)
            # The image store may be kept for the next cluster: only images stay in it.
            with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                for container in self.ctr("containers", "ls", "-q", timeout=10).stdout.split():
                    with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                        self.ctr("tasks", "rm", "-f", container, timeout=10)
                    with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                        self.ctr("containers", "rm", container, timeout=10)
        self.stop_daemon("containerd")
        # Stragglers, by pid: whatever lives in the namespace or a kubepods cgroup.
        if lay.netns_path.exists():
            _kill(netns.pids(lay.netns), 3)
        _kill(self._cgroup_pids(), 3)
        for mount in sorted(self._mounts_under_state(), reverse=True):
            if subprocess.run(["umount", mount], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", mount], capture_output=True)
        before = host.load(lay.baseline) if lay.baseline.exists() else None
        netns.delete(lay.netns, keep_run_netns=bool(before and "/run/netns" in before["mounts"]))
        netns.fence_down(lay.fence_chain)
        for root in Path("/sys/fs/cgroup").iterdir():
            for name in ("kubepods", "k8s.io"):
                group = root / name
                if group.is_dir():
                    for d in sorted(group.glob("**/"), key=lambda p: len(p.parts), reverse=True):
                        with contextlib.suppress(OSError):
                            d.rmdir()
        saved = lay.state / "sysctls.json"
        if saved.exists():
            for key, value in json.loads(saved.read_text()).items():
                subprocess.run(["sysctl", "-qw", f"{key}={value}"], capture_output=True)
        for d in host.OUTSIDE_DIRS:
            if before and d in before["dirs"]:
                continue
            subprocess.run(["rm", "-rf", d], capture_output=True)
        if before is None:
            return []
        left = host.differences(before, host.snapshot())
        for line in left:
            progress(f"[cluster] host differs after teardown: {line}")
        return left

    def _tasks(self) -> list[str]:
        if not self.alive("containerd"):
            return []
        try:
            out = self.ctr("tasks", "ls", "-q", timeout=10).stdout
        except (ClusterError, subprocess.TimeoutExpired):
            return []
        return out.split()

    def _cgroup_pids(self) -> list[int]:
        found: set[int] = set()
        for root in Path("/sys/fs/cgroup").iterdir():
            for name in ("kubepods", "k8s.io"):
                for procs in (root / name).glob("**/cgroup.procs"):
                    with contextlib.suppress(OSError, ValueError):
                        found.update(int(p) for p in procs.read_text().split())
        return sorted(found)

    def _mounts_under_state(self) -> list[str]:
        out = subprocess.run(
            ["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True
        ).stdout
        prefix = str(self.layout.state) + "/"
        return [m for m in out.splitlines() if m.startswith(prefix)]
