"""The chart's nginx.conf, run by real nginx in front of real MinIO and a real HTTP API.

The API upstream is a small threaded HTTP server standing in for the API's
manifest routes: it counts requests and renders a playlist whose text changes
on every call, which is what the microcache tests need to see.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chart.nginx_conf import NGINX_TLS_CONF, local_values, render
from tests.fixtures.servers import MinioServer, NginxServer
from tests.fixtures.util import free_port

pytestmark = pytest.mark.integration

BUCKET = "kubevod-nginx"
IMMUTABLE = "public, max-age=31536000, immutable"


# --------------------------------------------------------------------------- upstreams


@dataclass
class FakeApi:
    """A real HTTP server playing the API's manifest routes."""

    port: int
    calls: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)
    media: list[str] = field(default_factory=list)  # /media/ paths the cache asked for


def _serve_api() -> tuple[FakeApi, ThreadingHTTPServer]:
    api = FakeApi(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            api.calls += 1
            api.headers.append({k.lower(): v for k, v in self.headers.items()})
            if self.path.startswith("/media/"):
                # What the store lacks, asked by the cache: nothing is being encoded here.
                api.media.append(self.path)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path.startswith("/v/"):
                body = f"#EXTM3U\n#EXT-X-VERSION:7\n# render {api.calls}\n".encode()
                body += b"#EXT-X-STREAM-INF:BANDWIDTH=800000\n360p/index.m3u8\n" * 20
                ctype = "application/vnd.apple.mpegurl"
            else:
                body, ctype = b'{"ok": true}', "application/json"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            # As the API does for an EVENT playlist: players must always revalidate.
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    api.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return api, server


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api, server = _serve_api()
    yield api
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def media_bucket(minio: MinioServer) -> str:
    """A bucket whose ``videos/*`` is anonymously readable, as the chart's bucket job sets."""
    client = minio.client()
    if not client.bucket_exists(BUCKET):
        client.make_bucket(BUCKET)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{BUCKET}/videos/*"],
            }
        ],
    }
    client.set_bucket_policy(BUCKET, json.dumps(policy))
    return BUCKET


def put_segment(minio: MinioServer, key: str, size: int = 256 * 1024) -> bytes:
    """Upload a segment-like object with the worker's Cache-Control; return its bytes."""
    payload = hashlib.sha256(key.encode()).digest() * (size // 32)
    minio.client().put_object(
        BUCKET,
        f"videos/{key}",
        io.BytesIO(payload),
        len(payload),
        content_type="video/mp4",
        metadata={"Cache-Control": IMMUTABLE},
    )
    return payload


@dataclass
class Cache:
    """nginx started from the chart's conf, with its access log."""

    server: NginxServer
    log: Path

    @property
    def url(self) -> str:
        return self.server.url

    def origin_fetches(self, path: str) -> int:
        """How many requests for ``path`` nginx sent to an upstream."""
        if not self.log.exists():
            return 0
        entries = [json.loads(line) for line in self.log.read_text().splitlines() if line]
        return sum(1 for e in entries if path in e["request"] and e["upstream"])


@pytest.fixture
def start_cache(
    nginx_factory: Callable[[str], NginxServer],
    minio: MinioServer,
    media_bucket: str,
    fake_api: FakeApi,
    tmp_path: Path,
) -> Callable[..., Cache]:
    def start(signing_secret: str = "", manifest_ttl: str = "1s") -> Cache:
        log = tmp_path / f"access-{free_port()}.log"
        values = local_values(
            port=free_port(),
            api=f"127.0.0.1:{fake_api.port}",
            media=minio.endpoint,
            media_prefix=f"/{media_bucket}/videos/",
            access_log=str(log),
            signing_secret=signing_secret,
            manifest_ttl=manifest_ttl,
        )
        return Cache(nginx_factory(render(values)), log)

    return start


def _unique(name: str) -> str:
    return f"{name}-{time.monotonic_ns()}"


# --------------------------------------------------------------------------- segments


def test_second_request_for_a_segment_is_a_cache_hit(
    minio: MinioServer, start_cache: Callable[..., Cache]
) -> None:
    vid = _unique("hit")
    payload = put_segment(minio, f"{vid}/g1/360p/1.m4s")
    cache = start_cache()
    url = f"{cache.url}/media/{vid}/g1/360p/1.m4s"
    first, second = httpx.get(url), httpx.get(url)
    assert (first.status_code, first.headers["x-cache-status"]) == (200, "MISS")
    assert (second.status_code, second.headers["x-cache-status"]) == (200, "HIT")
    assert first.content == second.content == payload
    assert second.headers["content-type"] == "video/mp4"
    assert "immutable" in second.headers["cache-control"]
    assert "x-amz-request-id" not in second.headers
    assert cache.origin_fetches(f"/media/{vid}/") == 1


@pytest.mark.slow
def test_burst_of_500_viewers_on_an_uncached_segment_makes_one_origin_fetch(
    minio: MinioServer, start_cache: Callable[..., Cache]
) -> None:
    vid = _unique("burst")
    payload = put_segment(minio, f"{vid}/g1/720p/7.m4s", size=2 * 1024 * 1024)
    cache = start_cache()
    url = f"{cache.url}/media/{vid}/g1/720p/7.m4s"

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=500, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            return await asyncio.gather(*(client.get(url) for _ in range(500)))

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 500
    assert all(r.content == payload for r in responses)
    assert cache.origin_fetches(f"/media/{vid}/") == 1


@pytest.mark.slow
def test_cached_segments_keep_playing_while_minio_is_down_and_uncached_fail_fast(
    minio: MinioServer, start_cache: Callable[..., Cache]
) -> None:
    vid = _unique("outage")
    payload = put_segment(minio, f"{vid}/g1/360p/1.m4s")
    put_segment(minio, f"{vid}/g1/360p/2.m4s")
    cache = start_cache()
    cached = f"{cache.url}/media/{vid}/g1/360p/1.m4s"
    assert httpx.get(cached).status_code == 200
    minio.stop()
    try:
        hit = httpx.get(cached, timeout=10)
        assert (hit.status_code, hit.headers["x-cache-status"]) == (200, "HIT")
        assert hit.content == payload
        started = time.monotonic()
        miss = httpx.get(f"{cache.url}/media/{vid}/g1/360p/2.m4s", timeout=30)
        assert miss.status_code in (502, 504)
        assert time.monotonic() - started < 5
    finally:
        minio.start()
    again = httpx.get(f"{cache.url}/media/{vid}/g1/360p/2.m4s")
    assert again.status_code == 200


def test_range_requests_are_answered_through_the_cache(
    minio: MinioServer, start_cache: Callable[..., Cache]
) -> None:
    vid = _unique("range")
    payload = put_segment(minio, f"{vid}/g1/360p/3.m4s")
    cache = start_cache()
    url = f"{cache.url}/media/{vid}/g1/360p/3.m4s"
    first = httpx.get(url, headers={"Range": "bytes=100-1099"})
    assert first.status_code == 206
    assert first.content == payload[100:1100]
    assert first.headers["content-range"] == f"bytes 100-1099/{len(payload)}"
    cached = httpx.get(url, headers={"Range": "bytes=-500"})
    assert (cached.status_code, cached.headers["x-cache-status"]) == (206, "HIT")
    assert cached.content == payload[-500:]
    beyond = httpx.get(url, headers={"Range": f"bytes={len(payload) + 10}-"})
    assert beyond.status_code == 416
    assert cache.origin_fetches(f"/media/{vid}/") == 1


def test_missing_segment_is_404_and_query_strings_do_not_split_the_cache(
    minio: MinioServer, start_cache: Callable[..., Cache], fake_api: FakeApi
) -> None:
    vid = _unique("query")
    put_segment(minio, f"{vid}/g1/360p/1.m4s")
    cache = start_cache()
    assert httpx.get(f"{cache.url}/media/{vid}/g1/360p/404.m4s").status_code == 404
    assert fake_api.media == [f"/media/{vid}/g1/360p/404.m4s"]  # the API had none either
    base = f"{cache.url}/media/{vid}/g1/360p/1.m4s"
    assert httpx.get(f"{base}?a=1").headers["x-cache-status"] == "MISS"
    assert httpx.get(f"{base}?b=2").headers["x-cache-status"] == "HIT"


# --------------------------------------------------------------------------- manifests


def test_manifests_are_microcached_and_fresh_within_the_window(
    fake_api: FakeApi, start_cache: Callable[..., Cache]
) -> None:
    cache = start_cache(manifest_ttl="1s")
    url = f"{cache.url}/v/abc/master.m3u8"
    first, second = httpx.get(url), httpx.get(url)
    assert first.text == second.text
    assert second.headers["x-cache-status"] == "HIT"
    assert second.headers["cache-control"] == "no-cache"
    assert fake_api.calls == 1
    # nginx keeps cache validity in whole seconds: a 1 s entry lives 1 to 2 s.
    time.sleep(2.05)
    third = httpx.get(url)
    assert third.text != first.text
    assert fake_api.calls == 2


def test_manifests_are_gzipped_and_trace_context_reaches_the_api(
    fake_api: FakeApi, start_cache: Callable[..., Cache]
) -> None:
    cache = start_cache()
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = httpx.get(
        f"{cache.url}/v/trace/master.m3u8",
        headers={"traceparent": parent, "Accept-Encoding": "gzip"},
    )
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert r.text.startswith("#EXTM3U")
    assert fake_api.headers[-1]["traceparent"] == parent
    assert fake_api.headers[-1]["x-forwarded-for"] == "127.0.0.1"


def test_api_routes_pass_through_and_metrics_are_not_public(
    fake_api: FakeApi, start_cache: Callable[..., Cache]
) -> None:
    cache = start_cache()
    assert httpx.get(f"{cache.url}/api/videos").json() == {"ok": True}
    assert httpx.get(f"{cache.url}/metrics").status_code == 404
    assert httpx.get(f"{cache.url}/nginx-healthz").text == "ok\n"


# --------------------------------------------------------------------------- signed URLs


def sign(video_id: str, expires: int, secret: str) -> str:
    """The signature the conf checks: base64url(md5("<expires>/<id> <secret>"))."""
    digest = hashlib.md5(f"{expires}/{video_id} {secret}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def test_signed_urls_refuse_tampered_foreign_and_expired_links(
    minio: MinioServer, start_cache: Callable[..., Cache]
) -> None:
    secret = "test-signing-secret"
    vid, other = _unique("signed"), _unique("other")
    payload = put_segment(minio, f"{vid}/g1/360p/1.m4s")
    put_segment(minio, f"{other}/g1/360p/1.m4s")
    cache = start_cache(signing_secret=secret)
    expires = int(time.time()) + 600
    token = sign(vid, expires, secret)

    def get(video: str, md5: str | None, exp: int) -> httpx.Response:
        query = f"?md5={md5}&expires={exp}" if md5 is not None else ""
        return httpx.get(f"{cache.url}/media/{video}/g1/360p/1.m4s{query}")

    good = get(vid, token, expires)
    assert good.status_code == 200
    assert good.content == payload
    assert get(vid, None, expires).status_code == 403
    tampered = ("A" if token[0] != "A" else "B") + token[1:]
    assert get(vid, tampered, expires).status_code == 403
    assert get(vid, token, expires + 1).status_code == 403
    assert get(other, token, expires).status_code == 403
    past = int(time.time()) - 5
    assert get(vid, sign(vid, past, secret), past).status_code == 410
    manifest = f"{cache.url}/v/{vid}/master.m3u8"
    assert httpx.get(manifest).status_code == 403
    assert httpx.get(f"{manifest}?md5={token}&expires={expires}").status_code == 200


# --------------------------------------------------------------------------- the real API


@pytest.fixture
def real_api(minio: MinioServer, media_bucket: str, tmp_path: Path) -> Iterator[tuple[int, str]]:
    """``kubevod-api`` as shipped (its entry point), on MinIO and a SQLite catalog.

    Yields (port, video id) of a ready two-segment video whose objects are in MinIO.
    """
    import os
    import subprocess
    import sys

    from kubevod.backends import open_catalog
    from kubevod.models import Rendition, Segment, TrackKind, Video, VideoState
    from tests.fixtures.util import ServerProcess, wait_for_port

    vid = _unique("api")
    video = Video(
        id=vid, title="Through the cache", state=VideoState.READY, duration=8.0,
        renditions=[
            Rendition(name="360p", width=640, height=360, frame_rate=30.0, bandwidth=800_000,
                      average_bandwidth=700_000, codecs="avc1.64001e"),
            Rendition(name="audio", kind=TrackKind.AUDIO, bandwidth=128_000, codecs="mp4a.40.2",
                      timescale=48_000, language="en", channels=2, sample_rate=48_000),
        ],
    )  # fmt: skip
    catalog_url = f"sqlite://{tmp_path / 'catalog.db'}"
    catalog = open_catalog(catalog_url)
    try:
        catalog.create(video)
        for r in video.renditions:
            prefix = f"{video.media_prefix()}/{r.name}"
            put_segment(minio, f"{prefix.removeprefix('videos/')}/init.mp4", size=1024)
            for seq in range(2):
                key = f"{prefix}/{seq}.m4s"
                put_segment(minio, key.removeprefix("videos/"))
                catalog.add_segment(vid, Segment(rendition=r.name, seq=seq, duration=4.0,
                                                 start=seq * 4.0, key=key))  # fmt: skip
    finally:
        catalog.close()
    port = free_port()
    env = dict(
        os.environ,
        KUBEVOD_CATALOG_URL=catalog_url,
        KUBEVOD_STORE_URL=(f"s3://{minio.access_key}:{minio.secret_key}@{minio.endpoint}"
                           f"/{media_bucket}?secure=false"),
        KUBEVOD_MEDIA_BASE_URL="/media", KUBEVOD_HOST="127.0.0.1", KUBEVOD_PORT=str(port),
        KUBEVOD_DATA_DIR=str(tmp_path / "data"), OTEL_SDK_DISABLED="true",
    )  # fmt: skip
    argv = [sys.executable, "-m", "kubevod.api.main"]
    log = tmp_path / "api.log"
    api = ServerProcess("kubevod-api", argv, log, env=env, stdin=subprocess.DEVNULL).start()
    try:
        wait_for_port(port, 30)
        yield port, vid
    finally:
        api.stop()


def test_real_api_manifests_and_minio_segments_play_through_the_cache(
    real_api: tuple[int, str], nginx_factory: Callable[[str], NginxServer],
    minio: MinioServer, media_bucket: str, tmp_path: Path,
) -> None:  # fmt: skip
    port, vid = real_api
    values = local_values(
        port=free_port(), api=f"127.0.0.1:{port}", media=minio.endpoint,
        media_prefix=f"/{media_bucket}/videos/", access_log=str(tmp_path / "access.log"),
    )  # fmt: skip
    cache = nginx_factory(render(values))
    master = httpx.get(f"{cache.url}/v/{vid}/master.m3u8")
    assert master.status_code == 200, master.text
    assert master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    variant = next(line for line in master.text.splitlines() if line and line[0] != "#")
    media = httpx.get(f"{cache.url}/v/{vid}/{variant}")
    assert media.status_code == 200
    uris = [line for line in media.text.splitlines() if line and line[0] != "#"]
    init = media.text.split('#EXT-X-MAP:URI="', 1)[1].split('"', 1)[0]
    assert uris[0].startswith(f"/media/{vid}/g")
    for uri in (init, *uris):
        first, again = httpx.get(f"{cache.url}{uri}"), httpx.get(f"{cache.url}{uri}")
        assert first.status_code == again.status_code == 200, uri
        assert again.headers["x-cache-status"] == "HIT"
        assert first.content == again.content
    assert httpx.get(f"{cache.url}/healthz").status_code == 200
    assert httpx.get(f"{cache.url}/metrics").status_code == 404


# --------------------------------------------------------------------------- TLS + HTTP/2


def test_tls_listener_speaks_http2_and_serves_from_the_same_cache(
    minio: MinioServer, media_bucket: str, fake_api: FakeApi,
    nginx_factory: Callable[[str], NginxServer], tmp_path: Path,
) -> None:  # fmt: skip
    import shutil
    import subprocess

    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl (with nghttp2) is needed to speak HTTP/2")
    vid = _unique("tls")
    payload = put_segment(minio, f"{vid}/g1/360p/1.m4s")
    certs = tmp_path / "certs"
    certs.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(certs / "tls.key"), "-out", str(certs / "tls.crt"),
         "-subj", "/CN=kubevod.local", "-addext", "subjectAltName=DNS:kubevod.local"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    tls_port = free_port()
    # nginx_factory keeps its first server's files in tmp_path/"nginx-0", and
    # nginx.conf includes tls*.conf from its own folder, as in the chart.
    prefix = tmp_path / "nginx-0"
    prefix.mkdir()
    tls_values = {"KUBEVOD_TLS_LISTEN": f"127.0.0.1:{tls_port}", "KUBEVOD_TLS_DIR": str(certs)}
    (prefix / "tls.conf").write_text(render(tls_values, NGINX_TLS_CONF))
    values = local_values(
        port=free_port(), api=f"127.0.0.1:{fake_api.port}", media=minio.endpoint,
        media_prefix=f"/{media_bucket}/videos/", access_log=str(tmp_path / "access.log"),
    )  # fmt: skip
    cache = nginx_factory(render(values))
    assert cache.prefix == prefix
    url = f"https://kubevod.local:{tls_port}/media/{vid}/g1/360p/1.m4s"
    body = tmp_path / "body"
    out = subprocess.run(
        [curl, "-sS", "--http2", "--cacert", str(certs / "tls.crt"),
         "--resolve", f"kubevod.local:{tls_port}:127.0.0.1",
         "-o", str(body), "-w", "%{http_version} %{http_code}", url],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert out == "2 200"
    assert body.read_bytes() == payload
    plain = httpx.get(f"{cache.url}/media/{vid}/g1/360p/1.m4s")
    assert plain.headers["x-cache-status"] == "HIT"


# --------------------------------------------------------------------------- metrics


def test_metrics_sidecar_counts_hits_and_misses_from_the_syslog_copy(
    minio: MinioServer, media_bucket: str, fake_api: FakeApi,
    nginx_factory: Callable[[str], NginxServer], tmp_path: Path,
) -> None:  # fmt: skip
    from kubevod.nginx_exporter import CacheStats, SyslogReceiver, fetch_stub_status

    stats = CacheStats()
    receiver = SyslogReceiver(stats)
    try:
        values = local_values(
            port=free_port(), api=f"127.0.0.1:{fake_api.port}", media=minio.endpoint,
            media_prefix=f"/{media_bucket}/videos/", access_log=str(tmp_path / "access.log"),
            metrics_syslog=f"127.0.0.1:{receiver.port}",
        )  # fmt: skip
        cache = nginx_factory(render(values))
        vid = _unique("metrics")
        put_segment(minio, f"{vid}/g1/360p/1.m4s")
        for _ in range(3):
            assert httpx.get(f"{cache.url}/media/{vid}/g1/360p/1.m4s").status_code == 200
        deadline = time.monotonic() + 5
        while receiver.received < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        requests, sent = stats.snapshot()
        assert (requests.get("MISS"), requests.get("HIT")) == (1, 2)
        assert sent["HIT"] >= 2 * 256 * 1024
        stub = fetch_stub_status(f"{cache.url}/nginx-status")
        assert stub is not None
        assert stub.requests >= 3
    finally:
        receiver.close()
