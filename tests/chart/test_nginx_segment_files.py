"""The chart's nginx.conf, run by real nginx: segments are stored and served as plain files.

A segment nginx has not seen goes through the internal fill server (the
proxy_cache with its lock) and is stored whole, with proxy_store, under
``segments/`` of nginx's prefix; from then on try_files serves it as a static
file. These tests use a loopback origin that counts what it is asked, and run
the chart's cache-janitor script against a folder of such files.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.chart.helm import documents, find, template_text
from tests.chart.nginx_conf import local_values, render
from tests.fixtures.util import free_port

IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass
class Origin:
    """A media origin on loopback: ``objects`` by path; every request is recorded."""

    port: int = 0
    objects: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    delay: float = 0.0
    truncate: set[str] = field(default_factory=set)


@pytest.fixture
def origin() -> Iterator[Origin]:
    yield from _serve(Origin())


@pytest.fixture
def api() -> Iterator[Origin]:
    """The API's media route: what the store lacks (a segment still being encoded)."""
    yield from _serve(Origin())


def _serve(state: Origin) -> Iterator[Origin]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            state.requests.append((self.command, self.path, self.headers.get("Range", "")))
            time.sleep(state.delay)
            body = state.objects.get(self.path.split("?")[0])
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Cache-Control", IMMUTABLE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.path in state.truncate:  # a connection lost mid-body
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class Front:
    url: str
    prefix: Path
    log: Path

    def stored(self, path: str) -> Path:
        return self.prefix / "segments" / path.lstrip("/")

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


@pytest.fixture
def front(
    nginx_factory: Callable[[str], Any], origin: Origin, api: Origin, tmp_path: Path
) -> Front:
    log = tmp_path / "access.log"
    values = local_values(
        port=free_port(), api=f"127.0.0.1:{api.port}", media=f"127.0.0.1:{origin.port}",
        media_prefix="/origin/", access_log=str(log),
    )  # fmt: skip
    server = nginx_factory(render(values))
    return Front(server.url, server.prefix, log)


def get(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def settle(path: Path) -> None:
    """proxy_store renames the file into place as the answer ends: allow it a moment."""
    deadline = time.monotonic() + 5
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_segment_is_stored_once_then_served_as_a_plain_file(front: Front, origin: Origin) -> None:
    body = os.urandom(300_000)
    origin.objects["/origin/v1/g1-ab/360p/1.m4s"] = body
    path = "/media/v1/g1-ab/360p/1.m4s"
    status, headers, first = get(front.url + path)
    assert (status, headers["x-cache-status"], first) == (200, "MISS", body)
    settle(front.stored(path))
    assert front.stored(path).read_bytes() == body
    status, headers, second = get(front.url + path + "?any=query")
    assert (status, headers["x-cache-status"], second) == (200, "HIT", body)
    assert headers["cache-control"] == IMMUTABLE
    assert headers["content-type"] == "video/mp4"
    assert headers["access-control-allow-origin"] == "*"
    assert not any(name.startswith("x-kv-") for name in headers)
    assert len(origin.requests) == 1
    logged = [e for e in front.entries() if e["uri"] == path]
    assert [(e["cache"], bool(e["upstream"])) for e in logged] == [("MISS", True), ("HIT", False)]
    assert logged[0]["upstream"] == f"127.0.0.1:{origin.port}"
    assert logged[0]["upstream_status"] == "200"


def test_head_and_range_requests_store_the_whole_segment(front: Front, origin: Origin) -> None:
    body = os.urandom(200_000)
    for seq in (1, 2):
        origin.objects[f"/origin/v2/g1-ab/360p/{seq}.m4s"] = body
    head = "/media/v2/g1-ab/360p/1.m4s"
    status, headers, content = get(front.url + head, method="HEAD")
    assert (status, headers["content-length"], content) == (200, str(len(body)), b"")
    ranged = "/media/v2/g1-ab/360p/2.m4s"
    status, headers, content = get(front.url + ranged, Range="bytes=100-1099")
    assert (status, content) == (206, body[100:1100])
    assert headers["content-range"] == f"bytes 100-1099/{len(body)}"
    for path in (head, ranged):
        settle(front.stored(path))
        assert front.stored(path).read_bytes() == body
    # The origin was asked for whole objects, with GET.
    assert sorted(origin.requests) == [
        ("GET", "/origin/v2/g1-ab/360p/1.m4s", ""),
        ("GET", "/origin/v2/g1-ab/360p/2.m4s", ""),
    ]
    status, headers, content = get(front.url + ranged, Range="bytes=-500")
    assert (status, headers["x-cache-status"], content) == (206, "HIT", body[-500:])


def test_missing_and_truncated_segments_are_never_stored(
    front: Front, origin: Origin, api: Origin
) -> None:
    missing = "/media/v3/g1-ab/360p/9.m4s"
    assert get(front.url + missing)[0] == 404
    assert [path for _, path, _ in api.requests] == [missing]  # the API said 404 too
    origin.objects["/origin/v3/g1-ab/360p/1.m4s"] = os.urandom(1_000_000)
    origin.truncate.add("/origin/v3/g1-ab/360p/1.m4s")
    with pytest.raises(Exception):  # noqa: B017 - the client sees the short body as an error
        get(front.url + "/media/v3/g1-ab/360p/1.m4s")
    time.sleep(0.3)
    assert not (front.prefix / "segments" / "media" / "v3").exists() or not any(
        p.is_file() for p in (front.prefix / "segments" / "media" / "v3").rglob("*")
    )


def test_a_burst_on_a_new_segment_makes_one_origin_fetch(front: Front, origin: Origin) -> None:
    body = os.urandom(1_000_000)
    origin.objects["/origin/v4/g1-ab/720p/7.m4s"] = body
    origin.delay = 0.5
    path = "/media/v4/g1-ab/720p/7.m4s"
    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda _: get(front.url + path), range(40)))
    assert all(status == 200 and content == body for status, _, content in answers)
    assert len(origin.requests) == 1
    settle(front.stored(path))
    assert front.stored(path).read_bytes() == body
    # One fill stored it; the rest of the burst waited on the fill server's lock.
    assert sum(1 for e in front.entries() if e["upstream"]) == 1
    assert not any(p.is_file() for p in (front.prefix / "temp-proxy").rglob("*"))


# --------------------------------------------------------------------------- the janitor


@pytest.fixture
def janitor(tmp_path: Path) -> Path:
    docs = documents(template_text({}, tmp=tmp_path).stdout)
    script = tmp_path / "cache-janitor.sh"
    script.write_text(find(docs, "ConfigMap", "-cache")["data"]["cache-janitor.sh"])
    deploy = find(docs, "Deployment", "-cache")["spec"]["template"]["spec"]
    sidecar = next(c for c in deploy["containers"] if c["name"] == "janitor")
    assert sidecar["command"] == ["/bin/sh", "/etc/nginx/templates/cache-janitor.sh"]
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    assert env["KUBEVOD_CACHE_MAX_SIZE"] == "8g"
    nginx = {m["name"]: m["mountPath"] for m in deploy["containers"][0]["volumeMounts"]}
    assert {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]}["cache"] == nginx["cache"]
    assert env["KUBEVOD_CACHE_DIR"] == nginx["cache"]
    return script


def _sweep(script: Path, cache: Path, max_size: str) -> None:
    env = dict(os.environ, KUBEVOD_CACHE_DIR=str(cache), KUBEVOD_CACHE_MAX_SIZE=max_size)
    subprocess.run(["sh", str(script), "--once"], env=env, check=True, timeout=60)


def test_janitor_removes_the_files_read_longest_ago_above_max_size(
    janitor: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    now = time.time()
    files = []
    for i in range(10):  # 10 x 100 KiB, file 0 read longest ago
        f = cache / "segments" / "media" / "v" / f"g1-{i}" / "360p" / "1.m4s"
        f.parent.mkdir(parents=True)
        f.write_bytes(b"x" * 100 * 1024)
        os.utime(f, (now - 3600 * (10 - i), now - 7200))
        files.append(f)
    _sweep(janitor, cache, "2m")  # under the limit: nothing goes
    assert all(f.exists() for f in files)
    _sweep(janitor, cache, "600k")  # keeps at most 90 % of 600 KiB (folders count too)
    kept = [f.exists() for f in files]
    gone = kept.index(True)
    assert kept == [False] * gone + [True] * (10 - gone), kept  # the oldest went first
    assert 3 <= 10 - gone <= 5, kept


def test_a_segment_the_store_lacks_is_answered_by_the_api_and_then_stored(
    front: Front, origin: Origin, api: Origin
) -> None:
    """A segment still being encoded (on demand: the API asks for its chunk and waits)."""
    body = os.urandom(150_000)
    path = "/media/v4/g1-ab/360p/7.m4s"
    api.objects[path] = body
    api.delay = 0.5  # the API waits for the encode
    status, headers, content = get(front.url + path + "?md5=x&expires=1")
    assert (status, content) == (200, body)
    assert headers["x-cache-status"] == "MISS"
    # The store was asked first, then the API, with the path and query it was given.
    assert [p for _, p, _ in origin.requests] == ["/origin/v4/g1-ab/360p/7.m4s"]
    assert [p for _, p, _ in api.requests] == [path + "?md5=x&expires=1"]
    settle(front.stored(path))
    assert front.stored(path).read_bytes() == body
    assert get(front.url + path)[1]["x-cache-status"] == "HIT"
    assert len(api.requests) == 1
