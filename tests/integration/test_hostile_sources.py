"""Hostile sources against the real worker: one test per attack of the fetch guard and input policy.

A local HTTP server plays the attacker. It listens on 127.0.0.2, which the
tests' policy allows (as a user allows a NAS), and a "private" server on
127.0.0.1, the same port, stands for what the worker must never reach
(MinIO, the kubelet, a metadata service). Every test ends with the video
failed with a clear message, nothing published under ``videos/``, and the
private server never contacted.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubevod.worker.errors import Cancelled, TranscodeFailed
from kubevod.worker.pipeline import run
from kubevod.worker.settings import WorkerSettings

from kubevod.catalog.sqlite import SqliteCatalog
from kubevod.errors import SourceError
from kubevod.fetchguard import FetchLimits, FetchPolicy, FetchRefused, GuardedFetch, IPAddress
from kubevod.jobs import TranscodeJob
from kubevod.models import VideoState, new_video_id
from kubevod.store.file import FileStore
from tests.fixtures.jobs import scheduled
from tests.fixtures.media import make_video
from tests.integration.worker_media import fast_settings

pytestmark = pytest.mark.integration

ATTACKER = "127.0.0.2"  # allowed, like a NAS
PRIVATE = "127.0.0.1"  # never allowed


@dataclass
class Attacker:
    """What the attacker serves, and what reached the private server."""

    port: int
    video: bytes
    private_file: Path
    private_hits: list[str] = field(default_factory=list)
    hosts: list[tuple[str, str]] = field(default_factory=list)  # (Host header, local address)

    def url(self, path: str) -> str:
        return f"http://{ATTACKER}:{self.port}{path}"


def _handler(state: Attacker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, body: bytes, status: int = 200, **headers: str) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.server.server_address[0] == PRIVATE:  # type: ignore[index]
                state.private_hits.append(self.path)
                self._send(b"private: the root credentials are hunter2\n" * 100)
                return
            private = f"http://{PRIVATE}:{state.port}/secret"
            playlist = (
                f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{state.private_file}\n"
                "#EXT-X-ENDLIST\n"
            ).encode()
            routes: dict[str, Any] = {
                "/redirect-loopback": lambda: self._send(b"", 302, Location=private),
                "/redirect-ipv6": lambda: self._send(
                    b"", 302, Location=f"http://[::1]:{state.port}/secret"
                ),
                "/redirect-metadata": lambda: self._send(
                    b"", 302, Location="http://169.254.169.254/latest/meta-data/"
                ),
                "/redirect-private-name": lambda: self._send(
                    b"", 302, Location=f"http://localhost:{state.port}/secret"
                ),
                "/text.mp4": lambda: self._send(b"SECRET TEXT ON A FRAME\n" * 200),
                "/playlist.mp4": lambda: self._send(playlist),
                "/concat.mp4": lambda: self._send(
                    f"ffconcat version 1.0\nfile '{state.private_file}'\n".encode()
                ),
                "/per-agent.mp4": lambda: self._send(
                    state.video if "Lavf" in self.headers.get("User-Agent", "") else playlist
                ),
                "/video.mp4": lambda: self._send(state.video),
            }
            if self.path == "/host":
                state.hosts.append((self.headers.get("Host", ""), self.connection.getsockname()[0]))
                self._send(state.video)
            elif self.path == "/trickle.mp4":
                self.send_response(200)
                self.send_header("Content-Length", str(10 * 1024**2))
                self.end_headers()
                try:
                    for _ in range(10_000):
                        self.wfile.write(b"\0")
                        self.wfile.flush()
                        time.sleep(0.1)
                except (BrokenPipeError, ConnectionResetError):
                    return
            elif self.path in routes:
                routes[self.path]()
            else:
                self._send(b"not here", 404)

    return Handler


@pytest.fixture(scope="module")
def attacker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Attacker]:
    folder = tmp_path_factory.mktemp("attacker")
    private_file = make_video(folder / "private-recording.mp4", seconds=2, width=320, height=180)
    video = make_video(folder / "public.mp4", seconds=2, width=320, height=180).read_bytes()
    evil = ThreadingHTTPServer((ATTACKER, 0), BaseHTTPRequestHandler)
    port = evil.server_address[1]
    state = Attacker(port, video, private_file)
    evil.RequestHandlerClass = _handler(state)
    private = ThreadingHTTPServer((PRIVATE, port), _handler(state))
    servers = [evil, private]
    for httpd in servers:
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield state
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def settings(**changes: Any) -> WorkerSettings:
    """The tests' worker: the attacker's address allowed (a NAS), loopback itself not."""
    return fast_settings(fetch_allow=[f"{ATTACKER}/32"], **changes)


def transcode_fails(source: str, tmp_path: Path, match: str, **changes: Any) -> str:
    """Run the real pipeline on ``source``; assert it fails cleanly and publishes nothing."""
    store, catalog = FileStore(tmp_path / "media"), SqliteCatalog(tmp_path / "catalog.db")
    job = TranscodeJob(video_id=new_video_id(), source=source)
    try:
        with pytest.raises((SourceError, TranscodeFailed), match=match):
            run(scheduled(catalog, job), store=store, catalog=catalog, settings=settings(**changes))
        video = catalog.get(job.video_id)
        assert video.state == VideoState.FAILED and not video.playable
        assert "\n" not in video.message and len(video.message) <= 300
        assert catalog.segments(job.video_id) == []
        assert list(store.list(f"videos/{job.video_id}/")) == [], "something was published"
        return video.message
    finally:
        catalog.close()


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/redirect-loopback", "127.0.0.1 is a loopback address"),
        ("/redirect-ipv6", "::1 is a loopback address"),
        ("/redirect-private-name", "is a loopback address"),
        ("/redirect-metadata", "169.254.169.254 is a cloud metadata address"),
    ],
)
def test_a_redirect_to_an_internal_address_is_refused_before_connecting(
    attacker: Attacker, tmp_path: Path, path: str, reason: str
) -> None:
    before = len(attacker.private_hits)
    message = transcode_fails(attacker.url(path), tmp_path, match=reason)
    if "loopback" in reason:
        assert "fetch allow setting" in message  # the owner learns how to allow a NAS
    assert len(attacker.private_hits) == before, "the private server was contacted"


def test_an_internal_url_named_directly_is_refused(attacker: Attacker, tmp_path: Path) -> None:
    transcode_fails(f"http://{PRIVATE}:{attacker.port}/secret", tmp_path, match="loopback")
    assert attacker.private_hits == []


@pytest.mark.parametrize(
    ("path", "what"),
    [
        ("/text.mp4", "text under a video name"),
        ("/playlist.mp4", "an HLS playlist naming a local recording"),
        ("/concat.mp4", "a concat list naming a local recording"),
        ("/per-agent.mp4", "a video to ffmpeg's User-Agent, a playlist to the fetcher"),
    ],
)
def test_what_is_not_a_video_container_is_never_decoded(
    attacker: Attacker, tmp_path: Path, path: str, what: str
) -> None:
    message = transcode_fails(attacker.url(path), tmp_path, match="not a")
    assert "not a video container" in message or "not a readable media file" in message, what
    assert str(attacker.private_file) not in message


def test_a_local_playlist_file_cannot_name_other_local_files(
    attacker: Attacker, tmp_path: Path
) -> None:
    playlist = tmp_path / "holiday.mp4"
    playlist.write_text(f"#EXTM3U\n#EXTINF:10,\n{attacker.private_file}\n#EXT-X-ENDLIST\n")
    transcode_fails(str(playlist), tmp_path, match="not a")


def test_a_trickling_server_is_cut_off_at_the_deadline(attacker: Attacker, tmp_path: Path) -> None:
    started = time.monotonic()
    transcode_fails(
        attacker.url("/trickle.mp4"), tmp_path, match=r"took longer than 1\.5 s",
        fetch_deadline=1.5, http_timeout=1.0,
    )  # fmt: skip
    assert time.monotonic() - started < 6


def test_the_connection_goes_to_the_checked_address_not_a_second_answer(
    attacker: Attacker, tmp_path: Path
) -> None:
    """DNS rebinding: the first answer is allowed, every later one is private. One lookup
    is made, and the request is sent to that address with the name in Host."""
    answers: list[str] = []

    def rebinding(host: str, port: int) -> list[IPAddress]:
        import ipaddress

        answers.append(host)
        return [ipaddress.ip_address(ATTACKER if len(answers) == 1 else PRIVATE)]

    policy = FetchPolicy.parse(allow=[f"{ATTACKER}/32"])
    fetch = GuardedFetch(policy, FetchLimits(timeout=5, deadline=10), resolve=rebinding)
    got = fetch.download(f"http://media.test:{attacker.port}/host", tmp_path / "a.bin")
    assert got.read_bytes() == attacker.video
    assert answers == ["media.test"]
    assert attacker.hosts[-1] == (f"media.test:{attacker.port}", ATTACKER)
    assert attacker.private_hits == []
    with pytest.raises(FetchRefused, match="loopback"):  # the second lookup would be refused
        fetch.download(f"http://media.test:{attacker.port}/host", tmp_path / "b.bin")


def test_an_oversized_source_is_refused_before_decoding(attacker: Attacker, tmp_path: Path) -> None:
    transcode_fails(
        attacker.url("/video.mp4"), tmp_path, match=r"320x180 \(0\.1 Mpx\), over the limit",
        max_pixels=160 * 90,
    )  # fmt: skip


def test_a_transcode_past_its_time_limit_is_stopped(tmp_path: Path) -> None:
    source = make_video(tmp_path / "long.mp4", seconds=30, width=640, height=360)
    started = time.monotonic()
    transcode_fails(str(source), tmp_path, match="ran longer than 1 s", transcode_timeout=1.0)
    assert time.monotonic() - started < 20
    leftover = subprocess.run(["pgrep", "-f", str(source)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "ffmpeg was left running"


def test_ffmpeg_runs_without_the_workers_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker holds the store and catalog URLs; the ffmpeg it runs must not."""
    secret = "s3://root:hunter2@minio:9000/kubevod"
    monkeypatch.setenv("KUBEVOD_STORE_URL", secret)
    monkeypatch.setenv("KUBEVOD_CATALOG_URL", "mongodb://root:hunter2@mongo/kubevod")
    source = make_video(tmp_path / "envcheck.mp4", seconds=20, width=640, height=360)
    store, catalog = FileStore(tmp_path / "media"), SqliteCatalog(tmp_path / "catalog.db")
    cancel = threading.Event()
    job = TranscodeJob(video_id=new_video_id(), source=str(source))
    done: list[BaseException] = []

    def transcode() -> None:
        try:
            run(
                scheduled(catalog, job),
                store=store,
                catalog=catalog,
                cancel=cancel,
                settings=fast_settings(),
            )
        except BaseException as exc:  # handed to the test thread
            done.append(exc)

    thread = threading.Thread(target=transcode)
    thread.start()
    environs: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while not environs and time.monotonic() < deadline and thread.is_alive():
            found = subprocess.run(["pgrep", "-f", str(source)], capture_output=True, text=True)
            for pid in found.stdout.split():
                if int(pid) != os.getpid():
                    with contextlib.suppress(OSError):  # it may have ended meanwhile
                        environs.append(Path(f"/proc/{pid}/environ").read_bytes())
            time.sleep(0.05)
    finally:
        cancel.set()
        thread.join(60)
        catalog.close()
    assert environs, "no ffmpeg or ffprobe of the source was seen running"
    assert isinstance(done[0], Cancelled)
    for environ in environs:
        names = [item.split(b"=", 1)[0] for item in environ.split(b"\0") if item]
        assert b"PATH" in names
        assert not [n for n in names if n.startswith(b"KUBEVOD_")]
        assert b"hunter2" not in environ
