"""uvicorn's HTTP parser and event loop: h11 + asyncio against httptools + uvloop
(``uvicorn[standard]``), the same API app answering the same manifests, side by side.

Two processes of the API app (``bench.api_manifests:untraced_app``, the seeded
10-minute video) differ only in ``--http`` and ``--loop``; ``wrk -c16`` asks
each in turn for ``master.m3u8`` and the 150-segment ``720p.m3u8``, several
rounds; the best round of each counts. Writes its section of
docs/benchmarks-api.md (``--write``).

Run: ``python -m bench.uvicorn_impl [--rounds 3] [--seconds 5] [--write]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

from bench.api_manifests import TARGETS, _uvicorn, run_wrk, seed
from bench.common import free_port, start, stop, wait_http, write_section

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks-api.md"
IMPLS = {
    "h11 + asyncio": ["--http", "h11", "--loop", "asyncio"],
    "httptools + uvloop": ["--http", "httptools", "--loop", "uvloop"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kubevod-bench-uvicorn-"))
    data = work / "data"
    data.mkdir()
    seed(data)
    env = {
        **os.environ,
        "KUBEVOD_CATALOG_URL": f"sqlite://{data / 'catalog.db'}",
        "KUBEVOD_STORE_URL": (data / "media").as_uri(),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    procs, servers = [], {}
    try:
        for name, flags in IMPLS.items():
            port = free_port()
            argv = _uvicorn("untraced_app", port) + flags
            procs.append(start(argv, work / f"{port}.log", env))
            servers[name] = f"http://127.0.0.1:{port}"
        for base in servers.values():
            wait_http(base + "/healthz")
        best: dict[tuple[str, str], tuple[float, float, float]] = {}
        for _ in range(max(1, args.rounds)):
            for target, path in TARGETS.items():
                for name, base in servers.items():
                    run_wrk(base + path, 1, 16)  # warm up
                    rps, p50, p99, _count = run_wrk(base + path, args.seconds, 16)
                    if rps > best.get((target, name), (0.0, 0.0, 0.0))[0]:
                        best[(target, name)] = (rps, p50, p99)
    finally:
        for proc in procs:
            stop(proc)
    lines = [
        "## uvicorn: h11 + asyncio vs httptools + uvloop",
        "",
        f"`python -m bench.uvicorn_impl --rounds {args.rounds} --seconds {args.seconds}` on "
        f"{platform.machine()}, {os.cpu_count()} CPUs (shared; load average at the end "
        f"{os.getloadavg()[0]:.1f}), Python {platform.python_version()}: the API app without "
        "tracing, one uvicorn process each, `wrk -t1 -c16`, the best of the rounds.",
        "",
        "| manifest | uvicorn | requests/s | p50 ms | p99 ms | vs h11 + asyncio |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for target in TARGETS:
        base_rps = best[(target, "h11 + asyncio")][0]
        for name in IMPLS:
            rps, p50, p99 = best[(target, name)]
            lines.append(
                f"| {target} | {name} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | "
                f"{rps / base_rps:.2f}x |"
            )
    lines += [
        "",
        "kubevod depends on `uvicorn[standard]`, so `kubevod-api` and `kubevod serve` run "
        "on httptools and uvloop (uvicorn picks them when they are installed).",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section(DOC, "uvicorn-impl", body, "# Benchmarks: serving manifests")
        print(f"wrote {DOC.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
