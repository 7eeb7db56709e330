"""Chunked ladder benchmark: the video encoded chunk by chunk (an ffmpeg per chunk, the
audio once) against one ffmpeg for everything, through the whole worker pipeline.

Each round runs the real pipeline twice on FileStore + SQLite on the same
1080p30 source, once with ``chunk_seconds=0`` and once chunked, alternated so
the load of a shared machine hits both alike; the CPU of the least disturbed
run of each counts. Quality is each rung's SSIM against the source; the audio
of both runs is compared byte for byte (it is one continuous encode in both).

Run: ``python -m bench.chunks [--seconds 60] [--chunk 20] [--rounds 2] [--write]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import tempfile
from pathlib import Path

from kubevod.worker.settings import WorkerSettings

from bench.common import publish
from bench.passthrough import ssim
from bench.transcode import Measure, make_source, run_worker

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks-chunks.md"
TARGET = 1.05  # chunked ladder CPU against one ffmpeg


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--chunk", type=float, default=20.0, help="chunk length, s")
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
        whole: list[Measure] = []
        chunked: list[Measure] = []
        for n in range(max(1, args.rounds)):
            whole.append(run_worker(source, work / f"one{n}", WorkerSettings(**base)))
            chunked.append(
                run_worker(
                    source, work / f"chunks{n}", WorkerSettings(**base, chunk_seconds=args.chunk)
                )
            )
        best_whole = min(whole, key=lambda m: m.cpu)
        best_chunked = min(chunked, key=lambda m: m.cpu)
        rungs = [name for name in best_whole.outputs if name != "audio"]
        quality = {
            name: (
                ssim(best_chunked.outputs[name], source, ffmpeg),
                ssim(best_whole.outputs[name], source, ffmpeg),
            )
            for name in rungs
        }
        same_audio = _digest(best_chunked.outputs["audio"]) == _digest(best_whole.outputs["audio"])
    pairs = [c.cpu / w.cpu for c, w in zip(chunked, whole, strict=True)]
    ratio = best_chunked.cpu / best_whole.cpu
    chunks = max(1, round(args.seconds / args.chunk))
    lines = [
        "# Benchmark: the ladder in chunks",
        "",
        f"`python -m bench.chunks --seconds {args.seconds:g} --chunk {args.chunk:g} --rounds "
        f"{args.rounds}` on {platform.machine()}, {os.cpu_count()} CPUs (shared), Python "
        f"{platform.python_version()}: a 1920x1080 30 fps source of {args.seconds:g} s "
        f"(testsrc2 and a sine), the default ladder (1080p..240p + audio), x264 "
        f"`{args.preset}`; the whole worker pipeline on FileStore + SQLite (uploads, catalog, "
        f"poster, trickplay). Chunked: about {chunks} chunks of {args.chunk:g} s, one ffmpeg "
        "each, one after the other, and one ffmpeg for the audio alongside.",
        "",
        "| run | CPU s | wall s | first playable s |",
        "|---|---:|---:|---:|",
        f"| one ffmpeg | {best_whole.cpu:.1f} | {best_whole.wall:.1f} | "
        f"{best_whole.first_playable or float('nan'):.2f} |",
        f"| chunks of {args.chunk:g} s | {best_chunked.cpu:.1f} | {best_chunked.wall:.1f} | "
        f"{best_chunked.first_playable or float('nan'):.2f} |",
        "",
        f"- Chunked ladder CPU against one ffmpeg: **{ratio:.3f}x** (target at most "
        f"{TARGET:.2f}x: {'met' if ratio <= TARGET else 'not met'}); each round's ratio: "
        + ", ".join(f"{p:.3f}" for p in pairs)
        + f" (load average at the end {os.getloadavg()[0]:.1f}).",
        f"- Audio of the two runs: **{'identical bytes' if same_audio else 'DIFFERENT'}** "
        "(encoded once for the whole source in both, so nothing changes at a chunk boundary).",
        "",
        "SSIM against the source scaled to each rung (lanczos):",
        "",
        "| rung | chunked | one ffmpeg |",
        "|---|---:|---:|",
        *(f"| {name} | {a:.4f} | {b:.4f} |" for name, (a, b) in quality.items()),
        "",
    ]
    publish("\n".join(lines), DOC, args.write, ROOT)


if __name__ == "__main__":
    main()
