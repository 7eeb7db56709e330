"""A small Prometheus exporter for the nginx cache in front of MinIO and the API.

nginx's ``stub_status`` knows connections and requests but not the cache, so
the cache hit ratio comes from the access log: nginx writes one JSON object
per request holding ``$upstream_cache_status`` (``LOG_FORMAT`` below), either
to a file this exporter tails at each scrape, or over UDP syslog to this
exporter (no file to grow or rotate: what a sidecar wants). Exposes

- ``kubevod_nginx_cache_requests_total{status}``, status one of HIT, MISS,
  EXPIRED, STALE, UPDATING, REVALIDATED, BYPASS, or NONE (the location has no
  cache, e.g. the API's own routes);
- ``kubevod_nginx_cache_sent_bytes_total{status}``;
- ``kubevod_nginx_cache_hit_ratio``: served from cache / cache lookups, since start;
- from ``stub_status`` when given: ``kubevod_nginx_up``, ``kubevod_nginx_connections{state}``,
  ``kubevod_nginx_connections_accepted_total``, ``kubevod_nginx_connections_handled_total``,
  ``kubevod_nginx_http_requests_total``.

Run: ``python -m kubevod.nginx_exporter --syslog 127.0.0.1:5514 --stub-status
http://127.0.0.1:8080/stub_status --port 9113``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from kubevod.metrics import start_metrics_server

#: The nginx ``log_format`` the exporter reads (values quoted: some may be "-").
LOG_FORMAT = (
    "log_format kubevod_cache escape=json '{"
    '"time":"$time_iso8601","status":"$status","cache":"$upstream_cache_status",'
    '"method":"$request_method","uri":"$uri","bytes":"$body_bytes_sent",'
    '"request_time":"$request_time"'
    "}';"
)

CACHE_STATUSES = ("HIT", "MISS", "EXPIRED", "STALE", "UPDATING", "REVALIDATED", "BYPASS")
#: Statuses where the response came out of the cache (REVALIDATED: after a 304 upstream).
SERVED_FROM_CACHE = frozenset({"HIT", "STALE", "UPDATING", "REVALIDATED"})
NO_CACHE = "NONE"


@dataclass(frozen=True)
class AccessRecord:
    """The fields of one access-log line the exporter uses."""

    status: int
    cache: str
    uri: str
    bytes_sent: int
    request_time: float | None


def _number(value: object, kind: type[int] | type[float]) -> int | float | None:
    try:
        return kind(str(value))
    except (TypeError, ValueError):
        return None


def cache_label(value: str | None) -> str:
    """``$upstream_cache_status`` as a label: one of CACHE_STATUSES, or NONE."""
    upper = (value or "").strip().upper()
    return upper if upper in CACHE_STATUSES else NO_CACHE


def parse_access_line(line: str) -> AccessRecord | None:
    """One JSON access-log line (optionally behind a syslog header) or None if it is not one.

    Args:
        line: ``{"status":"200","cache":"HIT",...}`` or ``<190>... nginx: {...}``.

    Returns:
        The record, or None for blank, non-JSON or non-object lines.
    """
    start = line.find("{")
    if start < 0:
        return None
    try:
        document = json.loads(line[start:].strip())
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    status = _number(document.get("status"), int)
    sent = _number(document.get("bytes"), int)
    request_time = _number(document.get("request_time"), float)
    return AccessRecord(
        status=int(status) if status is not None else 0,
        cache=cache_label(document.get("cache")),
        uri=str(document.get("uri", "")),
        bytes_sent=int(sent) if sent is not None else 0,
        request_time=float(request_time) if request_time is not None else None,
    )


@dataclass(frozen=True)
class StubStatus:
    """What ``stub_status`` reports."""

    active: int
    accepts: int
    handled: int
    requests: int
    reading: int
    writing: int
    waiting: int


_STUB = re.compile(
    r"Active connections:\s*(\d+)\s*server accepts handled requests\s*(\d+)\s+(\d+)\s+(\d+)"
    r"\s*Reading:\s*(\d+)\s*Writing:\s*(\d+)\s*Waiting:\s*(\d+)",
    re.S,
)


def parse_stub_status(text: str) -> StubStatus:
    """Parse nginx's ``stub_status`` page; raises ValueError when it is not one."""
    match = _STUB.search(text)
    if not match:
        raise ValueError(f"not an nginx stub_status page: {text[:80]!r}")
    return StubStatus(*(int(group) for group in match.groups()))


def hit_ratio(requests: Mapping[str, int]) -> float | None:
    """Share of cache lookups served from the cache; None before the first lookup."""
    lookups = sum(n for status, n in requests.items() if status in CACHE_STATUSES)
    if lookups == 0:
        return None
    return sum(requests.get(status, 0) for status in SERVED_FROM_CACHE) / lookups


class CacheStats:
    """Thread-safe running totals of requests and bytes by cache status."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[str, int] = dict.fromkeys((*CACHE_STATUSES, NO_CACHE), 0)
        self.sent_bytes: dict[str, int] = dict.fromkeys((*CACHE_STATUSES, NO_CACHE), 0)

    def add_line(self, line: str) -> None:
        record = parse_access_line(line)
        if record is None:
            return
        with self._lock:
            self.requests[record.cache] += 1
            self.sent_bytes[record.cache] += record.bytes_sent

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        with self._lock:
            return dict(self.requests), dict(self.sent_bytes)


class LogTailer:
    """Reads the lines appended to an access log since the last call.

    Lines already in the file when the tailer starts are skipped; a file that
    shrinks or is replaced (rotation) is read again from its start.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._inode: int | None = None
        self._offset = 0
        self._partial = b""
        try:
            stat = path.stat()
            self._inode, self._offset = stat.st_ino, stat.st_size
        except FileNotFoundError:
            pass

    def read_lines(self) -> list[str]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        if stat.st_ino != self._inode or stat.st_size < self._offset:
            self._inode, self._offset, self._partial = stat.st_ino, 0, b""
        if stat.st_size == self._offset:
            return []
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read(stat.st_size - self._offset)
        self._offset += len(chunk)
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in complete]


class SyslogReceiver:
    """Receives nginx's ``access_log syslog:server=HOST:PORT`` datagrams into CacheStats."""

    def __init__(self, stats: CacheStats, host: str = "127.0.0.1", port: int = 0) -> None:
        self.stats = stats
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nginx-syslog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                datagram = self.sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.stats.add_line(datagram.decode("utf-8", "replace"))
            self.received += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def fetch_stub_status(url: str, timeout: float = 2.0) -> StubStatus | None:
    """Read and parse ``stub_status``; None when nginx cannot be reached."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return parse_stub_status(response.read().decode())
    except (OSError, ValueError):
        return None


class NginxCollector(Collector):
    """Prometheus collector reading the access log (or syslog totals) and stub_status."""

    def __init__(
        self,
        stats: CacheStats,
        *,
        access_log: Path | None = None,
        stub_status_url: str | None = None,
    ) -> None:
        self.stats = stats
        self.tailer = LogTailer(access_log) if access_log else None
        self.stub_status_url = stub_status_url
        self._lock = threading.Lock()

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        if self.tailer is not None:
            with self._lock:  # two scrapes at once must not read the same lines twice
                for line in self.tailer.read_lines():
                    self.stats.add_line(line)
        requests, sent = self.stats.snapshot()
        by_status = CounterMetricFamily(
            "kubevod_nginx_cache_requests",
            "Requests by $upstream_cache_status (NONE: location without cache)",
            labels=["status"],
        )
        sent_bytes = CounterMetricFamily(
            "kubevod_nginx_cache_sent_bytes",
            "Response body bytes by $upstream_cache_status",
            labels=["status"],
        )
        for status, count in requests.items():
            by_status.add_metric([status], count)
            sent_bytes.add_metric([status], sent[status])
        yield by_status
        yield sent_bytes
        ratio = hit_ratio(requests)
        yield GaugeMetricFamily(
            "kubevod_nginx_cache_hit_ratio",
            "Cache lookups served from the cache (HIT, STALE, UPDATING, REVALIDATED) since start",
            value=ratio if ratio is not None else float("nan"),
        )
        if self.stub_status_url:
            yield from self._stub_status_metrics()

    def _stub_status_metrics(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        assert self.stub_status_url is not None
        stub = fetch_stub_status(self.stub_status_url)
        yield GaugeMetricFamily(
            "kubevod_nginx_up", "Whether stub_status answered", value=int(stub is not None)
        )
        if stub is None:
            return
        connections = GaugeMetricFamily(
            "kubevod_nginx_connections", "Client connections by state", labels=["state"]
        )
        for state in ("active", "reading", "writing", "waiting"):
            connections.add_metric([state], getattr(stub, state))
        yield connections
        yield CounterMetricFamily(
            "kubevod_nginx_connections_accepted", "Accepted connections", value=stub.accepts
        )
        yield CounterMetricFamily(
            "kubevod_nginx_connections_handled", "Handled connections", value=stub.handled
        )
        yield CounterMetricFamily(
            "kubevod_nginx_http_requests", "Client requests", value=stub.requests
        )


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the exporter until interrupted."""
    parser = argparse.ArgumentParser(
        prog="kubevod-nginx-exporter", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--access-log", type=Path, help="JSON access log file to tail")
    parser.add_argument(
        "--syslog", metavar="HOST:PORT", help="listen for nginx syslog datagrams (UDP)"
    )
    parser.add_argument("--stub-status", metavar="URL", help="nginx stub_status URL")
    parser.add_argument("--addr", default=os.environ.get("KUBEVOD_EXPORTER_ADDR", "0.0.0.0"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("KUBEVOD_EXPORTER_PORT", "9113"))
    )
    args = parser.parse_args(argv)
    if not (args.access_log or args.syslog or args.stub_status):
        parser.error("give at least one of --access-log, --syslog, --stub-status")
    stats = CacheStats()
    receiver = SyslogReceiver(stats, *_host_port(args.syslog)) if args.syslog else None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        NginxCollector(stats, access_log=args.access_log, stub_status_url=args.stub_status)
    )
    port = start_metrics_server(args.port, addr=args.addr, registry=registry)
    print(f"kubevod nginx exporter on {args.addr}:{port}/metrics", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if receiver is not None:
            receiver.close()


if __name__ == "__main__":
    main()
