"""Player startup: navigation to first frame in Chromium, on loopback and over 5 Mbit/s.

Transcodes a 10 s 1280x720 clip with the real worker (default ladder: 720p, 480p,
360p, 240p; default preset and segment length), serves it with the shipped API
entry point (``python -m kubevod.api.main``, one uvicorn process, SqliteCatalog +
FileStore), and opens ``/watch/<id>`` in headless Chromium (Playwright) again and
again. Startup is ``performance.now()`` at the first presented frame
(``requestVideoFrameCallback``), i.e. from the start of navigation: HTML, scripts,
hls.js, video metadata, manifests, init and first segments, decode.

Conditions:
- ``loopback, first visit``: a fresh browser context each run (cold caches, no service
  worker, no remembered bandwidth);
- ``loopback, repeat visit``: the same context navigating again (HTTP cache, service
  worker and the bandwidth measured last time);
- ``5 Mbit/s, first visit``: DevTools network emulation, 5 Mbit/s down and up, 20 ms
  round trip (service workers blocked: their fetches escape page-level throttling).

Prints a Markdown table; ``--write`` also writes ``docs/benchmarks-ui.md``.
Run: ``python -m bench.startup [--quick] [--write]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import binary, free_port

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks-ui.md"
VIEWPORT = {"width": 1280, "height": 720}
THROTTLE = {
    "offline": False,
    "latency": 20,  # ms round trip added
    "downloadThroughput": 5_000_000 / 8,  # bytes/s
    "uploadThroughput": 5_000_000 / 8,
}
FIRST_FRAME = "() => window.kubevodPlayer?.qoe?.startupMs ?? null"


@dataclass
class Sample:
    startup_ms: float
    height: int  # rung of the first frame


def make_source(path: Path, seconds: int) -> Path:
    """A 1280x720 30 fps test pattern with a 48 kHz stereo tone."""
    lavfi = [
        *("-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}"),
        *("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"),
    ]
    subprocess.run(
        [
            *(binary("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y", *lavfi),
            *("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac"),
            str(path),
        ],
        check=True,
    )
    return path


def transcode(data: Path, source: Path) -> str:
    """Run the real worker on ``source``; returns the video id."""
    from kubevod.worker.pipeline import run
    from kubevod.worker.settings import WorkerSettings

    from kubevod.backends import open_catalog, open_store
    from kubevod.jobs import TranscodeJob
    from kubevod.models import Video

    catalog = open_catalog(f"sqlite://{data / 'catalog.db'}")
    store = open_store((data / "media").as_uri())
    try:
        video = catalog.create(Video(title="Startup benchmark", source=str(source)))
        settings = WorkerSettings(ffmpeg=binary("ffmpeg"), ffprobe=binary("ffprobe"))
        run(TranscodeJob(video_id=video.id, source=str(source)), store=store, catalog=catalog,
            scratch=data / "scratch", settings=settings)  # fmt: skip
        return video.id
    finally:
        catalog.close()


@contextmanager
def api_server(data: Path) -> Iterator[str]:
    """The shipped API entry point in its own process; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "KUBEVOD_PORT": str(port),
        "KUBEVOD_CATALOG_URL": f"sqlite://{data / 'catalog.db'}",
        "KUBEVOD_STORE_URL": (data / "media").as_uri(),
    }
    log = (data / "api.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubevod.api.main"], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"API did not start; see {data / 'api.log'}")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def first_frame(page: Any, url: str) -> Sample:
    page.goto(url)
    page.wait_for_function(f"({FIRST_FRAME})() !== null", timeout=60_000)
    ms = float(page.evaluate(FIRST_FRAME))
    height = int(page.evaluate("document.querySelector('video').videoHeight"))
    return Sample(ms, height)


def measure(browser: Any, url: str, runs: int) -> dict[str, list[Sample]]:
    results: dict[str, list[Sample]] = {
        "loopback, first visit": [],
        "loopback, repeat visit": [],
        "5 Mbit/s, first visit": [],
    }
    for _ in range(runs):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        results["loopback, first visit"].append(first_frame(page, url))
        page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=10_000)
        page.goto("about:blank")
        results["loopback, repeat visit"].append(first_frame(page, url))
        context.close()

        context = browser.new_context(viewport=VIEWPORT, service_workers="block")
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", THROTTLE)
        results["5 Mbit/s, first visit"].append(first_frame(page, url))
        context.close()
    return results


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def table(results: dict[str, list[Sample]]) -> str:
    lines = [
        "| condition | runs | median (ms) | p90 (ms) | min (ms) | max (ms) | first frame from |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, samples in results.items():
        ms = [s.startup_ms for s in samples]
        rungs = sorted({f"{s.height}p" for s in samples}, key=lambda r: int(r[:-1]))
        lines.append(
            f"| {name} | {len(ms)} | {statistics.median(ms):.0f} | {pct(ms, 0.9):.0f} "
            f"| {min(ms):.0f} | {max(ms):.0f} | {', '.join(rungs)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs per condition, not 10")
    parser.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    runs = 3 if args.quick else 10

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="kubevod-bench-startup-") as tmp:
        data = Path(tmp)
        started = time.monotonic()
        video_id = transcode(data, make_source(data / "source.mp4", 10))
        print(f"transcoded in {time.monotonic() - started:.1f} s", file=sys.stderr)
        with api_server(data) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=os.path.realpath(binary("chromium")),
                headless=True,
                args=["--autoplay-policy=no-user-gesture-required", "--mute-audio"],
            )
            version = browser.version
            results = measure(browser, f"{base}/watch/{video_id}", runs)
            browser.close()

    body = table(results)
    print(body)
    if args.write:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        env = (
            f"Chromium {version} (headless, Playwright), {platform.machine()}, "
            f"{os.cpu_count()} CPUs shared with other work (load average {load} at the end), "
            f"Python {platform.python_version()}"
        )
        DOC.write_text(DOC_TEMPLATE.format(table=body, env=env, runs=runs))
        print(f"wrote {DOC.relative_to(ROOT)}", file=sys.stderr)


DOC_TEMPLATE = """\
# Benchmark: player startup (navigation to first frame)

`python -m bench.startup --write` ({runs} runs per condition). {env}.

A 10 s 1280x720 clip transcoded by the real worker (default ladder: 720p, 480p, 360p,
240p), served by the shipped API process (`python -m kubevod.api.main`, SqliteCatalog +
FileStore), opened at `/watch/<id>` in a 1280x720 viewport. Startup is
`performance.now()` at the first presented frame (`requestVideoFrameCallback`), so it
counts everything from the start of navigation: HTML, CSS, scripts (hls.js is 530 kB),
video metadata, master and media playlists, init segments, the first media segments
and decoding. The same number is what the player reports as `startup_ms` in its QoE
beacons.

{table}

- **first visit**: a fresh browser context every run (cold HTTP cache, no service worker,
  no remembered bandwidth, so hls.js starts from a 500 kb/s estimate);
- **repeat visit**: the same context again (HTTP cache, service worker, the bandwidth
  measured last time, so playback starts on the rung the network carried then);
- **5 Mbit/s**: Chrome DevTools network emulation, 5 Mbit/s each way plus 20 ms round
  trip; service workers blocked because their fetches escape page-level throttling.

Targets: under 2 s for HD (the seed), under 1 s on loopback.

What makes it fast: the watch page's `<head>` preloads the video's JSON and master
playlist and module-preloads the player's critical modules (captions, trickplay and
"Save for offline" are imported after startup), hls.js loads in parallel (`defer`), the first
segment of every video is 1 s long (worker setting), hls.js starts on a modest rung on a
first visit and on the rate it measured last time afterwards.

Where the time goes (one first visit profiled with Resource Timing on this machine): the
player's scripts run at about 0.45 s (HTML, then CSS/JS/JSON/master in parallel), the
rung and audio playlists, init and first segments follow as three more round trips, and
the first frame is composited right after `loadeddata`. The API itself answers each of
these requests in 1-4 ms on an idle machine; during the runs the two shared cores were
busy (see the load average), which stretched time to first byte to 100-300 ms per request.
"""


if __name__ == "__main__":
    main()
