"""Local mode against a hostile web page and a stranger, on a real ``kubevod serve``.

What a page on ``evil.example`` can make a browser send: a
rebound name (``Host: evil.example`` reaching 127.0.0.1), a cross-origin
DELETE or a form POST (``Origin``, ``Sec-Fetch-Site``). What a stranger reaching
the server through a reverse proxy on this machine (``X-Forwarded-For``, which
uvicorn trusts from 127.0.0.1) learns from an add. And a bind beyond loopback,
which makes every change need the token printed at start. Every request goes
to 127.0.0.1 only; 192.0.2.0/24 (TEST-NET-1) appears only inside headers.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.util import free_port
from tests.integration.local_mode import LocalServer, clip, kubevod, nas_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVIL = "http://evil.example"
#: A stranger's address, as a reverse proxy on this machine would pass it on.
STRANGER = {"X-Forwarded-For": "192.0.2.7"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("security-local")


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[LocalServer]:
    with nas_server(workdir / "data") as server:
        yield server


def _add(server: LocalServer, source: Path) -> dict[str, Any]:
    done = kubevod("add", str(source), "--no-wait", "--json", "--data", str(server.data))
    assert done.returncode == 0, done.stderr + server.log()
    video: dict[str, Any] = json.loads(done.stdout)
    return video


@pytest.fixture(scope="module")
def video(server: LocalServer, workdir: Path) -> dict[str, Any]:
    return _add(server, clip(workdir / "garden.mp4", seconds=1))


def test_a_rebound_host_name_gets_421_and_known_names_work(server: LocalServer) -> None:
    base = server.url
    with httpx.Client(timeout=10) as http:
        rebound = http.get(f"{base}/api/videos", headers={"Host": f"evil.example:{server.port}"})
        page = http.get(f"{base}/", headers={"Host": "evil.example"})
        ok = {
            host: http.get(f"{base}/api/videos", headers={"Host": host}).status_code
            for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "[::1]")
        }

    assert rebound.status_code == 421, rebound.text
    assert "evil.example" in rebound.json()["detail"]
    assert "KUBEVOD_ALLOWED_HOSTS" in rebound.json()["detail"]
    assert "items" not in rebound.text
    assert page.status_code == 421 and "<html" not in page.text.lower()
    assert ok == dict.fromkeys(ok, 200)


def test_a_cross_origin_delete_is_refused_and_the_video_stays(
    server: LocalServer, workdir: Path
) -> None:
    target = _add(server, clip(workdir / "keep.mp4", seconds=1.5))
    url = f"{server.url}/api/videos/{target['id']}"
    with httpx.Client(timeout=30) as http:
        refused = {
            "origin": http.delete(url, headers={"Origin": EVIL}),
            "null": http.delete(url, headers={"Origin": "null"}),
            "fetch-site": http.delete(url, headers={"Sec-Fetch-Site": "cross-site"}),
            # a simple (no preflight) cross-site form POST
            "form-post": http.post(
                f"{server.url}/api/videos",
                content=json.dumps({"source": "/etc/hostname"}),
                headers={"Origin": EVIL, "Content-Type": "text/plain"},
            ),
            "patch": http.patch(url, json={"title": "pwned"}, headers={"Origin": EVIL}),
        }
        still = http.get(url)
        same_origin = http.delete(
            url, headers={"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
        )
        gone = http.get(url)

    assert {k: r.status_code for k, r in refused.items()} == dict.fromkeys(refused, 403)
    assert "cross-origin" in refused["origin"].json()["detail"]
    assert still.status_code == 200 and still.json()["title"] == "keep"
    assert same_origin.status_code == 204, same_origin.text
    assert gone.status_code == 404


def test_a_stranger_learns_nothing_about_files_or_ports_from_an_add(
    server: LocalServer, workdir: Path
) -> None:
    closed = free_port()  # nothing listens there
    text = workdir / "notes.txt"
    text.write_text("not a video\n")
    sources = {
        "missing file": str(workdir / "no-such-file.mp4"),
        "text file": str(text),
        "shadow": "/etc/shadow",
        "closed port": f"http://127.0.0.1:{closed}/a.mp4",
        "open port": f"{server.url}/no-such-video.mp4",
    }
    with httpx.Client(base_url=server.url, timeout=60) as http:
        stranger = {
            name: http.post("/api/videos", json={"source": s}, headers=STRANGER)
            for name, s in sources.items()
        }
        owner = {name: http.post("/api/videos", json={"source": s}) for name, s in sources.items()}

    answers = {(r.status_code, r.text) for r in stranger.values()}
    assert len(answers) == 1, answers  # one answer whatever exists or answers
    ((status, body),) = answers
    assert status == 403 and "token" in json.loads(body)["detail"]
    for name, source in sources.items():
        assert source not in body and str(workdir) not in body, name
    # the owner (this machine, no proxy) still reads the precise reasons
    reasons = {name: r.json().get("detail", r.text) for name, r in owner.items()}
    assert all(r.status_code == 422 for r in owner.values()), reasons
    assert "no such file" in reasons["missing file"]
    assert "refused" in reasons["closed port"].lower(), reasons
    assert "404" in reasons["open port"], reasons
    assert len(set(reasons.values())) == len(reasons), reasons


def test_a_stranger_sees_the_library_but_cannot_change_it(
    server: LocalServer, video: dict[str, Any]
) -> None:
    url = f"{server.url}/api/videos/{video['id']}"
    with httpx.Client(timeout=30) as http:
        seen = http.get(url, headers=STRANGER)
        delete = http.delete(url, headers=STRANGER)
        patch = http.patch(url, json={"title": "x"}, headers=STRANGER)
        after = http.get(url)

    assert seen.status_code == 200
    assert (delete.status_code, patch.status_code) == (403, 403)
    assert after.status_code == 200 and after.json()["title"] == "garden"


@pytest.fixture(scope="module")
def exposed(workdir: Path) -> Iterator[LocalServer]:
    """``kubevod serve --host 0.0.0.0``: bound to every interface, reached on 127.0.0.1 only."""
    srv = LocalServer(workdir / "exposed", "--host", "0.0.0.0").start()
    try:
        yield srv
    finally:
        srv.stop()


def test_a_wildcard_bind_makes_a_token_printed_once_and_kept_owner_only(
    exposed: LocalServer,
) -> None:
    token_file = exposed.data / "api-token"
    token = token_file.read_text().strip()
    log = exposed.log()

    assert len(token) >= 32
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert log.count(token) == 2, log  # the token line and the #token= link, once each
    assert f"#token={token}" in log


def test_a_wildcard_bind_refuses_changes_without_the_token(
    exposed: LocalServer, workdir: Path
) -> None:
    token = (exposed.data / "api-token").read_text().strip()
    source = clip(workdir / "lan.mp4", seconds=1)
    with httpx.Client(base_url=exposed.url, timeout=60) as http:
        anonymous_add = http.post("/api/videos", json={"source": str(source)})
        wrong = http.post(
            "/api/videos",
            json={"source": str(source)},
            headers={"Authorization": "Bearer " + "x" * len(token)},
        )
        listing = http.get("/api/videos")
        rebound = http.get("/api/videos", headers={"Host": "evil.example"})
        by_address = http.get("/api/videos", headers={"Host": f"192.0.2.10:{exposed.port}"})

    assert anonymous_add.status_code == 401 and wrong.status_code == 401
    assert anonymous_add.headers["www-authenticate"] == "Bearer"
    assert listing.status_code == 200 and listing.json()["total"] == 0
    assert rebound.status_code == 421
    assert by_address.status_code == 200  # an IP-literal Host cannot come from rebinding

    # The CLI on this machine finds the token in the data folder.
    added = kubevod("add", str(source), "--no-wait", "--json", "--data", str(exposed.data))
    assert added.returncode == 0, added.stderr + exposed.log()
    video_id = json.loads(added.stdout)["id"]
    with httpx.Client(base_url=exposed.url, timeout=30) as http:
        anonymous_delete = http.delete(f"/api/videos/{video_id}")
    assert anonymous_delete.status_code == 401
    removed = kubevod("rm", video_id, "--data", str(exposed.data))
    assert removed.returncode == 0, removed.stderr
    assert httpx.get(f"{exposed.url}/api/videos/{video_id}").status_code == 404
    # a --server URL other than the one the data folder records never gets its token
    other = kubevod("rm", video_id, "--server", f"http://localhost:{exposed.port}")
    assert other.returncode != 0 and "401" in other.stderr, other.stderr
