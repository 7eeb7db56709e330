"""The nginx cache tier against its limit: the same nginx serving the same files from disk.

Starts a real MinIO with 4 MB segments under ``videos/``, nginx running THE
chart's ``files/nginx.conf`` in front of it (warmed, so every request is a HIT
and every segment is stored as a plain file), and a second nginx with the same
worker, sendfile and logging settings serving the very same bytes as plain
files. ``wrk`` on loopback measures requests/s and bytes/s of each, rotating
over the segments; the ratio cache/static is the result (aim: 0.95 or better).
Also measured, side by side: the conf's internal fill server, whose HITs are
read from nginx cache files (what the tier served before segments were stored
as files), and the static nginx serving the body from the offset it has in a
cache file. ``--options`` adds nginx's own options against that offset (aio
threads, sendfile_max_chunk, open_file_cache, directio, slice, sendfile off),
each on cache-file HITs.

Run: ``python -m bench.nginx_cache [--seconds N] [--options] [--no-write]``, or
``python -m bench.nginx_cache --viewers 1000 [--client go|python|both]`` for the viewers
(``make bench`` puts nginx, wrk and minio from ``scripts/testenv`` on PATH); it
updates the ``nginx-cache`` (``nginx-cache-options``, ``nginx-viewers``) section of
``docs/benchmarks-chart.md`` unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import binary, free_port, start, stop, wait_http
from tests.chart.nginx_conf import local_values, render

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks-chart.md"
BUCKET = "kubevod"
ACCESS, SECRET = "bench-access", "bench-secret-key-0123456789"
SEGMENT_BYTES = 4 * 1024 * 1024
SEGMENTS = 8

STATIC_CONF = """\
worker_processes auto;
worker_rlimit_nofile 65536;
pid nginx.pid;
events {{ worker_connections 8192; multi_accept on; }}
http {{
    log_format kubevod escape=json '{{"request":"$request","status":$status,'
        '"bytes":$body_bytes_sent,"rt":$request_time}}';
    access_log {access_log} kubevod;
    sendfile on;
    sendfile_max_chunk 1m;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 10000;
    types {{ video/mp4 m4s; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""

WRK_SCRIPT = """\
{headers}local paths = {{{paths}}}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
"""


@dataclass
class Minio:
    """A MinIO started for a benchmark, with an anonymously readable ``videos/``."""

    endpoint: str
    client: Any


@contextmanager
def minio_server(root: Path) -> Iterator[Minio]:
    """Start MinIO on loopback with the bucket and the chart's anonymous-read policy."""
    from minio import Minio as Client

    port = free_port()
    env = dict(os.environ, MINIO_ROOT_USER=ACCESS, MINIO_ROOT_PASSWORD=SECRET,
               MINIO_BROWSER="off", MINIO_UPDATE="off")  # fmt: skip
    (root / "minio").mkdir()
    proc = start(
        [binary("minio"), "server", str(root / "minio"), "--quiet",
         "--address", f"127.0.0.1:{port}", "--console-address", f"127.0.0.1:{free_port()}"],
        root / "minio.log", env,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/minio/health/ready", timeout=60)
        client = Client(f"127.0.0.1:{port}", access_key=ACCESS, secret_key=SECRET, secure=False)
        client.make_bucket(BUCKET)
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{BUCKET}/videos/*"]}]}  # fmt: skip
        client.set_bucket_policy(BUCKET, json.dumps(policy))
        yield Minio(f"127.0.0.1:{port}", client)
    finally:
        stop(proc)


def put(minio: Minio, key: str, payload: bytes, content_type: str = "video/mp4") -> None:
    """Upload as the worker does: immutable Cache-Control."""
    minio.client.put_object(
        BUCKET, key, io.BytesIO(payload), len(payload), content_type=content_type,
        metadata={"Cache-Control": "public, max-age=31536000, immutable"},
    )  # fmt: skip


@contextmanager
def nginx(conf_text: str, prefix: Path, port: int) -> Iterator[str]:
    """Run nginx with ``conf_text`` (prefix-relative paths) until the block ends."""
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "logs").mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(conf_text)
    argv = [
        binary("nginx"),
        "-p",
        str(prefix),
        "-c",
        str(conf),
        "-e",
        "stderr",
        "-g",
        "daemon off;",
    ]
    if os.getuid() == 0:
        argv[-1] += " user root;"
    proc = start(argv, prefix / "nginx.log")
    try:
        deadline = time.monotonic() + 15
        import socket

        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((prefix / "nginx.log").read_text())
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def cache_conf(
    port: int, media: str, access_log: str, api: str = "127.0.0.1:9", fill_port: int | None = None
) -> str:
    """THE nginx.conf for loopback, in front of MinIO at ``media``.

    ``fill_port`` is where its internal fill server (the proxy_cache) listens.
    """
    values = local_values(port=port, api=api, media=media, media_prefix=f"/{BUCKET}/videos/",
                          access_log=access_log, fill_port=fill_port)  # fmt: skip
    values["KUBEVOD_CACHE_MAX_SIZE"] = "4g"
    return render(values)


def _http(conf: str, directives: str) -> str:
    """``conf`` with ``directives`` added to its http block, after ``sendfile on;``."""
    assert conf.count("sendfile on;") == 1
    return conf.replace("sendfile on;", f"sendfile on;\n    {directives}", 1)


def _sendfile_off(conf: str) -> str:
    assert conf.count("sendfile on;") == 1
    return conf.replace("sendfile on;", "sendfile off;\n    output_buffers 2 1m;", 1)


def _slice(conf: str) -> str:
    key = 'proxy_cache_key "media$uri";'
    assert conf.count(key) == 1
    return conf.replace(key, 'slice 1m;\n            proxy_cache_key "media$uri$slice_range";\n'
                        "            proxy_set_header Range $slice_range;\n"
                        "            proxy_cache_valid 206 30d;", 1)  # fmt: skip


#: What nginx offers against the cost of a cache file's body offset, each applied
#: to the whole conf and measured on cache-file HITs (the fill server's proxy_cache).
OPTIONS: dict[str, Any] = {
    "aio threads": lambda c: _http(c, "aio threads;"),
    "sendfile_max_chunk 0 (unlimited)": lambda c: c.replace("sendfile_max_chunk 1m;",
                                                            "sendfile_max_chunk 0;", 1),
    "open_file_cache": lambda c: _http(c, "open_file_cache max=1000 inactive=60s;"),
    "directio 1m + aio threads": lambda c: _http(c, "aio threads; directio 1m; "
                                                 "output_buffers 2 1m;"),
    "slice 1m": _slice,
    "sendfile off, output_buffers 2 1m": _sendfile_off,
}  # fmt: skip


@dataclass
class WrkResult:
    rps: float
    bytes_per_s: float
    p50_ms: float
    p99_ms: float


_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
_TIME = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(
    base: str, paths: list[str], seconds: int, connections: int, tmp: Path, range_from: int = 0
) -> WrkResult:
    script = tmp / "rotate.lua"
    headers = f'wrk.headers["Range"] = "bytes={range_from}-"\n' if range_from else ""
    script.write_text(WRK_SCRIPT.format(headers=headers, paths=", ".join(f'"{p}"' for p in paths)))
    out = subprocess.run(
        [binary("wrk"), "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
         "-s", str(script), base],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    t = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    assert t is not None
    p50 = re.search(r"\s50%\s+([\d.]+)(\w+)", out)
    p99 = re.search(r"\s99%\s+([\d.]+)(\w+)", out)
    assert p50 is not None and p99 is not None
    return WrkResult(
        rps,
        float(t.group(1)) * _UNITS[t.group(2)],
        float(p50.group(1)) * _TIME[p50.group(2)],
        float(p99.group(1)) * _TIME[p99.group(2)],
    )


@dataclass
class Target:
    """One server under test: label, base URL, paths, and a Range start (0: none)."""

    label: str
    base: str
    paths: list[str]
    range_from: int = 0


def measure(seconds: int, connections: int, rounds: int, options: bool) -> dict[str, Any]:
    """Warm the cache, then run wrk against every target in turn, rotating the order."""
    with tempfile.TemporaryDirectory(prefix="kubevod-bench-cache-") as tmpdir, ExitStack() as stack:
        tmp = Path(tmpdir)
        static_root = tmp / "static"
        keys = [f"videos/bench/g1/1080p/{i}.m4s" for i in range(SEGMENTS)]
        minio = stack.enter_context(minio_server(tmp))
        for i, key in enumerate(keys):
            payload = bytes([i]) * SEGMENT_BYTES
            put(minio, key, payload)
            (static_root / key).parent.mkdir(parents=True, exist_ok=True)
            (static_root / key).write_bytes(payload)
        paths = [f"/media/{k.removeprefix('videos/')}" for k in keys]
        static_paths = [f"/{k}" for k in keys]

        def start_static(name: str, edit: Any = None) -> str:
            port = free_port()
            conf = STATIC_CONF.format(port=port, root=static_root,
                                      access_log=tmp / f"{name}-access.log")  # fmt: skip
            return stack.enter_context(nginx(edit(conf) if edit else conf, tmp / name, port))

        def start_cache(name: str, edit: Any = None) -> tuple[str, str, Path]:
            port, fill = free_port(), free_port()
            log = tmp / f"{name}-access.log"
            conf = cache_conf(port, minio.endpoint, str(log), fill_port=fill)
            base = stack.enter_context(nginx(edit(conf) if edit else conf, tmp / name, port))
            for _ in range(2):  # the first stores each segment, the second reads the file
                for p in paths:
                    urllib.request.urlopen(base + p).read()
            return base, f"http://127.0.0.1:{fill}", log

        static = start_static("static")
        cache, fill, cache_log = start_cache("cache")
        # A cache file is a header (key, upstream headers) then the body, so nginx
        # sendfile()s a cache HIT from an offset that is not page aligned. The same
        # static nginx serving the body from that very offset (a Range request on a
        # file with as many bytes in front) shows what that layout alone costs.
        cached = [f for f in (tmp / "cache" / "cache-media").rglob("*") if f.is_file()]
        offset = min(f.stat().st_size for f in cached) - SEGMENT_BYTES
        for i, key in enumerate(keys):
            shifted = static_root / "shifted" / key
            shifted.parent.mkdir(parents=True, exist_ok=True)
            shifted.write_bytes(b"\0" * offset + bytes([i]) * SEGMENT_BYTES)
        targets = [
            Target("nginx static files (the limit)", static, static_paths),
            Target("**nginx cache tier, all HITs (segments as plain files)**", cache, paths),
            Target("nginx cache files, all HITs (proxy_cache alone, before)", fill, paths),
            Target(f"nginx static, body at offset {offset} (206)", static,
                   [f"/shifted/{k}" for k in keys], offset),
        ]  # fmt: skip
        if options:
            for name, edit in OPTIONS.items():
                slug = re.sub(r"[^a-z0-9]+", "-", name.lower())
                _, option_fill, _ = start_cache(f"option-{slug}", edit)
                targets.append(Target(f"cache files + {name}", option_fill, paths))
            targets.append(Target("nginx static files, sendfile off, output_buffers 2 1m",
                                  start_static("static-nosendfile", _sendfile_off),
                                  static_paths))  # fmt: skip
        # Every target writes a JSON access log line per request: the same work.
        results: dict[str, list[WrkResult]] = {t.label: [] for t in targets}
        for n in range(rounds):
            for t in targets[n % len(targets) :] + targets[: n % len(targets)]:
                results[t.label].append(
                    run_wrk(t.base, t.paths, seconds, connections, tmp, t.range_from)
                )
        entries = [json.loads(x) for x in cache_log.read_text().splitlines() if x]
        fetches = sum(1 for e in entries if e["upstream"] and "/media/" in e["request"])
        on_disk = sum(1 for f in (tmp / "cache" / "segments").rglob("*.m4s") if f.is_file())
    limit = results[targets[0].label]
    ratios = {
        label: statistics.median(r.rps / s.rps for r, s in zip(runs, limit, strict=True))
        for label, runs in results.items()
    }
    best = {label: max(runs, key=lambda r: r.rps) for label, runs in results.items()}
    return {"best": best, "ratios": ratios, "origin_fetches": fetches, "stored": on_disk,
            "rounds": rounds, "offset": offset, "load": os.getloadavg()[0]}  # fmt: skip


def table(result: dict[str, Any], seconds: int, connections: int) -> str:
    best, ratios = result["best"], result["ratios"]
    labels = list(best)
    static = best[labels[0]]
    lines = [
        "| server | requests/s | MB/s | p50 ms | p99 ms | best / best static "
        "| median of paired rounds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label in labels:
        r = best[label]
        lines.append(
            f"| {label} | {r.rps:,.0f} | {r.bytes_per_s / 1024**2:,.0f} | {r.p50_ms:.1f} | "
            f"{r.p99_ms:.1f} | {r.rps / static.rps:.2f} | {ratios[label]:.2f} |"
        )
    cache = labels[1]
    lines.append("")
    lines.append(
        f"wrk -t2 -c{connections} -d{seconds}s, {SEGMENTS} segments of 4 MiB in rotation, "
        f"{result['rounds']} rounds, each running every server once in a rotating order; "
        f"best run of each, and the median over rounds of requests/s divided by the static "
        f"limit's in the same round. Origin fetches: {result['origin_fetches']} (the "
        f"warm-up's {SEGMENTS}), segments stored as files: {result['stored']}. Cache tier "
        f"against the limit: best **{best[cache].rps / static.rps:.2f}**, median of paired "
        f"rounds **{ratios[cache]:.2f}** (1-minute load average at the end: "
        f"{result['load']:.1f} on {os.cpu_count()} CPUs)."
    )
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    python = platform.python_version()
    return f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {python}"


def write_section(name: str, body: str) -> None:
    """Replace (or append) the ``<!-- name -->`` section of docs/benchmarks-chart.md."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks: the nginx cache tier\n"
    block = f"{start}\n{body}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(text)


# --------------------------------------------------------------------------- viewers


def _crowd_part(args: tuple[int, int, int, float, int]) -> dict[str, Any]:
    """One process's share of the viewers (bench.viewers' client), as plain data."""
    import asyncio

    port, count, segments, ramp, seed = args
    stats = asyncio.run(_crowd(port, count, segments, ramp, seed))
    return {"segment_ttfb": stats.segment_ttfb, "manifest_ttfb": stats.manifest_ttfb,
            "errors": stats.errors, "segment_paths": sorted(stats.segment_paths)}  # fmt: skip


async def _crowd(port: int, count: int, segments: int, ramp: float, seed: int) -> Any:
    import asyncio
    import random

    from bench.viewers import Stats, viewer

    stats = Stats()
    rng = random.Random(seed)
    await asyncio.gather(*(viewer(port, stats, segments, ramp, random.Random(rng.random()))
                           for _ in range(count)))  # fmt: skip
    return stats


GO_CLIENT = ROOT / "bench" / "viewers_go"


def build_go_client(tmp: Path) -> Path | None:
    """``go build`` bench/viewers_go into ``tmp``; None (with a message) if go is missing."""
    import shutil

    go = shutil.which("go")
    if go is None:
        print("go not found on PATH: falling back to the Python client (bench.viewers)")
        return None
    out = tmp / "viewers"
    if not out.exists():
        env = dict(os.environ, GOTOOLCHAIN="local", GOPROXY="off", GOFLAGS="-mod=mod")
        subprocess.run([go, "build", "-o", str(out), "."], cwd=GO_CLIENT, env=env, check=True)
    return out


def _python_crowd(port: int, viewers: int, segments: int, ramp: float, processes: int) -> dict:
    import multiprocessing

    shares = [viewers // processes + (i < viewers % processes) for i in range(processes)]
    began = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_crowd_part, [(port, n, segments, ramp, 7 + i)
                                       for i, n in enumerate(shares)])  # fmt: skip
    return {"wall_s": time.monotonic() - began, "parts": parts}


def _go_crowd(exe: Path, port: int, viewers: int, segments: int, ramp: float) -> dict[str, Any]:
    out = subprocess.run(
        [str(exe), "-port", str(port), "-viewers", str(viewers), "-segments", str(segments),
         "-ramp", str(ramp)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)


def measure_viewers(
    viewers: int, segments: int, ramp: float, processes: int, clients: list[str]
) -> list[dict[str, Any]]:
    """bench.viewers' setup and video; each of ``clients`` in turn on its own fresh cache.

    ``python``: bench.viewers' asyncio client, the viewers split over ``processes``
    processes. One asyncio process with 1000 viewers on a 2-CPU machine mostly
    measures its own event-loop lag, and even split the tail is mostly client CPU
    wait. ``go``: bench/viewers_go, the same viewers (pacing, URLs, start spread)
    as goroutines in one light process. Each client gets a fresh nginx with an
    empty cache, so both see the same MinIO fills.
    """
    import sys

    from bench.viewers import VIDEO_ID, pct, seed

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kubevod-bench-viewers-") as tmpdir:
        tmp = Path(tmpdir)
        if "go" in clients and build_go_client(tmp) is None:
            clients = ["python"] + [c for c in clients if c not in ("go", "python")]
        with minio_server(tmp) as minio:
            catalog_url = f"sqlite://{tmp / 'catalog.db'}"
            objects = seed(minio, catalog_url)
            api_port = free_port()
            store = f"s3://{ACCESS}:{SECRET}@{minio.endpoint}/{BUCKET}?secure=false"
            env = dict(os.environ, KUBEVOD_CATALOG_URL=catalog_url, KUBEVOD_STORE_URL=store,
                       KUBEVOD_MEDIA_BASE_URL="/media", KUBEVOD_HOST="127.0.0.1",
                       KUBEVOD_PORT=str(api_port), KUBEVOD_DATA_DIR=str(tmp / "data"),
                       OTEL_SDK_DISABLED="true")  # fmt: skip
            api = start([sys.executable, "-m", "kubevod.api.main"], tmp / "api.log", env)
            try:
                wait_http(f"http://127.0.0.1:{api_port}/healthz", timeout=60)
                for client in clients:
                    cache_port = free_port()
                    log = tmp / f"access-{client}.log"
                    conf = cache_conf(cache_port, minio.endpoint, str(log), f"127.0.0.1:{api_port}")
                    with nginx(conf, tmp / f"cache-{client}", cache_port) as base:
                        urllib.request.urlopen(f"{base}/v/{VIDEO_ID}/master.m3u8").read()
                        if client == "go":
                            got = _go_crowd(tmp / "viewers", cache_port, viewers, segments, ramp)
                            row = {k: got[k] for k in ("wall_s", "errors", "segment_requests",
                                   "distinct_segments", "manifest_requests", "seg_p50",
                                   "seg_p99", "man_p50", "man_p99")}  # fmt: skip
                            row["processes"] = 1
                        else:
                            crowd = _python_crowd(cache_port, viewers, segments, ramp, processes)
                            parts = crowd["parts"]
                            seg = [t for p in parts for t in p["segment_ttfb"]]
                            man = [t for p in parts for t in p["manifest_ttfb"]]
                            row = {
                                "wall_s": crowd["wall_s"], "processes": processes,
                                "errors": [e for p in parts for e in p["errors"]],
                                "segment_requests": len(seg),
                                "distinct_segments": len({x for p in parts
                                                          for x in p["segment_paths"]}),
                                "manifest_requests": len(man),
                                "seg_p50": pct(seg, 50), "seg_p99": pct(seg, 99),
                                "man_p50": pct(man, 50), "man_p99": pct(man, 99),
                            }  # fmt: skip
                    entries = [json.loads(x) for x in log.read_text().splitlines() if x]
                    upstream = [e for e in entries if e["upstream"]]
                    row.update({
                        "client": client, "viewers": viewers, "segments": segments,
                        "objects": objects, "load": os.getloadavg()[0],
                        "minio_fetches": sum(1 for e in upstream if "/media/" in e["request"]),
                        "api_requests": sum(1 for e in upstream if "/v/" in e["request"]),
                    })  # fmt: skip
                    print(json.dumps({k: v for k, v in row.items() if k != "errors"}
                                     | {"errors": len(row["errors"])}), flush=True)  # fmt: skip
                    rows.append(row)
            finally:
                stop(api)
    return rows


CLIENT_LABEL = {"go": "Go (bench/viewers_go)", "python": "Python (bench.viewers)"}


def viewers_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| client | viewers | client processes | errors | segment requests "
        "| segment TTFB p50 / p99 ms | manifest requests | manifest TTFB p50 / p99 ms "
        "| distinct segments | MinIO fetches | API requests | load avg after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {CLIENT_LABEL[r['client']]} | {r['viewers']} | {r['processes']} | "
            f"{len(r['errors'])} | {r['segment_requests']} | "
            f"{r['seg_p50']:.1f} / {r['seg_p99']:.1f} | {r['manifest_requests']} | "
            f"{r['man_p50']:.1f} / {r['man_p99']:.1f} | {r['distinct_segments']} | "
            f"{r['minio_fetches']} | {r['api_requests']} | {r['load']:.1f} |"
        )
    r = rows[0]
    walls = ", ".join(f"{x['client']} {x['wall_s']:.0f} s" for x in rows)
    lines += [
        "",
        f"bench.viewers' video and viewer behaviour (each viewer: master + media + audio "
        f"playlists, 2 init segments, then {r['segments']} video + {r['segments']} audio "
        f"segments at real-time pace, joining over the first 4 s), each client in turn on "
        f"its own fresh nginx (empty cache) in front of the same MinIO and API; wall time "
        f"{walls}; 1-minute load average after each on {os.cpu_count()} CPUs in the last "
        f"column. Target: 0 errors and p99 segment TTFB < 50 ms.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--options",
        action="store_true",
        help="also measure nginx's own options on cache-file HITs (section nginx-cache-options)",
    )
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="update docs/benchmarks-chart.md (default; --no-write to only print)",
    )
    parser.add_argument(
        "--viewers",
        type=int,
        default=0,
        help="instead: N simulated viewers through the cache (section nginx-viewers)",
    )
    parser.add_argument("--processes", type=int, default=4, help="client processes (--viewers)")
    parser.add_argument(
        "--client",
        choices=("go", "python", "both"),
        default=None,
        help="--viewers: load generator (default: both, Go first, if go is on PATH; else python)",
    )
    parser.add_argument("--segments", type=int, default=8, help="segments per viewer (--viewers)")
    args = parser.parse_args()
    if args.viewers:
        import shutil

        client = args.client or ("both" if shutil.which("go") else "python")
        clients = ["go", "python"] if client == "both" else [client]
        rows = measure_viewers(args.viewers, args.segments, 4.0, args.processes, clients)
        text = viewers_table(rows)
        print(text)
        errors = [e for r in rows for e in r["errors"]]
        for error in errors[:10]:
            print("error:", error)
        if args.write:
            write_section(
                "nginx-viewers", f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.\n\n{text}"
            )
        if errors:
            raise SystemExit(f"{len(errors)} viewers saw errors")
        return
    result = measure(args.seconds, args.connections, args.rounds, args.options)
    text = table(result, args.seconds, args.connections)
    print(text)
    if args.write:
        write_section(
            "nginx-cache-options" if args.options else "nginx-cache",
            f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.\n\n{text}",
        )


if __name__ == "__main__":
    main()
