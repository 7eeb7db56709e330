"""The chart's nginx.conf, run by real nginx: writes on /api/ need the API token.

An upstream stand-in records every request that gets through, so each test
can tell "nginx refused it" (the upstream never saw it) from "the API
answered". The API checks the token again itself (api/ tests); here only the
cache tier is under test, as the cluster runs it.
"""

from __future__ import annotations

import http.server
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.chart.nginx_conf import local_values, render
from tests.fixtures.util import free_port

TOKEN = "Zq8xWm3Lr5Tn7Vb9Kd2Hs4Jf6Gp1Ac0Ye"


@dataclass
class Upstream:
    """A loopback HTTP server answering 200 to everything and recording it."""

    seen: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, auth
    port: int = 0


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    record = Upstream()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            auth = self.headers.get("Authorization") or ""
            record.seen.append((self.command, self.path, auth))
            body = b'{"ok":true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _any

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield record
    server.shutdown()
    server.server_close()


def _cache(nginx_factory: Any, upstream: Upstream, tmp_path: Path, token: str) -> str:
    values = local_values(
        port=free_port(),
        api=f"127.0.0.1:{upstream.port}",
        media=f"127.0.0.1:{upstream.port}",
        media_prefix="/media/",
        access_log=str(tmp_path / "access.log"),
        api_token=token,
    )
    server = nginx_factory(render(values))
    return str(server.url).rstrip("/")


def _call(url: str, method: str, auth: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    data = b'{"title":"x"}' if method in ("POST", "PUT", "PATCH") else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


@pytest.mark.parametrize("method", ["PATCH", "DELETE", "POST", "PUT"])
def test_a_write_without_the_token_is_refused_by_nginx_with_401(
    nginx_factory: Any, upstream: Upstream, tmp_path: Path, method: str
) -> None:
    url = _cache(nginx_factory, upstream, tmp_path, TOKEN)
    code, body, headers = _call(f"{url}/api/videos/abc", method)
    assert code == 401, body
    assert b"API token" in body
    assert headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert upstream.seen == []


@pytest.mark.parametrize(
    "auth", [f"Bearer {TOKEN}x", f"Bearer {TOKEN.lower()}", TOKEN, f"Basic {TOKEN}", "Bearer "]
)
def test_a_write_with_a_wrong_token_is_refused_with_403(
    nginx_factory: Any, upstream: Upstream, tmp_path: Path, auth: str
) -> None:
    url = _cache(nginx_factory, upstream, tmp_path, TOKEN)
    code, body, _ = _call(f"{url}/api/videos/abc", "DELETE", auth)
    assert code == 403, body
    assert upstream.seen == []


def test_a_write_with_the_token_reaches_the_api_with_its_header(
    nginx_factory: Any, upstream: Upstream, tmp_path: Path
) -> None:
    url = _cache(nginx_factory, upstream, tmp_path, TOKEN)
    code, _, _ = _call(f"{url}/api/videos/abc", "PATCH", f"Bearer {TOKEN}")
    assert code == 200
    assert upstream.seen == [("PATCH", "/api/videos/abc", f"Bearer {TOKEN}")]


def test_reads_and_qoe_beacons_need_no_token(
    nginx_factory: Any, upstream: Upstream, tmp_path: Path
) -> None:
    url = _cache(nginx_factory, upstream, tmp_path, TOKEN)
    assert _call(f"{url}/api/videos", "GET")[0] == 200
    assert _call(f"{url}/api/videos", "HEAD")[0] == 200
    assert _call(f"{url}/api/qoe", "POST")[0] == 200
    assert [m for m, _, _ in upstream.seen] == ["GET", "HEAD", "POST"]
    # A beacon path is exactly /api/qoe: a look-alike is still a guarded write.
    assert _call(f"{url}/api/qoe/../videos/abc", "DELETE")[0] in (400, 401)
    assert _call(f"{url}/api/qoex", "POST")[0] == 401


def test_with_no_token_configured_every_write_is_refused(
    nginx_factory: Any, upstream: Upstream, tmp_path: Path
) -> None:
    url = _cache(nginx_factory, upstream, tmp_path, "")
    assert _call(f"{url}/api/videos/abc", "DELETE")[0] == 401
    assert _call(f"{url}/api/videos/abc", "DELETE", "Bearer ")[0] == 403
    assert _call(f"{url}/api/videos/abc", "DELETE", "Bearer")[0] == 403
    assert upstream.seen == []
