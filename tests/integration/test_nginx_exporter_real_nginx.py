"""The nginx exporter against real nginx serving a cached proxy.

nginx proxies ``/media/`` to an origin (a second nginx server block standing in
for MinIO) through ``proxy_cache``, logs every request as JSON (the exporter's
``LOG_FORMAT``) both to a file and over UDP syslog, and exposes ``stub_status``.
The exporter, run as a real process (``python -m kubevod.nginx_exporter``)
and in-process on the file, must count the HIT/MISS that ``X-Cache-Status``
showed the client.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kubevod.nginx_exporter import LOG_FORMAT, CacheStats, NginxCollector
from tests.fixtures.util import ROOT, free_port, wait_for_port

pytestmark = pytest.mark.integration

CONF = """
worker_processes 1;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path client_body_temp;
  proxy_temp_path proxy_temp;
  proxy_cache_path cache levels=1:2 keys_zone=media:1m max_size=16m inactive=1h use_temp_path=off;
  {log_format}
  server {{
    listen 127.0.0.1:{port};
    access_log logs/access.json kubevod_cache;
    access_log syslog:server=127.0.0.1:{syslog_port},nohostname,tag=nginx kubevod_cache;
    location /media/ {{
      proxy_pass http://127.0.0.1:{origin_port}/;
      proxy_cache media;
      proxy_cache_valid 200 1h;
      proxy_cache_lock on;
      add_header X-Cache-Status $upstream_cache_status;
    }}
    location /api/ {{ return 200 "manifest\\n"; }}
  }}
  server {{
    listen 127.0.0.1:{status_port};
    location = /stub_status {{ stub_status; }}
  }}
  server {{
    listen 127.0.0.1:{origin_port};
    root {origin_root};
  }}
}}
"""


def get(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.headers.get("X-Cache-Status", ""), response.read()


def samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items()))
            out[key] = sample.value
    return out


@pytest.fixture
def exporter_process() -> Iterator[Callable[..., tuple[int, int]]]:
    """Start ``python -m kubevod.nginx_exporter`` with a syslog port; yields (metrics, syslog)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(stub_status: str) -> tuple[int, int]:
        port, syslog_port = free_port(), free_port()
        argv = [sys.executable, "-m", "kubevod.nginx_exporter", "--addr", "127.0.0.1"]
        argv += ["--port", str(port), "--syslog", f"127.0.0.1:{syslog_port}"]
        argv += ["--stub-status", stub_status]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        started.append(subprocess.Popen(argv, env=env, cwd=ROOT))
        wait_for_port(port, 15)
        return port, syslog_port

    yield start
    for process in started:
        process.terminate()
        process.wait(5)


def test_exporter_counts_the_cache_hits_and_misses_clients_saw(
    nginx_factory: Any, exporter_process: Callable[..., tuple[int, int]], tmp_path: Path
) -> None:
    origin = tmp_path / "origin"
    origin.mkdir()
    (origin / "1.m4s").write_bytes(b"a" * 1000)
    (origin / "2.m4s").write_bytes(b"b" * 2000)
    port, status_port, origin_port = free_port(), free_port(), free_port()
    stub_url = f"http://127.0.0.1:{status_port}/stub_status"
    metrics_port, syslog_port = exporter_process(stub_url)
    nginx = nginx_factory(
        CONF.format(
            log_format=LOG_FORMAT,
            port=port,
            status_port=status_port,
            origin_port=origin_port,
            origin_root=origin,
            syslog_port=syslog_port,
        )
    )
    wait_for_port(origin_port, 10)
    in_process = CollectorRegistry()
    in_process.register(NginxCollector(CacheStats(), access_log=nginx.prefix / "logs/access.json"))

    seen = [get(f"{nginx.url}/media/{name}")[0] for name in ("1.m4s", "1.m4s", "2.m4s", "1.m4s")]
    assert seen == ["MISS", "HIT", "MISS", "HIT"]
    assert get(f"{nginx.url}/api/x")[1] == b"manifest\n"

    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as response:
            exported = samples(response.read().decode())
        if exported["kubevod_nginx_cache_requests_total{status=NONE}"] >= 1:
            break
        assert time.monotonic() < deadline, f"syslog lines did not arrive: {exported}"
        time.sleep(0.05)

    from_file = samples(generate_latest(in_process).decode())
    for view in (exported, from_file):
        assert view["kubevod_nginx_cache_requests_total{status=HIT}"] == 2
        assert view["kubevod_nginx_cache_requests_total{status=MISS}"] == 2
        assert view["kubevod_nginx_cache_requests_total{status=NONE}"] == 1
        assert view["kubevod_nginx_cache_sent_bytes_total{status=HIT}"] == 2000
        assert view["kubevod_nginx_cache_hit_ratio"] == 0.5
    assert exported["kubevod_nginx_up"] == 1
    assert exported["kubevod_nginx_http_requests_total"] >= 5
    assert exported["kubevod_nginx_connections{state=active}"] >= 1
