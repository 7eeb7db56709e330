"""On-demand benchmark: a long 1080p source added on demand in local mode, against the same
source added eagerly (today's sequential pipeline), side by side.

For each policy a fresh ``kubevod serve`` (its own data folder, so nothing is
de-duplicated) gets ``kubevod add`` of the source, timed from the CLI's start:

- listed: the video is in the library with its duration and a poster that downloads;
- playable: the catalog says playable;
- first frame: headless Chromium opens ``/watch/<id>`` (hls.js) and presents its first
  frame (the player's own startup figure, from navigation);
- seek: ``currentTime = --seek-to`` right after the first frame, until the picture moves
  again past that point. The eager video can only seek where its transcode has reached,
  so there the wait includes the transcode reaching it (what a viewer meets today).

The eager run comes second, so the on-demand server is stopped before it starts
and they never share the CPU.

Run: ``python -m bench.on_demand [--seconds 600] [--seek-to 480] [--write]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import binary, free_port, publish, start, stop, wait_http

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks-on-demand.md"
FIRST_FRAME = "() => window.kubevodPlayer?.qoe?.startupMs ?? null"
#: Seek, then wait until the picture moves past the target (playing, frames decoded).
SEEK = """async ([to, limit]) => {
  const v = document.querySelector('video');
  const t0 = performance.now();
  while (!(v.seekable.length && v.seekable.end(v.seekable.length - 1) > to + 2)) {
    if (performance.now() - t0 > limit) return null;
    await new Promise(r => setTimeout(r, 200));
  }
  v.currentTime = to;
  v.play().catch(() => {});
  while (!(v.currentTime > to + 0.2 && v.readyState >= 3 && !v.paused)) {
    if (performance.now() - t0 > limit) return null;
    await new Promise(r => setTimeout(r, 20));
  }
  return performance.now() - t0;
}"""


#: After the seek: play on for ``seconds`` of wall time; how long, and how often, the
#: picture waited (readyState below HAVE_FUTURE_DATA while playing), and where it got.
AFTER = """async (seconds) => {
  const v = document.querySelector('video');
  let waited = 0, stalls = 0, since = null;
  const t0 = performance.now(), from = v.currentTime;
  while (performance.now() - t0 < seconds * 1000) {
    const stuck = v.readyState < 3 && !v.paused && !v.ended;
    if (stuck && since === null) { since = performance.now(); stalls += 1; }
    if (!stuck && since !== null) { waited += performance.now() - since; since = null; }
    await new Promise(r => setTimeout(r, 20));
  }
  if (since !== null) waited += performance.now() - since;
  return [waited / 1000, stalls, v.currentTime - from];
}"""


@dataclass
class Run:
    policy: str
    listed: float = float("nan")
    playable: float = float("nan")
    first_frame: float = float("nan")
    seek: float = float("nan")
    #: After the seek, over ``--after`` s of playing: seconds waited, stalls, video advanced.
    after: tuple[float, int, float] | None = None


def make_source(path: Path, seconds: int) -> Path:
    """1920x1080 30 fps testsrc2 with a 48 kHz tone, quick to make (x264 ultrafast)."""
    subprocess.run(
        [binary("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-crf", "26", "-g", "60",
         "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


def _json(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            data: dict[str, Any] = json.loads(answer.read() or b"{}")
            return data
    except OSError:
        return {}


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status == 200 and bool(answer.read(1))
    except OSError:
        return False


def measure(
    policy: str, source: Path, work: Path, seek_to: float, browser: Any, after: float = 0.0
) -> Run:
    kubevod = str(Path(sys.executable).with_name("kubevod"))
    tools = str(Path(binary("ffprobe")).parent)
    env = {**os.environ, "PATH": f"{tools}:{os.environ.get('PATH', '')}"}
    data, port = work / f"data-{policy}", free_port()
    base = f"http://127.0.0.1:{port}"
    flag = "--on-demand" if policy == "onDemand" else "--eager"
    server = start(
        [kubevod, "serve", "--data", str(data), "--port", str(port), flag],
        work / f"serve-{policy}.log", env=env,
    )  # fmt: skip
    run = Run(policy)
    try:
        wait_http(f"{base}/healthz")
        t0 = time.monotonic()
        added = subprocess.run(
            [kubevod, "add", str(source), "--data", str(data), "--no-wait", "--json", flag],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        video_id = json.loads(added.stdout)["id"]
        while True:
            video = _json(f"{base}/api/videos/{video_id}")
            poster = (video.get("playback") or {}).get("poster")
            url = poster and (base + poster if poster.startswith("/") else poster)
            if unmeasured(run.listed) and video.get("duration") and url and _ok(url):
                run.listed = time.monotonic() - t0
            if video.get("playable"):
                run.playable = time.monotonic() - t0
                break
            if video.get("state") == "failed" or time.monotonic() - t0 > 600:
                raise SystemExit(f"{policy}: not playable: {video.get('message')}")
            time.sleep(0.02)
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        page = context.new_page()
        asked: dict[Any, float] = {}
        answers: list[tuple[float, float, str, int]] = []  # asked, answered, path, status
        page.on("request", lambda r: asked.__setitem__(r, time.monotonic()))
        page.on(
            "response",
            lambda r: answers.append(
                (asked.get(r.request, 0.0), time.monotonic(), r.url, r.status)
            ),
        )
        page.goto(f"{base}/watch/{video_id}")
        page.wait_for_function(f"({FIRST_FRAME})() !== null", timeout=120_000)
        run.first_frame = float(page.evaluate(FIRST_FRAME)) / 1000
        sought = time.monotonic()
        waited = page.evaluate(SEEK, [seek_to, 1_500_000])
        run.seek = float("nan") if waited is None else float(waited) / 1000
        if waited is not None and after > 0:
            stalled, stalls, advanced = page.evaluate(AFTER, after)
            run.after = (float(stalled), int(stalls), float(advanced))
        context.close()
        # Where the seek's time went: each media request after it (s from the seek).
        for began, ended, url, status in answers:
            if began >= sought and "/media/" in url:
                name = "/".join(url.split("?")[0].rsplit("/", 2)[-2:])
                print(f"  {policy} seek +{began - sought:6.2f} s  {ended - began:5.2f} s  "
                      f"{status} {name}", file=sys.stderr)  # fmt: skip
    finally:
        stop(server)
    return run


def _cell(value: float) -> str:
    """A table cell: seconds, or a dash for what never happened in the run."""
    return "—" if unmeasured(value) else f"{value:.2f}"


def unmeasured(value: float) -> bool:
    """True while ``value`` is still unmeasured (NaN)."""
    return value != value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--seek-to", type=float, default=480.0)
    parser.add_argument(
        "--after", type=float, default=30.0,
        help="seconds to play on after the seek, counting the waits (on demand only)",
    )  # fmt: skip
    parser.add_argument(
        "--eager",
        type=float,
        nargs=4,
        metavar=("LISTED", "PLAYABLE", "FIRST", "SEEK"),
        help="the eager run's figures from an earlier run, instead of running it again "
        "(it takes as long as the transcode takes to reach the seek point)",
    )
    parser.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="kubevod-bench-od-") as tmp:
        work = Path(tmp)
        made = time.monotonic()
        source = make_source(work / "film.mp4", args.seconds)
        print(f"source made in {time.monotonic() - made:.0f} s", file=sys.stderr)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=os.path.realpath(binary("chromium")), headless=True,
                args=["--autoplay-policy=no-user-gesture-required", "--mute-audio"],
            )  # fmt: skip
            on = measure("onDemand", source, work, args.seek_to, browser, args.after)
            eager = Run("eager", *args.eager) if args.eager else None
            if eager is None:
                eager = measure("eager", source, work, args.seek_to, browser)
            browser.close()
    rows = [
        ("listed with duration and poster, from `kubevod add`", "listed"),
        ("playable (catalog), from `kubevod add`", "playable"),
        ("first frame at 0:00, from navigation", "first_frame"),
        (f"picture moving at {args.seek_to / 60:g}:00 after the seek", "seek"),
    ]
    target = {"listed": 2.0, "first_frame": 2.0, "seek": 2.5}
    lines = [
        "# Benchmark: on-demand transcoding",
        "",
        f"`python -m bench.on_demand --seconds {args.seconds} --seek-to {args.seek_to:g}` on "
        f"{platform.machine()}, {os.cpu_count()} CPUs (shared), Python "
        f"{platform.python_version()}: a {args.seconds / 60:g}-minute 1920x1080 30 fps source "
        "(testsrc2 and a tone), the default ladder (1080p..240p + audio), x264 `veryfast`; "
        "`kubevod serve` and `kubevod add` as a user runs them, one server at a time; headless "
        "Chromium with the shipped player (hls.js). Seconds."
        + (" The eager column is from an earlier run of the same command." if args.eager else ""),
        "",
        "| step | on demand | eager (sequential) | target (on demand) |",
        "|---|---:|---:|---:|",
        *(
            f"| {label} | {_cell(getattr(on, key))} | {_cell(getattr(eager, key))} | "
            + (f"≤ {target[key]:g}" if key in target else "report")
            + " |"
            for label, key in rows
        ),
        "",
        "A dash: it did not happen during the run (an eager video gets its poster when it "
        "is ready).",
        "",
        *(
            [
                f"Playing on for {args.after:g} s after the seek (on demand): the picture "
                f"waited {on.after[0]:.1f} s in {on.after[1]} stalls and advanced "
                f"{on.after[2]:.1f} s of video.",
                "",
            ]
            if on.after
            else []
        ),
        "Met: "
        + ", ".join(
            f"{key.replace('_', ' ')} {'yes' if getattr(on, key) <= lim else 'no'}"
            for key, lim in target.items()
        )
        + f" (load average at the end {os.getloadavg()[0]:.1f}).",
        "",
    ]
    publish("\n".join(lines), DOC, args.write, ROOT)


if __name__ == "__main__":
    main()
