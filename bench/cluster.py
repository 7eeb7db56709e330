"""The real cluster: fixture start, and ``kubectl apply`` to playable, pod start included.

Starts the test cluster (tests/cluster: containerd, kubelet and the control
plane in a sealed network namespace) with cached binaries and images, installs
the chart, serves a 16 s 720p clip from inside the cluster, then applies
VideoAssets one after another. For each it times, from the moment
``kubectl apply`` is run:

- the operator's Job created (``metadata.creationTimestamp`` of the Job: the
  API server's clock, on this same machine),
- the worker container started (the pod's ``state.running.startedAt``),
- playable: the API, asked through the cache Service, lists every rung with a
  first segment (master playlist and each media playlist).

The baseline is the worker alone: the ``worker to playable`` part, from the
container's start; the rest is what the cluster adds (operator, scheduling,
sandbox, image, Python start). Root only. Prints a Markdown table; ``--write``
also writes ``docs/benchmarks-cluster.md``.
Run: ``sudo python -m bench.cluster [--runs N] [--write]``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks-cluster.md"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except OSError:
        return 0, b""


def playable(base: str, vid: str) -> bool:
    """Every rung of the master playlist has a first segment listed."""
    code, master = _get(f"{base}/v/{vid}/master.m3u8?nocache={time.monotonic_ns()}")
    if code != 200:
        return False
    uris = [line for line in master.decode().splitlines() if line and not line.startswith("#")]
    if not uris:
        return False
    for uri in uris:
        code, media = _get(f"{base}/v/{vid}/{uri}?nocache={time.monotonic_ns()}")
        if code != 200 or b".m4s" not in media:
            return False
    return True


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def one(cluster: Any, base: str, name: str) -> dict[str, float]:
    from kubevod.operator import naming

    from tests.e2e import support

    doc = support.video_asset(name, {"url": support.media_url()})
    t0 = time.time()
    out = cluster.kubectl(
        "apply", "-n", support.NS, "-o", "json", "-f", "-", input=json.dumps(doc)
    ).stdout
    uid = json.loads(out)["metadata"]["uid"]
    vid = naming.video_id(support.NS, name, uid)
    while not playable(base, vid):
        if time.time() - t0 > 120:
            raise TimeoutError(f"{name} not playable after 120 s")
        time.sleep(0.05)
    t_playable = time.time()
    job_name = naming.job_name(name, uid, 1)
    job = cluster.get_json("job", "-n", support.NS, job_name)
    pod = cluster.get_json("pods", "-n", support.NS, "-l", f"job-name={job_name}")["items"][0]
    state = pod["status"]["containerStatuses"][0]["state"]
    started = state.get("running", state.get("terminated", {})).get("startedAt")
    return {
        "job created": _ts(job["metadata"]["creationTimestamp"]) - t0,
        "container started": _ts(started) - t0,
        "playable": t_playable - t0,
        "worker to playable": t_playable - _ts(started),
    }


@contextlib.contextmanager
def running_release(
    values: dict[str, object], **media: int
) -> Iterator[tuple[Any, dict[str, float]]]:
    """The test cluster up (cached binaries and images), the chart installed with
    ``values`` and the media server ready (``media``: its clip lengths); the cluster
    and how long each step took (s). Torn down on the way out. Root only."""
    from tests.cluster import images, release
    from tests.cluster.cluster import Cluster
    from tests.e2e import support

    archives = images.build_cluster_images(progress=lambda _: None)
    with tempfile.TemporaryDirectory(prefix="kubevod-bench-cluster-") as tmp:
        cluster = Cluster(Path(tmp), netns_name=f"kubevod-bench-{os.getpid()}")
        t0 = time.monotonic()
        cluster.up(archives, progress=lambda _: None)
        took = {"node Ready": time.monotonic() - t0}
        cluster.wait_addons(progress=lambda _: None)
        took["add-ons ready"] = time.monotonic() - t0
        try:
            t1 = time.monotonic()
            release.install(cluster, values)
            took["helm install"] = time.monotonic() - t1
            cluster.apply(support.media_server(**media), namespace=support.NS)
            cluster.kubectl(
                "-n", support.NS, "rollout", "status", f"deploy/{support.MEDIA_SERVER}",
                "--timeout=300s",
            )  # fmt: skip
            yield cluster, took
        finally:
            cluster.down(progress=lambda _: None)


def root_args(doc: str, module: str, count: str, default: int) -> argparse.Namespace | None:
    """A cluster benchmark's arguments (``--<count> N``, ``--write``), or None, said on
    stderr, when not run as root (the cluster's network namespace needs it)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(f"--{count}", type=int, default=default)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print(f"{module} needs root (the cluster's network namespace)", file=sys.stderr)
        return None
    return args


def main() -> int:
    args = root_args(__doc__, "bench.cluster", "runs", 5)
    if args is None:
        return 2
    from tests.cluster import release
    from tests.e2e import support

    values = {"worker.resources.requests.cpu": "250m", **release.FETCH_VALUES}
    with running_release(values) as (cluster, took):
        port = cluster.forward_service(support.NS, release.component("cache"), 80)
        base = f"http://127.0.0.1:{port}"
        rows = [one(cluster, base, f"bench-{i}") for i in range(args.runs)]
    node_ready, fixture, install = (
        took["node Ready"], took["add-ons ready"], took["helm install"]
    )  # fmt: skip
    keys = list(rows[0])
    lines = [
        f"Fixture start (cached binaries and images): node Ready {node_ready:.1f} s, "
        f"CoreDNS and metrics-server ready {fixture:.1f} s; `helm install --wait` {install:.1f} s.",
        "",
        f"`kubectl apply` of a 16 s 720p URL source, {args.runs} runs, one after another "
        "(median, min, max; seconds from `kubectl apply`):",
        "",
        "| step | median | min | max |",
        "|---|---|---|---|",
    ]
    for k in keys:
        values = [r[k] for r in rows]
        lines.append(
            f"| {k} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.write:
        DOC.write_text(
            "# Benchmarks: the real cluster\n\n" + __doc__.split("\n\n", 1)[1] + "\n" + text + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
