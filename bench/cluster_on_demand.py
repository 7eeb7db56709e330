"""The real cluster, on demand: a seek answered by a warm chunk worker, against the start
of a pod that a Job per wanted chunk would need first.

Starts the test cluster (tests/cluster) with cached binaries and images,
installs the chart as the e2e tests do (one chunk worker, the default), serves a 48 s 720p30
source from inside the cluster and applies it with ``spec.transcode.policy:
onDemand``. Once it is Ready (its Job registered it and its first chunk),
each round asks, through the cache Service as a player would, for the first
segment of the lowest rung of a chunk nobody has asked for yet (a seek), and
times the answer: the API writes the want, the warm worker takes it, fetches
the source (the first round only: it keeps it), encodes the chunk and uploads.

The baseline, side by side in the same rounds: the other design, a Job per
wanted chunk, has to start a pod of the worker image before it can do any of
that. Each round creates such a Job (the worker image running ``python -c
pass``: what runs does not matter, only when it starts) and times the request
that creates it to its container seen started (polled every 0.1 s; the API
server's timestamps have whole seconds only): the least a pod per request
adds to every seek, before the fetch and the encode. Root
only; ``--write`` writes ``docs/benchmarks-cluster-on-demand.md``.
Run: ``sudo python -m bench.cluster_on_demand [--rounds N] [--write]``.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.cluster import running_release

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks-cluster-on-demand.md"


def _get(url: str, timeout: float = 40) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except OSError:
        return 0, b""


def _lowest_playlist(base: str, vid: str) -> tuple[str, list[str]]:
    """The lowest rung's media playlist URL and its segment URIs."""
    import m3u8

    code, master = _get(f"{base}/v/{vid}/master.m3u8")
    assert code == 200, code
    variants = m3u8.loads(master.decode()).playlists
    lowest = min(variants, key=lambda p: p.stream_info.resolution[1])
    url = f"{base}/v/{vid}/{lowest.uri}"
    code, media = _get(url)
    assert code == 200, code
    return url, [line for line in media.decode().splitlines() if line.endswith(".m4s")]


def seek(base: str, playlist: str, segment: str) -> float:
    """Seconds until ``segment`` is served (503 is asked again, as players do)."""
    if segment.startswith("http"):
        url = segment
    elif segment.startswith("/"):
        url = base + segment
    else:
        url = playlist.rsplit("/", 1)[0] + "/" + segment
    t0 = time.monotonic()
    while True:
        code, body = _get(url)
        if code == 200 and body:
            return time.monotonic() - t0
        if time.monotonic() - t0 > 180:
            raise TimeoutError(f"{url}: {code}")
        time.sleep(0.2)


def pod_start(cluster: Any, image: str, name: str) -> float:
    """Seconds from the request that creates a Job to its container seen started (the
    API server's timestamps have whole seconds only, so this client's clock, polling
    every 0.1 s)."""
    from tests.e2e import support

    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/part-of": "kubevod-bench"}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "worker",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "command": ["python", "-c", "pass"],
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                        }
                    ],
                },
            },
        },
    }
    t0 = time.monotonic()
    cluster.kubectl("apply", "-n", support.NS, "-f", "-", input=json.dumps(job))
    while time.monotonic() < t0 + 120:
        pods = cluster.get_json("pods", "-n", support.NS, "-l", f"job-name={name}")["items"]
        for pod in pods:
            for status in pod["status"].get("containerStatuses") or []:
                state = status.get("state") or {}
                started = (state.get("running") or state.get("terminated") or {}).get("startedAt")
                if started:
                    took = time.monotonic() - t0
                    cluster.kubectl("delete", "job", "-n", support.NS, name, "--wait=false")
                    return took
        time.sleep(0.1)
    raise TimeoutError(f"job {name} did not start")


def main() -> int:
    from bench.cluster import root_args

    args = root_args(__doc__, "bench.cluster_on_demand", "rounds", 4)
    if args is None:
        return 2
    from tests.cluster import release
    from tests.e2e import support
    from tests.e2e.conftest import VALUES
    from tests.e2e.support import video_asset, wait_phase

    values = dict(VALUES)  # the e2e tests' install (the test cluster's stand-ins)
    rows: list[dict[str, float]] = []
    with running_release(values) as (cluster, took):
        port = cluster.forward_service(support.NS, release.component("cache"), 80)
        base = f"http://127.0.0.1:{port}"
        cluster.kubectl(
            "-n", support.NS, "rollout", "status", f"deploy/{release.component('chunks')}",
            "--timeout=180s", timeout=200,
        )  # fmt: skip
        asset = video_asset(
            "film", {"url": support.media_url("long.mp4")}, transcode={"policy": "onDemand"}
        )
        t0 = time.monotonic()
        cluster.apply([asset], namespace=support.NS)
        st = wait_phase(cluster, "film", ("Ready",), timeout=240)
        registered = time.monotonic() - t0
        vid = support.video_id(st)
        playlist, segments = _lowest_playlist(base, vid)
        total = st["chunks"]["total"]
        # Seeks far apart, back to front, so no chunk was asked for before (the one
        # after each sought chunk is asked for with it).
        picks = [len(segments) - 1 - 3 * i for i in range(args.rounds)]
        for n, index in enumerate(picks):
            rows.append(
                {
                    "seek": seek(base, playlist, segments[index]),
                    "pod start": pod_start(
                        cluster, support.project_image("worker"), f"bench-pod-{n}"
                    ),
                }
            )
    lines = [
        f"Cluster start (cached) {took['add-ons ready']:.0f} s, `helm install --wait` "
        f"{took['helm install']:.0f} s; `kubectl apply` to Ready (registration: pod start, "
        f"download, probe, poster, audio, first chunk) {registered:.1f} s; {total} chunks; "
        f"{args.rounds} rounds, alternating. {platform.machine()}, 2 CPUs, Python "
        f"{platform.python_version()}.",
        "",
        "| seconds | n | median | min | max |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in (
        ("seek", "seek answered by the warm chunk worker (want, take, encode, upload, serve)"),
        ("pod start", "a Job's pod: create request to container started (before any work)"),
    ):
        values = [r[key] for r in rows]
        lines.append(
            f"| {label} | {len(values)} | {statistics.median(values):.2f} | "
            f"{min(values):.2f} | {max(values):.2f} |"
        )
    ratio = statistics.median(r["seek"] for r in rows) / max(
        1e-3, statistics.median(r["pod start"] for r in rows)
    )
    lines.append(f"| **ratio, warm seek / pod start alone** | | **{ratio:.2f}x** | | |")
    text = "\n".join(lines)
    print(text)
    print("rounds:", json.dumps(rows))
    if args.write:
        head = "# Benchmarks: on demand in the cluster\n\n" + __doc__.split("\n\n", 1)[1]
        DOC.write_text(head + "\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
