"""The fetch guard's cost: a guarded download against a plain one of the same file.

nginx serves one file (default 512 MiB) on loopback. Alternating, the same
process downloads it to disk with

- ``plain``: httpx streaming in 1 MiB chunks with no checks (what the worker
  did before the guard), and
- ``guarded``: ``kubevod.fetchguard.GuardedFetch.download`` (resolve, check,
  connect to the checked address, chunks as they arrive with the deadline
  looked at after each).

Reports the median wall time and CPU time (this process: the Python side of a
download) of each, and their ratios. Prints a Markdown table; ``--write``
also updates its section of ``docs/benchmarks-worker.md``.
Run: ``python -m bench.fetch [--mib N] [--rounds N] [--write]``.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.common import free_port
from bench.nginx_cache import nginx
from kubevod.fetchguard import FetchLimits, FetchPolicy, GuardedFetch

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks-worker.md"
BEGIN, END = "<!-- bench.fetch: begin -->", "<!-- bench.fetch: end -->"
CONF = """\
worker_processes 1;
pid nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def plain(url: str, dest: Path) -> None:
    with httpx.Client() as client, client.stream("GET", url) as response:
        response.raise_for_status()
        with dest.open("wb") as out:
            for chunk in response.iter_bytes(1024 * 1024):
                out.write(chunk)


def guarded(url: str, dest: Path) -> None:
    policy = FetchPolicy.parse(allow=["127.0.0.1/32"])
    GuardedFetch(policy, FetchLimits(max_bytes=64 * 1024**3)).download(url, dest)


def timed(fn: Callable[[str, Path], None], url: str, dest: Path) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn(url, dest)
    result = time.perf_counter() - wall, time.process_time() - cpu
    dest.unlink()
    return result


def measure(mib: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    results: dict[str, list[tuple[float, float]]] = {"plain": [], "guarded": []}
    with tempfile.TemporaryDirectory(prefix="kubevod-bench-fetch-") as tmp_name:
        tmp = Path(tmp_name)
        root = tmp / "www"
        root.mkdir()
        with (root / "source.mp4").open("wb") as fh:
            block = bytes(range(256)) * 4096  # 1 MiB
            for _ in range(mib):
                fh.write(block)
        port = free_port()
        with nginx(CONF.format(port=port, root=root), tmp / "nginx", port) as base:
            url = f"{base}/source.mp4"
            plain(url, tmp / "warm.bin")  # page cache warm for both sides
            (tmp / "warm.bin").unlink()
            for n in range(rounds):
                order = [("plain", plain), ("guarded", guarded)]
                for name, fn in order if n % 2 == 0 else order[::-1]:
                    results[name].append(timed(fn, url, tmp / f"{name}.bin"))
    return results


def table(results: dict[str, list[tuple[float, float]]], mib: int) -> str:
    rows = ["| download | wall median | CPU median | MiB/s |", "|---|---|---|---|"]
    medians = {}
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        medians[name] = (wall, cpu)
        rows.append(f"| {name} | {wall:.3f} s | {cpu:.3f} s | {mib / wall:.0f} |")
    (pw, pc), (gw, gc) = medians["plain"], medians["guarded"]
    rows.append(f"| **guarded / plain** | **{gw / pw:.2f}x** | **{gc / pc:.2f}x** | |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    text = table(measure(args.mib, args.rounds), args.mib)
    print(text)
    if args.write:
        section = (
            f"{BEGIN}\n### The fetch guard's cost ({args.mib} MiB from nginx on loopback, "
            f"{args.rounds} alternated pairs; `python -m bench.fetch`)\n\n{text}\n{END}"
        )
        doc = DOC.read_text()
        pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
        doc = pattern.sub(section, doc) if pattern.search(doc) else doc.rstrip() + "\n\n" + section
        DOC.write_text(doc + ("" if doc.endswith("\n") else "\n"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
