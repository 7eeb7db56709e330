"""Simulated viewers through the cache tier: real API, real MinIO, THE nginx.conf.

A 4-minute video (240p/360p/480p + AAC audio, 4 s CMAF segments sized by their
bitrate) is written to MinIO and a SQLite catalog; the shipped ``kubevod-api``
renders its manifests; nginx runs the chart's ``files/nginx.conf`` in front of
both. Then N asyncio HLS clients (one keep-alive connection each, a raw
HTTP/1.1 client so the client is not the bottleneck) each fetch the master
playlist, pick a rung at random, fetch its media playlist and the audio
playlist, the init segments, and then one video + one audio segment every 4 s
(real-time pace) from a random position, for ``--segments`` segments.

Reported: errors (must be 0), p50/p99 time to first byte of segments and of
manifests, and how many requests reached MinIO and the API (with
``proxy_cache_lock`` exactly one per distinct segment).

Run: ``python -m bench.viewers [--viewers 1000] [--segments 8] [--no-write]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

from bench.common import free_port, start, stop, wait_http
from bench.nginx_cache import (
    ACCESS,
    BUCKET,
    SECRET,
    Minio,
    cache_conf,
    machine,
    minio_server,
    nginx,
    put,
    write_section,
)

VIDEO_ID = "viewers"
SEGMENT_SECONDS = 4.0
SEGMENT_COUNT = 60
LADDER = ((480, 1_400_000), (360, 800_000), (240, 400_000))
AUDIO_BPS = 128_000


# --------------------------------------------------------------------------- setup


def seed(minio: Minio, catalog_url: str) -> int:
    """Catalog entry + objects in MinIO; return the number of objects written."""
    from kubevod.backends import open_catalog
    from kubevod.models import Rendition, Segment, TrackKind, Video, VideoState

    renditions = [
        Rendition(name=f"{h}p", width=h * 16 // 9 // 2 * 2, height=h, frame_rate=30.0,
                  bandwidth=b, average_bandwidth=b * 4 // 5, codecs="avc1.64001e")
        for h, b in LADDER
    ] + [
        Rendition(name="audio", kind=TrackKind.AUDIO, bandwidth=AUDIO_BPS, codecs="mp4a.40.2",
                  timescale=48_000, language="en", channels=2, sample_rate=48_000)
    ]  # fmt: skip
    video = Video(id=VIDEO_ID, title="Viewers", state=VideoState.READY,
                  duration=SEGMENT_COUNT * SEGMENT_SECONDS, renditions=renditions)  # fmt: skip
    catalog = open_catalog(catalog_url)
    written = 0
    try:
        catalog.create(video)
        for r in renditions:
            prefix = f"{video.media_prefix()}/{r.name}"
            put(minio, f"{prefix}/init.mp4", b"\0" * 800)
            size = int(r.bandwidth * SEGMENT_SECONDS / 8)
            for seq in range(SEGMENT_COUNT):
                key = f"{prefix}/{seq}.m4s"
                put(minio, key, bytes([seq % 256]) * size)
                catalog.add_segment(VIDEO_ID, Segment(rendition=r.name, seq=seq,
                                    duration=SEGMENT_SECONDS, start=seq * SEGMENT_SECONDS,
                                    key=key))  # fmt: skip
                written += 1
    finally:
        catalog.close()
    return written


# --------------------------------------------------------------------------- client


class Http:
    """One keep-alive HTTP/1.1 connection; GET returns (status, body bytes, ttfb s)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, *, keep: bool = False) -> tuple[int, bytes, float]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        started = time.perf_counter()
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: kubevod.local\r\n\r\n".encode())
        status_line = await self.reader.readline()
        ttfb = time.perf_counter() - started
        status = int(status_line.split()[1])
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value:
                chunked = True
        body = bytearray()
        if chunked:
            while (size := int((await self.reader.readline()).strip(), 16)) > 0:
                body += await self.reader.readexactly(size)
                await self.reader.readline()
            await self.reader.readline()
        else:
            while length > 0:
                chunk = await self.reader.read(min(length, 1 << 18))
                if not chunk:
                    raise ConnectionError("connection closed mid-body")
                length -= len(chunk)
                if keep:
                    body += chunk
        return status, bytes(body), ttfb

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class Stats:
    segment_ttfb: list[float] = field(default_factory=list)
    manifest_ttfb: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    bytes: int = 0
    segment_paths: set[str] = field(default_factory=set)


def playlist_uris(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def tag_uri(text: str, tag: str) -> list[str]:
    out = []
    for line in text.splitlines():
        if line.startswith(tag) and 'URI="' in line:
            out.append(line.split('URI="', 1)[1].split('"', 1)[0])
    return out


async def viewer(port: int, stats: Stats, segments: int, ramp: float, rng: random.Random) -> None:
    await asyncio.sleep(rng.uniform(0, ramp))
    http = Http(port)
    try:

        async def manifest(path: str) -> str:
            status, body, ttfb = await http.get(path, keep=True)
            stats.manifest_ttfb.append(ttfb)
            if status != 200:
                raise RuntimeError(f"{path}: {status}")
            return body.decode()

        async def media(path: str) -> None:
            status, _, ttfb = await http.get(path)
            if status != 200:
                raise RuntimeError(f"{path}: {status}")
            stats.segment_ttfb.append(ttfb)
            stats.segment_paths.add(path)

        master_path = f"/v/{VIDEO_ID}/master.m3u8"
        master = await manifest(master_path)
        variant = urljoin(master_path, rng.choice(playlist_uris(master)))
        audio = urljoin(master_path, tag_uri(master, "#EXT-X-MEDIA:TYPE=AUDIO")[0])
        video_pl, audio_pl = await manifest(variant), await manifest(audio)
        video_segs = [urljoin(variant, u) for u in playlist_uris(video_pl)]
        audio_segs = [urljoin(audio, u) for u in playlist_uris(audio_pl)]
        for pl, base in ((video_pl, variant), (audio_pl, audio)):
            await media(urljoin(base, tag_uri(pl, "#EXT-X-MAP")[0]))
        first = rng.randrange(0, len(video_segs) - segments)
        began = time.monotonic()
        for k in range(segments):
            await media(video_segs[first + k])
            await media(audio_segs[first + k])
            delay = began + (k + 1) * SEGMENT_SECONDS - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
    except Exception as e:
        stats.errors.append(f"{type(e).__name__}: {e}")
    finally:
        http.close()


async def crowd(port: int, viewers: int, segments: int, ramp: float) -> Stats:
    stats = Stats()
    rng = random.Random(7)
    await asyncio.gather(*(viewer(port, stats, segments, ramp, random.Random(rng.random()))
                           for _ in range(viewers)))  # fmt: skip
    return stats


# --------------------------------------------------------------------------- run


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] * 1000


def measure(viewers: int, segments: int, ramp: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="kubevod-bench-viewers-") as tmpdir:
        tmp = Path(tmpdir)
        with minio_server(tmp) as minio:
            catalog_url = f"sqlite://{tmp / 'catalog.db'}"
            objects = seed(minio, catalog_url)
            api_port, cache_port = free_port(), free_port()
            env = dict(os.environ, KUBEVOD_CATALOG_URL=catalog_url,
                       KUBEVOD_STORE_URL=f"s3://{ACCESS}:{SECRET}@{minio.endpoint}/{BUCKET}?secure=false",
                       KUBEVOD_MEDIA_BASE_URL="/media", KUBEVOD_HOST="127.0.0.1",
                       KUBEVOD_PORT=str(api_port), KUBEVOD_DATA_DIR=str(tmp / "data"),
                       OTEL_SDK_DISABLED="true")  # fmt: skip
            api = start([sys.executable, "-m", "kubevod.api.main"], tmp / "api.log", env)
            try:
                wait_http(f"http://127.0.0.1:{api_port}/healthz", timeout=60)
                log = tmp / "access.log"
                conf = cache_conf(cache_port, minio.endpoint, str(log), f"127.0.0.1:{api_port}")
                with nginx(conf, tmp / "cache", cache_port) as base:
                    urllib.request.urlopen(f"{base}/v/{VIDEO_ID}/master.m3u8").read()
                    began = time.monotonic()
                    stats = asyncio.run(crowd(cache_port, viewers, segments, ramp))
                    wall = time.monotonic() - began
                entries = [json.loads(x) for x in log.read_text().splitlines() if x]
            finally:
                stop(api)
    upstream = [e for e in entries if e["upstream"]]
    return {
        "viewers": viewers, "segments": segments, "wall_s": wall, "objects": objects,
        "errors": stats.errors, "segment_requests": len(stats.segment_ttfb),
        "distinct_segments": len(stats.segment_paths),
        "minio_fetches": sum(1 for e in upstream if "/media/" in e["request"]),
        "api_requests": sum(1 for e in upstream if "/v/" in e["request"]),
        "manifest_requests": len(stats.manifest_ttfb),
        "seg_p50": pct(stats.segment_ttfb, 50), "seg_p99": pct(stats.segment_ttfb, 99),
        "man_p50": pct(stats.manifest_ttfb, 50), "man_p99": pct(stats.manifest_ttfb, 99),
    }  # fmt: skip


def table(r: dict[str, object]) -> str:
    errors = r["errors"]
    assert isinstance(errors, list)
    return "\n".join([
        "| viewers | errors | segment requests | segment TTFB p50 / p99 ms | manifest requests "
        "| manifest TTFB p50 / p99 ms | distinct segments | MinIO fetches | API requests |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['viewers']} | {len(errors)} | {r['segment_requests']} | "
        f"{r['seg_p50']:.1f} / {r['seg_p99']:.1f} | {r['manifest_requests']} | "
        f"{r['man_p50']:.1f} / {r['man_p99']:.1f} | {r['distinct_segments']} | "
        f"{r['minio_fetches']} | {r['api_requests']} |",
        "",
        f"Each viewer: master + media + audio playlists, 2 init segments, then "
        f"{r['segments']} video + {r['segments']} audio segments at real-time pace (4 s); "
        f"wall time {r['wall_s']:.0f} s.",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--ramp", type=float, default=4.0, help="seconds over which viewers join")
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="update docs/benchmarks-chart.md (default; --no-write to only print)",
    )
    args = parser.parse_args()
    result = measure(args.viewers, args.segments, args.ramp)
    text = table(result)
    print(text)
    for error in list(result["errors"])[:10]:  # type: ignore[call-overload]
        print("error:", error)
    if args.write:
        write_section("viewers", f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.\n\n{text}")
    errors = result["errors"]
    if isinstance(errors, list) and errors:
        sys.exit(f"{len(errors)} viewers saw errors")


if __name__ == "__main__":
    main()
