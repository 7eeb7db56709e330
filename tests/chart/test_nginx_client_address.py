"""The chart's nginx.conf, run by real nginx: the API learns the real client, never a forged one.

The API rate-limits QoE beacons per client address, taken from the cache's
X-Forwarded-For. A client that sends its own X-Forwarded-For must not choose
that address; only the proxies named in ``cache.trustedProxies`` (the Ingress
controller) may name the client, through the realip.conf the chart renders.
"""

from __future__ import annotations

import http.server
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chart.helm import documents, find, template_text
from tests.chart.nginx_conf import local_values, render
from tests.fixtures.util import free_port


@pytest.fixture
def upstream() -> Iterator[tuple[int, list[str]]]:
    """A loopback API stand-in recording the X-Forwarded-For it is sent."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("X-Forwarded-For", ""))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def _realip_conf(tmp_path: Path, proxies: list[str]) -> str | None:
    docs = documents(template_text({"cache": {"trustedProxies": proxies}}, tmp=tmp_path).stdout)
    data: dict[str, str] = find(docs, "ConfigMap", "-cache")["data"]
    return data.get("realip.conf.template")


def _get(url: str, forwarded: str) -> None:
    request = urllib.request.Request(url, headers={"X-Forwarded-For": forwarded})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _start(nginx_factory: Any, tmp_path: Path, api_port: int, realip: str | None) -> str:
    if realip is not None:  # nginx_factory's first prefix; nginx.conf includes realip*.conf
        (tmp_path / "nginx-0").mkdir()
        (tmp_path / "nginx-0" / "realip.conf").write_text(realip)
    values = local_values(
        port=free_port(), api=f"127.0.0.1:{api_port}", media=f"127.0.0.1:{api_port}",
        media_prefix="/media/", access_log=str(tmp_path / "access.log"),
    )  # fmt: skip
    return str(nginx_factory(render(values)).url).rstrip("/")


def test_the_chart_renders_realip_only_for_trusted_proxies(tmp_path: Path) -> None:
    assert _realip_conf(tmp_path, []) is None
    conf = _realip_conf(tmp_path, ["10.42.0.0/16", "fd00::/8"])
    assert conf is not None
    assert conf.splitlines() == [
        "set_real_ip_from 10.42.0.0/16;",
        "set_real_ip_from fd00::/8;",
        "real_ip_header X-Forwarded-For;",
        "real_ip_recursive on;",
    ]


def test_a_forged_forwarded_for_never_reaches_the_api(
    nginx_factory: Any, upstream: tuple[int, list[str]], tmp_path: Path
) -> None:
    port, seen = upstream
    url = _start(nginx_factory, tmp_path, port, realip=None)
    _get(f"{url}/api/videos", "203.0.113.7")
    assert seen == ["127.0.0.1"]


def test_a_trusted_proxy_names_the_client(
    nginx_factory: Any, upstream: tuple[int, list[str]], tmp_path: Path
) -> None:
    port, seen = upstream
    realip = _realip_conf(tmp_path, ["127.0.0.1/32"])
    url = _start(nginx_factory, tmp_path, port, realip=realip)
    # Loopback is the "Ingress" here: the last address it appends is the client's.
    _get(f"{url}/api/videos", "203.0.113.7, 198.51.100.9")
    assert seen == ["198.51.100.9"]
