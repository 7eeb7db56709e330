"""Fetching sources over a real local HTTP server: limits, redirects, refused schemes, errors."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubevod.worker.errors import FetchError
from kubevod.worker.fetch import LocalSource, open_source
from kubevod.worker.pipeline import run

from kubevod.backends import open_store
from kubevod.catalog.sqlite import SqliteCatalog
from kubevod.errors import SourceError
from kubevod.fetchguard import FetchLimits, FetchPolicy
from kubevod.jobs import TranscodeJob
from kubevod.models import VideoState, new_video_id
from kubevod.store.file import FileStore
from kubevod.store.s3 import S3Store
from tests.fixtures.jobs import scheduled
from tests.fixtures.media import make_video
from tests.integration.worker_media import fast_settings

pytestmark = pytest.mark.integration

#: The test server is on loopback, which the guard refuses unless allowed (the NAS case).
LOOP = ["127.0.0.1/32"]
LOOPBACK = FetchPolicy.parse(allow=LOOP)
PAYLOAD = bytes(range(256)) * 400  # 100 KiB
TEN_GB = 10 * 1024**3


class Handler(BaseHTTPRequestHandler):
    video: bytes = b""

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path
        if path == "/ok.bin":
            self._send(200, PAYLOAD)
        elif path == "/video.mp4":
            self._send(200, self.video)
        elif path.startswith("/hop/"):
            n = int(path.rsplit("/", 1)[1])
            target = "/ok.bin" if n == 0 else f"/hop/{n - 1}"
            self._send(302, headers={"Location": target})
        elif path == "/loop":
            self._send(301, headers={"Location": "/loop"})
        elif path == "/to-file":
            self._send(302, headers={"Location": "file:///etc/passwd"})
        elif path == "/huge-declared":  # says 10 GB, sends a little
            self.send_response(200)
            self.send_header("Content-Length", str(TEN_GB))
            self.end_headers()
            self.wfile.write(b"\0" * 65536)
        elif path == "/huge-chunked":  # no length: streams until the client gives up
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"\0" * 65536
            try:
                for _ in range(TEN_GB // len(chunk)):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                return
        elif path == "/slow":
            time.sleep(3)
            self._send(200, PAYLOAD)
        else:
            self._send(404, b"not here")


def fetch(url: str, scratch: Path, **limits: float) -> LocalSource:
    """open_source with the loopback server allowed and the given FetchLimits fields."""
    return open_source(url, scratch, policy=LOOPBACK, limits=FetchLimits(**limits))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    Handler.video = make_video(tmp_path_factory.mktemp("http") / "v.mp4", seconds=2, width=320,
                               height=180).read_bytes()  # fmt: skip
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_source_is_streamed_to_scratch(server: str, tmp_path: Path) -> None:
    got = fetch(f"{server}/ok.bin", tmp_path, max_bytes=1024**2)
    assert got.downloaded and got.path.read_bytes() == PAYLOAD


def test_redirects_are_followed_up_to_the_cap(server: str, tmp_path: Path) -> None:
    # /hop/N answers with N+1 redirects before the file
    assert fetch(f"{server}/hop/2", tmp_path, max_redirects=3).path.read_bytes() == PAYLOAD
    with pytest.raises(FetchError, match="too many redirects"):
        fetch(f"{server}/hop/3", tmp_path, max_redirects=3)


def test_a_redirect_loop_ends(server: str, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="too many redirects"):
        fetch(f"{server}/loop", tmp_path)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("path", ["/huge-declared", "/huge-chunked"])
def test_size_limit_stops_a_10gb_response(server: str, tmp_path: Path, path: str) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"over the limit of 1\.0 MiB"):
        fetch(f"{server}{path}", tmp_path, max_bytes=1024**2)
    assert time.monotonic() - started < 10
    assert not list(tmp_path.iterdir()), "a partial download was left behind"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.mp4",
        "gopher://127.0.0.1/x",
        "javascript:alert(1)",
    ],
)
def test_non_http_schemes_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="refusing"):
        fetch(url, tmp_path)


def test_a_redirect_to_a_file_url_is_refused(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="refusing to fetch a file: URL"):
        fetch(f"{server}/to-file", tmp_path)


def test_http_errors_and_timeouts(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(f"{server}/nothing.mp4", tmp_path)
    with pytest.raises(FetchError, match="timed out"):
        fetch(f"{server}/slow", tmp_path, timeout=0.5)
    with pytest.raises(FetchError, match="cannot fetch"):
        fetch("http://127.0.0.1:9/none.mp4", tmp_path)  # nothing listens on discard


def test_s3_source_honours_the_bucket_it_names(minio: Any, tmp_path: Path) -> None:
    store = open_store(minio.store_url)
    assert isinstance(store, S3Store)
    client = minio.client()
    other = f"uploads-{uuid.uuid4().hex[:8]}"
    client.make_bucket(other)
    store.put_bytes("uploads/a.bin", PAYLOAD, content_type="application/octet-stream")
    store.with_bucket(other).put_bytes("a.bin", PAYLOAD[::-1], content_type="application/x")
    own = f"s3://{minio.bucket}/uploads/a.bin"
    assert open_source(own, tmp_path, store=store).path.read_bytes() == PAYLOAD
    # Another bucket is refused unless allowed, and read from that bucket when it is.
    with pytest.raises(FetchError, match=f"bucket '{other}' is not one sources may be read"):
        open_source(f"s3://{other}/a.bin", tmp_path, store=store)
    allowed = open_source(f"s3://{other}/a.bin", tmp_path, store=store, s3_buckets=(other,))
    assert allowed.path.read_bytes() == PAYLOAD[::-1]
    with pytest.raises(FetchError, match="no object"):
        open_source(f"s3://{minio.bucket}/uploads/missing.bin", tmp_path, store=store)
    with pytest.raises(FetchError, match="over the limit"):
        open_source(own, tmp_path, store=store, limits=FetchLimits(max_bytes=10))


def test_s3_source_needs_an_s3_store(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "media")
    with pytest.raises(FetchError, match="s3:// sources need an S3 object store"):
        open_source("s3://kubevod/uploads/a.bin", tmp_path, store=store)


def test_pipeline_transcodes_an_http_source_and_fails_cleanly_on_404(
    server: str, tmp_path: Path
) -> None:
    store, catalog = FileStore(tmp_path / "media"), SqliteCatalog(tmp_path / "c.db")
    try:
        ok = TranscodeJob(video_id=new_video_id(), source=f"{server}/video.mp4")
        video = run(
            scheduled(catalog, ok),
            store=store,
            catalog=catalog,
            settings=fast_settings(fetch_allow=LOOP),
        )
        assert video.state == VideoState.READY and video.title == "video"
        assert video.source == f"{server}/video.mp4"
        bad = TranscodeJob(video_id=new_video_id(), source=f"{server}/gone.mp4")
        with pytest.raises(SourceError, match="HTTP 404"):
            run(
                scheduled(catalog, bad),
                store=store,
                catalog=catalog,
                settings=fast_settings(fetch_allow=LOOP),
            )
        failed = catalog.get(bad.video_id)
        assert (
            failed.state == VideoState.FAILED
            and failed.message == "the source URL answered HTTP 404"
        )
    finally:
        catalog.close()
