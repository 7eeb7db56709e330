"""The nginx cache tier against its limit: the same nginx serving the same files from disk.

Starts a real MinIO with 4 MB segments under ``videos/``, nginx running THE
chart's ``files/nginx.conf`` in front of it (cache warmed, so every request is
a HIT), and a second nginx with the same worker settings serving the very same
bytes as plain files. ``wrk`` on loopback measures requests/s and bytes/s of
both, rotating over the segments; the ratio cache/static is the result (aim:
0.9 or better).

Run: ``python -m bench.nginx_cache [--seconds N] [--no-write]`` (``make bench``
puts nginx, wrk and minio from ``scripts/testenv`` on PATH); it updates the
cache section of ``docs/benchmarks-chart.md`` unless ``--no-write``.
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
from contextlib import contextmanager
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


def cache_conf(port: int, media: str, access_log: str, api: str = "127.0.0.1:9") -> str:
    """THE nginx.conf for loopback, in front of MinIO at ``media``."""
    values = local_values(port=port, api=api, media=media, media_prefix=f"/{BUCKET}/videos/",
                          access_log=access_log)  # fmt: skip
    values["KUBEVOD_CACHE_MAX_SIZE"] = "4g"
    return render(values)


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
        [binary("wrk"), "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
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


def measure(seconds: int, connections: int, rounds: int) -> dict[str, Any]:
    """Warm the cache, then alternate wrk runs against the cache and the static nginx."""
    with tempfile.TemporaryDirectory(prefix="kubevod-bench-cache-") as tmpdir:
        tmp = Path(tmpdir)
        static_root = tmp / "static"
        keys = [f"videos/bench/g1/1080p/{i}.m4s" for i in range(SEGMENTS)]
        with minio_server(tmp) as minio:
            for i, key in enumerate(keys):
                payload = bytes([i]) * SEGMENT_BYTES
                put(minio, key, payload)
                (static_root / key).parent.mkdir(parents=True, exist_ok=True)
                (static_root / key).write_bytes(payload)
            cache_port, static_port = free_port(), free_port()
            cache_log = tmp / "cache-access.log"
            paths = [f"/media/{k.removeprefix('videos/')}" for k in keys]
            static_paths = [f"/{k}" for k in keys]
            with (
                nginx(cache_conf(cache_port, minio.endpoint, str(cache_log)), tmp / "cache",
                      cache_port) as cache,
                nginx(STATIC_CONF.format(port=static_port, root=static_root,
                                         access_log=tmp / "static-access.log"),
                      tmp / "static-nginx",
                      static_port) as static,
            ):  # fmt: skip
                for p in paths:
                    urllib.request.urlopen(cache + p).read()
                # A cache file is a header (key, upstream headers) then the body, so nginx
                # sendfile()s from an offset that is not page aligned. The same static
                # nginx serving the body from that very offset (a Range request on a file
                # with as many bytes in front) shows what that layout alone costs.
                cached = [f for f in (tmp / "cache" / "cache-media").rglob("*") if f.is_file()]
                offset = min(f.stat().st_size for f in cached) - SEGMENT_BYTES
                for i, key in enumerate(keys):
                    shifted = static_root / "shifted" / key
                    shifted.parent.mkdir(parents=True, exist_ok=True)
                    shifted.write_bytes(b"\0" * offset + bytes([i]) * SEGMENT_BYTES)
                shifted_paths = [f"/shifted/{k}" for k in keys]
                # Both write a JSON access log line per request: the same work.
                results: dict[str, list[WrkResult]] = {"cache": [], "static": [], "shifted": []}
                for _ in range(rounds):
                    results["static"].append(
                        run_wrk(static, static_paths, seconds, connections, tmp)
                    )
                    results["cache"].append(run_wrk(cache, paths, seconds, connections, tmp))
                    results["shifted"].append(
                        run_wrk(static, shifted_paths, seconds, connections, tmp, range_from=offset)
                    )
                entries = [json.loads(x) for x in cache_log.read_text().splitlines() if x]
                fetches = sum(1 for e in entries if e["upstream"] and "/media/" in e["request"])
                hits = sum(1 for e in entries if e["cache"] == "HIT")
    best = {k: max(v, key=lambda r: r.rps) for k, v in results.items()}
    paired = [c.rps / s.rps for c, s in zip(results["cache"], results["static"], strict=True)]
    at_offset = [c.rps / s.rps for c, s in zip(results["cache"], results["shifted"], strict=True)]
    return {"best": best, "origin_fetches": fetches, "hits": hits, "rounds": len(paired),
            "median_ratio": statistics.median(paired), "offset": offset,
            "median_shifted": statistics.median(at_offset), "load": os.getloadavg()[0]}  # fmt: skip


def table(result: dict[str, Any], seconds: int, connections: int) -> str:
    best = result["best"]
    static, cache = best["static"], best["cache"]
    lines = [
        "| server | requests/s | MB/s | p50 ms | p99 ms | ratio to static |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    labels = (("static", "nginx static files (the limit)"),
              ("shifted", f"nginx static, body at offset {result['offset']} (206)"),
              ("cache", "nginx cache tier, all HITs"))  # fmt: skip
    for name, label in labels:
        r = best[name]
        lines.append(
            f"| {label} | {r.rps:,.0f} | {r.bytes_per_s / 1024**2:,.0f} | {r.p50_ms:.1f} | "
            f"{r.p99_ms:.1f} | {r.rps / static.rps:.2f} |"
        )
    lines.append("")
    lines.append(
        f"wrk -t2 -c{connections} -d{seconds}s, {SEGMENTS} segments of 4 MiB in rotation, "
        f"best of {result['rounds']} alternating rounds each; origin fetches: "
        f"{result['origin_fetches']} (the warm-up's {SEGMENTS}). Ratio cache/static "
        f"requests/s: best **{cache.rps / static.rps:.2f}**, median of paired rounds "
        f"**{result['median_ratio']:.2f}**; cache/static-at-the-same-offset: best "
        f"**{cache.rps / best['shifted'].rps:.2f}**, median **{result['median_shifted']:.2f}** "
        f"(1-minute load average at the end: {result['load']:.1f} on {os.cpu_count()} CPUs)."
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="update docs/benchmarks-chart.md (default; --no-write to only print)",
    )
    args = parser.parse_args()
    result = measure(args.seconds, args.connections, args.rounds)
    text = table(result, args.seconds, args.connections)
    print(text)
    if args.write:
        write_section(
            "nginx-cache", f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.\n\n{text}"
        )


if __name__ == "__main__":
    main()
