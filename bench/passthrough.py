"""Passthrough benchmark: a compliant 1080p H.264/AAC source, its top rung remuxed against
every rung encoded, through the whole worker pipeline.

The source is what a phone or a good encode gives: 1080p30 H.264 High 4.0, a
keyframe every 2 s, 4 Mb/s (within the 1080p rung's 5 Mb/s cap), AAC-LC
stereo. Each round runs the real pipeline twice on FileStore + SQLite, with
``passthrough=auto`` and ``passthrough=never``, alternated so the load of a
shared machine hits both alike; the CPU of the least disturbed run of each
counts. It also checks that the top rung's decoded frames are the source's own
(MD5 of every frame) and measures each encoded rung's SSIM against the source.

Run: ``python -m bench.passthrough [--seconds 30] [--rounds 2] [--write]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from kubevod.worker.settings import WorkerSettings

from bench.common import publish
from bench.transcode import Measure, run_worker

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks-passthrough.md"
TARGET = 0.45  # ladder CPU with the top rung passed through, against encoding every rung
_SSIM = re.compile(r"All:([0-9.]+)")


def make_source(path: Path, seconds: float, ffmpeg: str) -> Path:
    argv = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-level", "4.0",
        "-pix_fmt", "yuv420p", "-b:v", "4M", "-maxrate", "4M", "-bufsize", "8M",
        "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "160k", "-ac", "2", str(path),
    ]  # fmt: skip
    subprocess.run(argv, check=True)
    return path


def frame_hashes(path: Path, ffmpeg: str) -> list[str]:
    done = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:v:0",
         "-f", "framemd5", "-"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return [ln.rsplit(",", 1)[1].strip() for ln in done.stdout.splitlines() if ln[:1] != "#"]


def ssim(encoded: Path, source: Path, ffmpeg: str) -> float:
    """SSIM of a rung against the source scaled to the rung's size (lanczos)."""
    probe = subprocess.run(
        [ffmpeg.replace("ffmpeg", "ffprobe"), "-v", "error", "-select_streams", "v:0",
         "-show_entries", "stream=width,height", "-of", "csv=p=0", str(encoded)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    width, height = probe.stdout.strip().split(",")[:2]
    done = subprocess.run(
        [ffmpeg, "-hide_banner", "-i", str(encoded), "-i", str(source), "-filter_complex",
         f"[1:v]scale={width}:{height}:flags=lanczos[ref];[0:v][ref]ssim", "-f", "null", "-"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    found = _SSIM.search(done.stderr)
    assert found, done.stderr[-400:]
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    ffprobe = shutil.which("ffprobe") or "ffprobe"
    base = {"x264_preset": args.preset, "ffmpeg": ffmpeg, "ffprobe": ffprobe}
    with tempfile.TemporaryDirectory(prefix="kubevod-bench-") as tmp:
        work = Path(tmp)
        source = make_source(work / "source.mp4", args.seconds, ffmpeg)
        copied: list[Measure] = []
        encoded: list[Measure] = []
        for n in range(max(1, args.rounds)):
            copied.append(run_worker(source, work / f"copy{n}", WorkerSettings(**base)))
            encoded.append(
                run_worker(source, work / f"encode{n}", WorkerSettings(**base, passthrough="never"))
            )
        best_copy = min(copied, key=lambda m: m.cpu)
        best_encode = min(encoded, key=lambda m: m.cpu)
        identical = frame_hashes(best_copy.outputs["1080p"], ffmpeg) == frame_hashes(source, ffmpeg)
        rungs = [name for name in best_copy.outputs if name != "audio"]
        quality = {
            name: (
                ssim(best_copy.outputs[name], source, ffmpeg),
                ssim(best_encode.outputs[name], source, ffmpeg),
            )
            for name in rungs
        }
    pairs = [c.cpu / e.cpu for c, e in zip(copied, encoded, strict=True)]
    ratio = best_copy.cpu / best_encode.cpu
    lines = [
        "# Benchmark: passthrough of a compliant source",
        "",
        f"`python -m bench.passthrough --seconds {args.seconds:g} --rounds {args.rounds}` on "
        f"{platform.machine()}, {os.cpu_count()} CPUs (shared), Python "
        f"{platform.python_version()}: a 1920x1080 30 fps H.264 High 4.0 source, 4 Mb/s, a "
        f"keyframe every 2 s, AAC-LC stereo, {args.seconds:g} s; the default ladder "
        f"(1080p..240p + audio), x264 `{args.preset}`; the whole worker pipeline on "
        "FileStore + SQLite (uploads, catalog, poster, trickplay).",
        "",
        "| run | CPU s | wall s | first playable s |",
        "|---|---:|---:|---:|",
        f"| every rung encoded (`passthrough: never`) | {best_encode.cpu:.1f} | "
        f"{best_encode.wall:.1f} | {best_encode.first_playable or float('nan'):.2f} |",
        f"| 1080p passed through, AAC copied (`auto`) | {best_copy.cpu:.1f} | "
        f"{best_copy.wall:.1f} | {best_copy.first_playable or float('nan'):.2f} |",
        "",
        f"- Ladder CPU with passthrough against encoding every rung: **{ratio:.2f}x** "
        f"(target {TARGET:.2f}x: {'met' if ratio <= TARGET else 'not met'}); each round's "
        "ratio: " + ", ".join(f"{p:.2f}" for p in pairs) + f" (load average at the end "
        f"{os.getloadavg()[0]:.1f}).",
        f"- Top rung decoded frame for frame (MD5 of each frame) against the source: "
        f"**{'identical' if identical else 'DIFFERENT'}**.",
        "",
        "SSIM against the source scaled to each rung (lanczos):",
        "",
        "| rung | passthrough run | all encoded |",
        "|---|---:|---:|",
        *(f"| {name} | {a:.4f} | {b:.4f} |" for name, (a, b) in quality.items()),
        "",
        "What remains with passthrough: decoding the source (the lower rungs, the poster "
        "and the trickplay need its frames), encoding the lower rungs, and the remux.",
        "",
    ]
    publish("\n".join(lines), DOC, args.write, ROOT)


if __name__ == "__main__":
    main()
