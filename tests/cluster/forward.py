"""Host loopback -> cluster namespace TCP forwarders.

Each listener is bound on the host's 127.0.0.1; the threads that connect
onwards have entered the cluster's network namespace (setns), so every
outgoing connection is made inside it, where there is no route off the
machine. No veth, nothing added to the host's routing.

A target is either a fixed (host, port) or a callable asked at every new
connection (a Service's ready endpoints: from the namespace itself a ClusterIP
has no route, since kube-proxy's rewrite applies to pod traffic only).
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.cluster import netns

Target = tuple[str, int] | Callable[[], tuple[str, int]]


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(262144)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            with contextlib.suppress(OSError):
                s.shutdown(how)


def _pair(client: socket.socket, upstream: socket.socket, open_: set[socket.socket]) -> None:
    a = threading.Thread(target=_pump, args=(client, upstream), daemon=True)
    b = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    a.start()
    b.start()
    a.join()
    b.join()
    client.close()
    upstream.close()
    open_.discard(client)
    open_.discard(upstream)


@dataclass
class Forwarder:
    """One listener on host loopback and its target inside the namespace."""

    listener: socket.socket
    target: Target
    name: str
    threads: list[threading.Thread] = field(default_factory=list)
    connections: set[socket.socket] = field(default_factory=set)

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed by stop()
            try:
                host, port = self.target() if callable(self.target) else self.target
                upstream = socket.create_connection((host, port), timeout=5)
                upstream.settimeout(None)
            except Exception as e:
                print(f"forward {self.name}: no connection: {e}", file=sys.stderr, flush=True)
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections.update((client, upstream))
            threading.Thread(
                target=_pair, args=(client, upstream, self.connections), daemon=True
            ).start()


class Forwarders:
    """The forwarders into one namespace; ``stop()`` releases it (threads hold it open)."""

    def __init__(self, netns_name: str) -> None:
        self.netns_name = netns_name
        self.all: dict[str, Forwarder] = {}

    def add(self, name: str, target: Target, port: int = 0) -> int:
        """Listen on 127.0.0.1:port (0: any free port) and forward to ``target``."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(512)
        fwd = Forwarder(sock, target, name)
        failed: list[BaseException] = []
        ready = threading.Event()

        def runner() -> None:
            try:
                netns.setns_thread(self.netns_name)  # this thread and those it starts
            except OSError as e:
                failed.append(e)
                ready.set()
                return
            t = threading.Thread(target=fwd._serve, daemon=True, name=f"forward-{name}")
            t.start()
            fwd.threads.append(t)
            ready.set()

        starter = threading.Thread(target=runner, daemon=True)
        starter.start()
        ready.wait()
        starter.join()
        if failed:
            sock.close()
            raise failed[0]
        self.all[name] = fwd
        return fwd.port

    def stop(self) -> None:
        for fwd in self.all.values():
            with contextlib.suppress(OSError):
                fwd.listener.shutdown(socket.SHUT_RDWR)
            fwd.listener.close()
            for conn in list(fwd.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            for t in fwd.threads:
                t.join(5)
        self.all.clear()
