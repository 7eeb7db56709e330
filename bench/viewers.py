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

``--local`` measures local mode instead: ``kubevod serve`` (the embedded
default: FileStore + SqliteCatalog in a data folder, no nginx) serves manifests
and segments itself. The video has one 5 Mb/s rung (1080p) and AAC audio, so
each viewer needs 5.1 Mb/s; each plays like a player with a 12 s buffer:
playback starts when the first segments arrive, segments are fetched while
less than 12 s is buffered, and a segment that arrives after its play time is
a stall (playback waits for it). Viewer counts rise until one stalls; the last
count without a stall is the ceiling. Results go to docs/benchmarks-api.md.

Run: ``python -m bench.viewers [--viewers 1000] [--segments 8] [--no-write]``,
``python -m bench.viewers --local [--counts 50,100,150,200] [--segments 8]``.
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
from typing import Any
from urllib.parse import urljoin

from bench.common import free_port, start, stop, wait_http
from bench.common import write_section as write_doc_section
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

ROOT = Path(__file__).resolve().parents[1]
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

    def __init__(self, port: int, host: str = "kubevod.local") -> None:
        self.port = port
        self.host = host
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, *, keep: bool = False) -> tuple[int, bytes, float]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        started = time.perf_counter()
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
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


# --------------------------------------------------------------------------- local mode

LOCAL_ID = "localviewers"
LOCAL_SEGMENTS = 40
LOCAL_LADDER = ((1080, 5_000_000),)
#: What a simulated player keeps buffered ahead of its playhead (hls.js keeps up to 30 s).
BUFFER_S = 12.0
API_DOC = ROOT / "docs" / "benchmarks-api.md"


def seed_local(data: Path) -> int:
    """A data folder as ``kubevod serve`` keeps it: catalog.db and media/ (FileStore)."""
    from kubevod.backends import open_catalog, open_store
    from kubevod.models import IMMUTABLE, Rendition, Segment, TrackKind, Video, VideoState

    renditions = [
        Rendition(name=f"{h}p", width=h * 16 // 9 // 2 * 2, height=h, frame_rate=30.0,
                  bandwidth=b, average_bandwidth=b, codecs="avc1.640028")
        for h, b in LOCAL_LADDER
    ] + [
        Rendition(name="audio", kind=TrackKind.AUDIO, bandwidth=AUDIO_BPS, codecs="mp4a.40.2",
                  timescale=48_000, language="en", channels=2, sample_rate=48_000)
    ]  # fmt: skip
    video = Video(id=LOCAL_ID, title="Local viewers", state=VideoState.READY,
                  duration=LOCAL_SEGMENTS * SEGMENT_SECONDS, renditions=renditions)  # fmt: skip
    store = open_store((data / "media").as_uri())
    catalog = open_catalog(f"sqlite://{data / 'catalog.db'}")
    size = 0
    try:
        catalog.create(video)
        for r in renditions:
            prefix = f"{video.media_prefix()}/{r.name}"
            store.put_bytes(f"{prefix}/init.mp4", b"\0" * 800, content_type="video/mp4",
                            cache_control=IMMUTABLE)  # fmt: skip
            body = bytes(int(r.bandwidth * SEGMENT_SECONDS / 8))
            for seq in range(LOCAL_SEGMENTS):
                key = f"{prefix}/{seq}.m4s"
                store.put_bytes(key, body, content_type="video/mp4", cache_control=IMMUTABLE)
                catalog.add_segment(LOCAL_ID, Segment(rendition=r.name, seq=seq,
                                    duration=SEGMENT_SECONDS, start=seq * SEGMENT_SECONDS,
                                    key=key, size=len(body)))  # fmt: skip
                size += len(body)
    finally:
        catalog.close()
    return size


@dataclass
class PlayStats:
    segment_ttfb: list[float] = field(default_factory=list)
    segment_time: list[float] = field(default_factory=list)  # first byte to last, video
    errors: list[str] = field(default_factory=list)
    stalls: int = 0
    stalled_viewers: int = 0
    stall_s: float = 0.0
    startup: list[float] = field(default_factory=list)
    bytes: int = 0


async def player(
    port: int, host: str, stats: PlayStats, segments: int, ramp: float, rng: random.Random
) -> None:
    """One viewer of the 5 Mb/s rung, playing like a player with a ``BUFFER_S`` buffer."""
    await asyncio.sleep(rng.uniform(0, ramp))
    http = Http(port, host)
    try:

        async def text(path: str) -> str:
            status, body, _ = await http.get(path, keep=True)
            if status != 200:
                raise RuntimeError(f"{path}: {status}")
            return body.decode()

        async def media(path: str, timed: bool = False) -> None:
            started = time.perf_counter()
            status, _, ttfb = await http.get(path)
            if status != 200:
                raise RuntimeError(f"{path}: {status}")
            if timed:
                stats.segment_ttfb.append(ttfb)
                stats.segment_time.append(time.perf_counter() - started)

        joined = time.monotonic()
        master_path = f"/v/{LOCAL_ID}/master.m3u8"
        master = await text(master_path)
        variant = urljoin(master_path, playlist_uris(master)[0])
        audio = urljoin(master_path, tag_uri(master, "#EXT-X-MEDIA:TYPE=AUDIO")[0])
        video_pl, audio_pl = await text(variant), await text(audio)
        video_segs = [urljoin(variant, u) for u in playlist_uris(video_pl)]
        audio_segs = [urljoin(audio, u) for u in playlist_uris(audio_pl)]
        for pl, base in ((video_pl, variant), (audio_pl, audio)):
            await media(urljoin(base, tag_uri(pl, "#EXT-X-MAP")[0]))
        first = rng.randrange(0, len(video_segs) - segments)
        stalled = 0.0
        play0 = 0.0
        for k in range(segments):
            if k > 0:  # wait while the buffer is full
                ahead = play0 + stalled + k * SEGMENT_SECONDS - time.monotonic()
                if ahead > BUFFER_S:
                    await asyncio.sleep(ahead - BUFFER_S)
            await media(video_segs[first + k], timed=True)
            await media(audio_segs[first + k])
            now = time.monotonic()
            if k == 0:
                play0 = now
                stats.startup.append(now - joined)
                continue
            late = now - (play0 + stalled + k * SEGMENT_SECONDS)
            if late > 0:
                stats.stalls += 1
                stalled += late
        stats.bytes += segments * int(LOCAL_LADDER[0][1] * SEGMENT_SECONDS / 8)
        if stalled > 0:
            stats.stalled_viewers += 1
            stats.stall_s += stalled
    except Exception as e:
        stats.errors.append(f"{type(e).__name__}: {e}")
    finally:
        http.close()


async def audience(port: int, host: str, viewers: int, segments: int, ramp: float) -> PlayStats:
    stats = PlayStats()
    rng = random.Random(11)
    await asyncio.gather(*(player(port, host, stats, segments, ramp, random.Random(rng.random()))
                           for _ in range(viewers)))  # fmt: skip
    return stats


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_local(counts: list[int], segments: int, ramp: float) -> list[dict[str, Any]]:
    """``kubevod serve`` on a seeded data folder; the audience grows until a viewer stalls."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kubevod-bench-local-") as tmpdir:
        data = Path(tmpdir) / "data"
        data.mkdir()
        seed_local(data)
        port = free_port()
        env = dict(os.environ, OTEL_SDK_DISABLED="true")
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        argv = [sys.executable, "-m", "kubevod.cli", "serve", "--data", str(data),
                "--port", str(port)]  # fmt: skip
        server = start(argv, Path(tmpdir) / "serve.log", env)
        host = f"127.0.0.1:{port}"
        try:
            wait_http(f"http://{host}/healthz", timeout=60)
            for count in counts:
                cpu = cpu_seconds(server.pid)
                began = time.monotonic()
                stats = asyncio.run(audience(port, host, count, segments, ramp))
                wall = time.monotonic() - began
                row = {
                    "viewers": count, "errors": stats.errors, "stalls": stats.stalls,
                    "stalled_viewers": stats.stalled_viewers, "stall_s": stats.stall_s,
                    "ttfb_p50": pct(stats.segment_ttfb, 50),
                    "ttfb_p99": pct(stats.segment_ttfb, 99),
                    "seg_p50": pct(stats.segment_time, 50), "seg_p99": pct(stats.segment_time, 99),
                    "startup_p50": pct(stats.startup, 50), "startup_p99": pct(stats.startup, 99),
                    "mbps": stats.bytes * 8 / 1e6 / wall, "wall": wall,
                    "server_cpu": (cpu_seconds(server.pid) - cpu) / wall,
                }  # fmt: skip
                rows.append(row)
                print(local_row(row), flush=True)
                if stats.stalls or stats.errors:
                    break
        finally:
            stop(server)
    return rows


LOCAL_HEADER = (
    "| viewers | errors | stalled viewers (stalls, s) | startup p50 / p99 ms "
    "| segment TTFB p50 / p99 ms | 2.5 MB segment p50 / p99 ms | delivered Mb/s "
    "| server CPU (cores) |\n|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def local_row(r: dict[str, Any]) -> str:
    return (
        f"| {r['viewers']} | {len(r['errors'])} | {r['stalled_viewers']} "
        f"({r['stalls']}, {r['stall_s']:.1f}) | {r['startup_p50']:.0f} / {r['startup_p99']:.0f} "
        f"| {r['ttfb_p50']:.1f} / {r['ttfb_p99']:.1f} | {r['seg_p50']:.0f} / {r['seg_p99']:.0f} "
        f"| {r['mbps']:,.0f} | {r['server_cpu']:.2f} |"
    )


def local_section(rows: list[dict[str, Any]], segments: int) -> str:
    clean = [r["viewers"] for r in rows if not r["stalls"] and not r["errors"]]
    ceiling = (
        f"**{max(clean)} viewers** without a stall"
        + (f" ({rows[-1]['viewers']} stalled)" if rows[-1]["stalls"] or rows[-1]["errors"] else
           " (the largest audience tried)")
        if clean else "none of the audiences played without a stall"
    )  # fmt: skip
    lines = "\n".join(local_row(r) for r in rows)
    return f"""## Local mode: viewers of `kubevod serve`

Measured by `bench/viewers.py --local` on {machine()}, {time.strftime("%Y-%m-%d")}.
`kubevod serve` on a data folder (FileStore + SqliteCatalog, no nginx) serves the
manifests and the segments itself. The video: one 5 Mb/s rung (2.5 MB per 4 s segment)
plus 128 kb/s audio. Each viewer (one keep-alive connection, a raw asyncio HTTP/1.1
client in one process on the same machine) fetches the master, media and audio
playlists and the init segments, then {segments} video + {segments} audio segments from a random
position, as a player with a {BUFFER_S:.0f} s buffer: it fetches while less than that is buffered,
and a segment that arrives after its play time is a stall. Viewers join over the first
seconds; each audience runs on its own, larger ones until one stalls.

{LOCAL_HEADER}
{lines}

Ceiling: {ceiling}.
"Delivered" is the segment payload over the wall time of the run (ramp and buffer filling
included); "server CPU" is the server process's CPU time over the same time. The client
shares the 2 cores and parses every byte in Python, so the ceiling is the machine's with
both on it: the server itself stayed under {max(r["server_cpu"] for r in rows):.1f} cores.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="store_true", help="kubevod serve, no cache tier")
    parser.add_argument(
        "--counts", default="50,100,150,200,250,300", help="--local: audiences, in order"
    )
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
    if args.local:
        counts = [int(c) for c in args.counts.split(",")]
        rows = measure_local(counts, args.segments, args.ramp)
        section = local_section(rows, args.segments)
        print(section)
        if args.write:
            write_doc_section(API_DOC, "local-viewers", section, "# Benchmarks: serving manifests")
        if any(r["errors"] for r in rows):
            sys.exit("viewers saw errors: " + "; ".join(rows[-1]["errors"][:5]))
        return
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
