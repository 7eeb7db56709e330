"""Rungs scaled from another rung with zimg match the same rungs scaled by swscale.

The worker makes lower rungs from a larger rung's frames (``zscale`` lanczos)
where it is safe, instead of swscale. A mistake there (chroma siting, colour
range, a 10-bit or 4:2:2 source, a zimg bug) would not break any segment, only
shift or tint every picture; so each plane of every cascaded rung is compared,
before any encoding, with the same path through the ladder done by swscale
alone (the path bench/transcode.py measured against one process per rung).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from kubevod.worker.ffmpeg import EncodePlan, filter_graph, scale_parents
from kubevod.worker.ladder import Rung

from tests.fixtures.util import require

pytestmark = pytest.mark.integration


def rung(width: int, height: int) -> Rung:
    return Rung(f"{height}p", width, height, 30.0, 1_000_000, 2_000_000)


# From a 1280x720 source. The first ladder's 240p comes from 480p at 854 -> 426, a ratio
# zimg 3.0.4 gets wrong (ZSCALE_MAX_RATIO keeps it on swscale); the second has an exact
# 2:1 step (720p -> 360p) and a 1.5:1 one (360p -> 240p).
LADDERS = {
    "720-480-240": (rung(1280, 720), rung(854, 480), rung(426, 240)),
    "720-360-240": (rung(1280, 720), rung(640, 360), rung(426, 240)),
}
_PSNR = re.compile(r"PSNR y:([0-9.inf]+) u:([0-9.inf]+) v:([0-9.inf]+)")


def make_source(path: Path, pix_fmt: str) -> Path:
    """One second of moving test pattern, stored losslessly (x264 -qp 0 keeps yuvj420p as
    a full-range stream, as phones write them; FFV1 keeps the others)."""
    codec = ["-c:v", "libx264", "-qp", "0"] if pix_fmt == "yuvj420p" else ["-c:v", "ffv1"]
    subprocess.run(
        [require("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=1",
         "-vf", f"format={pix_fmt}", *codec, str(path)],
        check=True,
    )  # fmt: skip
    return path


def swscale_reference(rungs: tuple[Rung, ...], index: int) -> str:
    """The same path to rung ``index`` as the worker's graph, every step done by swscale."""
    parents = scale_parents(rungs)
    path = [index]
    while parents[path[-1]] != -1:
        path.append(parents[path[-1]])
    top, *rest = (rungs[i] for i in reversed(path))
    chain = f"[0:0]scale={top.width}:{top.height}:flags=bicubic,setsar=1,format=yuv420p"
    return chain + "".join(f",scale={r.width}:{r.height}:flags=lanczos" for r in rest)


def plane_psnr(source: Path, rungs: tuple[Rung, ...], index: int) -> tuple[float, float, float]:
    """PSNR (y, u, v) of the worker's rung ``index`` against the swscale-only path to it."""
    graph = filter_graph(
        EncodePlan(source=str(source), video_stream=0, rungs=rungs, scaler="zscale")
    )
    graph += f";{swscale_reference(rungs, index)}[ref];[v{index}][ref]psnr"
    sinks = [a for i in range(len(rungs)) if i != index for a in ("-map", f"[v{i}]")]
    done = subprocess.run(
        [require("ffmpeg"), "-hide_banner", "-nostdin", "-filter_complex_threads", "1",
         "-i", str(source), "-filter_complex", graph, *sinks, "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = _PSNR.search(done.stderr)
    assert found, done.stderr[-800:]
    y, u, v = (float(x) for x in found.groups())
    return y, u, v


def test_the_ladders_use_zimg_where_it_is_safe() -> None:
    graphs = {
        name: filter_graph(EncodePlan(source="s", video_stream=0, rungs=r, scaler="zscale"))
        for name, r in LADDERS.items()
    }
    assert graphs["720-480-240"].count("zscale=") == 1  # 480p; 240p stays on swscale
    assert "scale=426:240:flags=lanczos" in graphs["720-480-240"]
    assert graphs["720-360-240"].count("zscale=") == 2


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuvj420p", "yuv420p10le", "yuv422p"])
@pytest.mark.parametrize("ladder", sorted(LADDERS))
def test_cascaded_rungs_match_scaling_from_the_source(
    tmp_path: Path, pix_fmt: str, ladder: str
) -> None:
    source = make_source(tmp_path / f"{pix_fmt}.mkv", pix_fmt)
    rungs = LADDERS[ladder]
    for index in (1, 2):
        y, u, v = plane_psnr(source, rungs, index)
        # zimg and swscale lanczos differ far less than any encoder does (x264 at CRF 23
        # is ~42 dB here); a half-pixel chroma shift or a column zimg leaves grey
        # brings u/v to 30-47 dB.
        assert min(y, u, v) >= 50, f"{rungs[index].name}: y={y} u={u} v={v}"
