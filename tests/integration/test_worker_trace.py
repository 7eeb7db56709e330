"""The real worker (``python -m kubevod.worker.main``) joins the trace named in its env.

The test plays the kubelet (there is none): it runs the worker process with the
env a Job built by the operator would have — ``KUBEVOD_JOB``, catalog and store
URLs, ``TRACEPARENT``, the OTLP endpoint and the downward-API variables — on
the embedded backends (FileStore + SqliteCatalog) and a 2 s lavfi clip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubevod.catalog.sqlite import SqliteCatalog
from kubevod.jobs import TranscodeJob
from tests.fixtures.jobs import scheduled
from tests.fixtures.media import make_video
from tests.fixtures.otlp import OtlpReceiver
from tests.fixtures.util import ROOT, require

pytestmark = pytest.mark.integration

TRACE_ID, OPERATOR_SPAN = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"


def test_worker_spans_hang_under_the_operators_span(otlp: OtlpReceiver, tmp_path: Path) -> None:
    ffmpeg = require("ffmpeg")
    require("ffprobe")
    source = make_video(tmp_path / "clip.mp4", seconds=2, width=320, height=180)
    job = TranscodeJob(video_id="tracedclip", source=str(source), segment_seconds=1.0)
    scheduled(SqliteCatalog(tmp_path / "catalog.db"), job)  # the operator's part
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACE"))}
    env.update(
        job.to_env(),
        KUBEVOD_CATALOG_URL=f"sqlite://{tmp_path / 'catalog.db'}",
        KUBEVOD_STORE_URL=(tmp_path / "media").as_uri(),
        KUBEVOD_SCRATCH_DIR=str(tmp_path / "scratch"),
        KUBEVOD_LOG_FORMAT="json",
        TRACEPARENT=f"00-{TRACE_ID}-{OPERATOR_SPAN}-01",
        POD_NAME="tracedclip-g1-x7k2p",
        POD_NAMESPACE="media",
        NODE_NAME="gpu-node-1",
        PATH=f"{Path(ffmpeg).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(str(ROOT / p) for p in (".", "worker", "api", "operator")),
        **otlp.env,
    )
    otlp.clear()
    done = subprocess.run(
        [sys.executable, "-m", "kubevod.worker.main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    spans = otlp.wait_for_spans(5, where=lambda s: s["name"].startswith("worker."))
    by_name = {s["name"]: s for s in spans}
    assert {"worker.transcode", "worker.fetch", "worker.probe", "worker.encode"} <= set(by_name)
    assert {s["trace_id"] for s in otlp.spans()} == {TRACE_ID}, "one trace, the operator's"
    root = by_name["worker.transcode"]
    assert root["parent_span_id"] == OPERATOR_SPAN
    for stage in ("worker.fetch", "worker.probe", "worker.encode"):
        assert by_name[stage]["parent_span_id"] == root["span_id"], stage
        assert root["start_ns"] <= by_name[stage]["start_ns"] <= by_name[stage]["end_ns"]
    assert by_name["worker.fetch"]["end_ns"] <= by_name["worker.probe"]["start_ns"]
    assert by_name["worker.probe"]["end_ns"] <= by_name["worker.encode"]["start_ns"]
    encode = by_name["worker.encode"]
    assert [e["name"] for e in encode["events"]].count("progress") >= 1
    batches = [s for s in otlp.spans() if s["name"] == "worker.upload_batch"]
    assert batches and {b["parent_span_id"] for b in batches} == {encode["span_id"]}
    assert sum(b["attributes"]["kubevod.segments"] for b in batches) >= 4  # 2 video, 2 audio
    finalize = otlp.wait_for_spans(1, where=lambda s: s["name"] == "worker.finalize")[0]
    assert finalize["parent_span_id"] == root["span_id"]
    resource = root["resource"]
    assert resource["service.name"] == "kubevod-worker"
    assert resource["k8s.pod.name"] == "tracedclip-g1-x7k2p"
    assert resource["k8s.node.name"] == "gpu-node-1"
    assert resource["k8s.namespace.name"] == "media"

    lines = [json.loads(x) for x in done.stderr.splitlines() if x.startswith("{")]
    traced = [line for line in lines if line.get("trace_id")]
    assert traced, done.stderr[-2000:]
    assert {line["trace_id"] for line in traced} == {TRACE_ID}
    # before its first span the worker logs in the operator's (remote) span
    known = {s["span_id"] for s in otlp.spans()} | {OPERATOR_SPAN}
    assert {line["span_id"] for line in traced} <= known
    assert any(line["span_id"] != OPERATOR_SPAN for line in traced)
