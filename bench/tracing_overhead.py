"""What tracing costs: a hot path and real manifest requests, with and without telemetry.

Each mode runs in its own Python process (the tracer provider is process-wide):

- ``baseline``: the work alone, no span code at all;
- ``api-only``: span code but ``setup_telemetry`` never called (OpenTelemetry's no-op API);
- ``sdk``: ``setup_telemetry`` without ``OTEL_EXPORTER_OTLP_ENDPOINT`` (SDK spans, no processor);
- ``export``: with the endpoint set, a BatchSpanProcessor exporting OTLP/HTTP to a local sink.

Two workloads: rendering one HLS master playlist inside a span (the manifest
hot path, ~tens of µs), and ``GET /v/{id}/master.m3u8`` through the real API
(FileStore + SqliteCatalog, httpx over ASGI) with the API's ``ServerSpans`` middleware.
Prints a table and writes it to ``docs/benchmarks-observability.md`` with ``--write``.

Run: ``python -m bench.tracing_overhead [--quick] [--write]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODES = ("baseline", "api-only", "sdk", "export")
DOC = ROOT / "docs" / "benchmarks-observability.md"

CHILD = r"""
import asyncio, json, os, statistics, sys, tempfile, time
from pathlib import Path

mode, workload, iterations, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
from kubevod import telemetry
from kubevod.models import Rendition, TrackKind, Video, VideoState
if mode in ("sdk", "export"):
    telemetry.setup_telemetry("kubevod-bench", component="bench")

video = Video(
    id="bench-1", title="Bench", state=VideoState.READY, duration=600.0,
    renditions=[
        Rendition(name=f"{h}p", width=h * 16 // 9 // 2 * 2, height=h, frame_rate=30.0,
                  bandwidth=b, average_bandwidth=b * 4 // 5, codecs="avc1.64001f")
        for h, b in ((1080, 5_000_000), (720, 2_800_000), (480, 1_400_000), (360, 800_000))
    ] + [Rendition(name="audio", kind=TrackKind.AUDIO, bandwidth=128_000,
                   average_bandwidth=125_000, codecs="mp4a.40.2", timescale=48_000,
                   language="en", channels=2, sample_rate=48_000)],
)

def hot_path() -> list[float]:
    from kubevod.manifests.hls import render_master
    results = []
    for _ in range(repeats):
        start = time.perf_counter()
        if mode == "baseline":
            for _ in range(iterations):
                render_master(video)
        else:
            for _ in range(iterations):
                with telemetry.span("render manifest", video_id=video.id, manifest="master"):
                    render_master(video)
        results.append((time.perf_counter() - start) / iterations)
    return results

def api() -> list[float]:
    import httpx
    from kubevod.api.app import create_app
    from kubevod.api.settings import ApiSettings
    from kubevod.backends import open_catalog, open_store
    root = Path(tempfile.mkdtemp(prefix="kubevod-bench-"))
    store = open_store((root / "media").as_uri())
    catalog = open_catalog(f"sqlite://{root / 'catalog.db'}")
    catalog.create(video)
    app = create_app(ApiSettings(data_dir=root), store=store, catalog=catalog)
    if mode != "baseline":
        from kubevod.api.tracing import ServerSpans

        app.add_middleware(ServerSpans, excluded_paths=telemetry.UNTRACED_PATHS.split(","))
    async def run() -> list[float]:
        transport = httpx.ASGITransport(app=app)
        out = []
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for _ in range(50):  # warm-up
                (await client.get("/v/bench-1/master.m3u8")).raise_for_status()
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(iterations):
                    response = await client.get("/v/bench-1/master.m3u8")
                    assert response.status_code == 200, response.text
                out.append((time.perf_counter() - start) / iterations)
        return out
    try:
        return asyncio.run(run())
    finally:
        catalog.close()

results = hot_path() if workload == "hot" else api()
telemetry.shutdown()
print(json.dumps({"best": min(results), "median": statistics.median(results)}))
"""


class _Sink(BaseHTTPRequestHandler):
    """Accepts any OTLP export and answers 200 with an empty (valid) protobuf body."""

    count = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).count += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


def run_mode(
    mode: str, workload: str, iterations: int, repeats: int, sink: str
) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / p) for p in (".", "api", "worker", "operator"))
    if mode == "export":
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink
    argv = [sys.executable, "-c", CHILD, mode, workload, str(iterations), str(repeats)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{mode}/{workload} failed:\n{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def api_available() -> bool:
    return (ROOT / "api" / "kubevod" / "api" / "app.py").exists()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (best kept)")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sink = f"http://127.0.0.1:{server.server_address[1]}"

    # Modes are interleaved round by round and the best round is kept, so a burst
    # of load from other processes on the machine cannot favour one mode.
    plans = [("hot", 1000 if args.quick else 5000)]
    if api_available():
        plans.append(("api", 100 if args.quick else 500))
    rounds = 2 if args.quick else args.rounds
    best: dict[tuple[str, str], float] = {}
    for _ in range(rounds):
        for workload, iterations in list(plans):
            for mode in MODES:
                try:
                    result = run_mode(mode, workload, iterations, 3, sink)
                except RuntimeError as exc:
                    if workload != "api":
                        raise
                    # The API is another team's moving target: report the hot path anyway.
                    print(f"API workload skipped: {str(exc)[-400:]}", file=sys.stderr)
                    plans.remove((workload, iterations))
                    break
                key = (workload, mode)
                best[key] = min(best.get(key, float("inf")), result["best"])
    rows: list[tuple[str, str, float, float]] = []
    for workload, _ in plans:
        baseline = best[(workload, "baseline")]
        for mode in MODES:
            value = best[(workload, mode)]
            rows.append((workload, mode, value * 1e6, value / baseline))
    server.shutdown()

    names = {"hot": "render_master in a span", "api": "GET master.m3u8 (API, ASGI)"}
    lines = [
        "| workload | mode | µs per op (best round) | ratio to baseline |",
        "|---|---|---:|---:|",
        *(f"| {names[w]} | {m} | {us:.1f} | {r:.2f}x |" for w, m, us, r in rows),
    ]
    table = "\n".join(lines)
    print(table)
    print(f"(spans exported to the sink in {_Sink.count} OTLP requests)")
    if args.write:
        machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        machine += f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
        DOC.write_text(DOC_TEMPLATE.format(table=table, machine=machine, rounds=rounds))
        print(f"wrote {DOC.relative_to(ROOT)}")


DOC_TEMPLATE = """\
# Benchmarks: observability overhead

Measured by `bench/tracing_overhead.py` (`python -m bench.tracing_overhead --write`)
on {machine}. Each mode runs in its own process; modes are interleaved over
{rounds} rounds of 3 repeats each and the best is kept (the machine is shared).

- **baseline**: the work alone, no span code and no instrumentation;
- **api-only**: span code (and the `ServerSpans` middleware for the API) but `setup_telemetry`
  never called: OpenTelemetry's no-op API;
- **sdk**: `setup_telemetry` without `OTEL_EXPORTER_OTLP_ENDPOINT`, the default in
  the cluster without a collector: real span ids (logs carry them), no processor;
- **export**: `OTEL_EXPORTER_OTLP_ENDPOINT` set, BatchSpanProcessor exporting
  OTLP/HTTP to a local sink.

{table}

Reading it: the bare manifest render is a few tens of microseconds, so a
span around it shows as a large ratio on its own: the no-op API costs a few
µs, an SDK span (ids, attributes, context attach/detach) tens of µs on this
machine, and export adds queueing plus the batch thread's protobuf encoding,
which competes for the GIL. A whole manifest request through the API (routing,
catalog read, ETag, middleware; one FastAPI server span and one render span,
ASGI send/receive spans excluded) costs far more than its spans, so the ratio
there is small. The machine is shared with other jobs (2 cores, load often
above 5): differences under ~10% are noise, and a baseline-beating traced row
is noise too.
"""


if __name__ == "__main__":
    main()
