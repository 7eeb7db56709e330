"""ONE trace from ``kubectl apply`` to a playing video (docs/architecture.md §8).

A VideoAsset applied to the real kube-apiserver; the real operator process
(its ServiceAccount, JSON logs, OTLP export); the real worker process run with
the Job's own env (the test plays the kubelet, which this cluster lacks); the
real API process answering a manifest request that carries the Job's
``traceparent``. Spans go through the ``otlp`` fixture (a real OpenTelemetry
Collector in front of a decoding receiver, when testenv built one).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fixtures.otlp import OtlpReceiver, SpanDict
from tests.integration.local_mode import LocalServer, cli_env, clip
from tests.integration.operator_support import TEST_NODE
from tests.integration.operator_support.flow import Flow, install_crds, one_video

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVER, CLIENT = 2, 3  # OTLP span kinds
MASTER_ROUTE = "GET /v/{video_id}/master.m3u8"
WORKER_STAGES = ("worker.fetch", "worker.probe", "worker.encode", "worker.thumbnails")


@pytest.fixture(scope="module")
def flow(
    kube: Any, minio: Any, mongo: Any, otlp: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flow]:
    install_crds(kube)
    with one_video(kube, minio, mongo, otlp.endpoint, tmp_path_factory.mktemp("e2e")) as done:
        yield done


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def one(spans: list[SpanDict], name: str) -> SpanDict:
    found = [s for s in spans if s["name"] == name]
    assert len(found) == 1, (name, [s["name"] for s in spans])
    return found[0]


def trace_with(otlp: OtlpReceiver, trace_id: str, names: set[str]) -> list[SpanDict]:
    """The spans of ``trace_id`` once every name in ``names`` has arrived."""
    otlp.wait_for_spans(
        len(names), where=lambda s: s["trace_id"] == trace_id and s["name"] in names, timeout=20
    )
    return otlp.traces().get(trace_id, [])


def test_apply_to_playback_is_one_trace_in_parent_child_order(
    flow: Flow, otlp: OtlpReceiver
) -> None:
    headers = {"traceparent": flow.traceparent}
    answer = httpx.get(f"{flow.api_url}/v/{flow.video_id}/master.m3u8", headers=headers)
    assert answer.status_code == 200 and answer.text.startswith("#EXTM3U")

    names = {"operator.admit", "operator.start_transcode", "worker.transcode", *WORKER_STAGES}
    names.add("worker.finalize")
    spans = trace_with(otlp, flow.trace_id, names | {MASTER_ROUTE, "manifest.render"})
    admit, start = one(spans, "operator.admit"), one(spans, "operator.start_transcode")
    transcode = one(spans, "worker.transcode")

    # operator: the admission is the root; the Job's TRACEPARENT names its start span
    assert admit["parent_span_id"] is None
    assert start["parent_span_id"] == admit["span_id"]
    assert flow.traceparent.split("-")[2] == start["span_id"]
    assert admit["service_name"] == start["service_name"] == "kubevod-operator"
    assert start["attributes"]["k8s.job.name"] == flow.job["metadata"]["name"]
    assert start["attributes"]["kubevod.video.id"] == flow.video_id
    assert flow.job["metadata"]["annotations"]["kubevod.io/traceparent"] == flow.traceparent
    catalog_writes = [
        s for s in spans if s["kind"] == CLIENT and s["parent_span_id"] == admit["span_id"]
    ]
    assert catalog_writes, "the catalog entry's MongoDB commands hang under operator.admit"

    # worker: its root continues the operator's span; the stages hang under it, in order
    assert transcode["parent_span_id"] == start["span_id"]
    assert start["end_ns"] <= transcode["start_ns"], "the Job runs after it was created"
    stages = [one(spans, name) for name in WORKER_STAGES]
    for stage in stages:
        assert stage["parent_span_id"] == transcode["span_id"], stage["name"]
        assert transcode["start_ns"] <= stage["start_ns"] <= stage["end_ns"] <= transcode["end_ns"]
    fetch, probe, encode, _ = stages
    assert fetch["end_ns"] <= probe["start_ns"] and probe["end_ns"] <= encode["start_ns"]
    # the encode reports its progress as events (from the upload loop and ffmpeg's thread)
    progress = [e for e in encode["events"] if e["name"] == "progress"]
    assert progress, encode["events"]
    percents = [e["attributes"]["percent"] for e in progress]
    assert percents == sorted(percents) and 0 < percents[-1] <= 100
    # segments go up in batches under the encode, each with its S3 puts and catalog writes
    batches = [s for s in spans if s["name"] == "worker.upload_batch"]
    assert batches and all(b["parent_span_id"] == encode["span_id"] for b in batches)
    assert sum(b["attributes"]["kubevod.segments"] for b in batches) >= 2
    assert sum(b["attributes"]["kubevod.bytes"] for b in batches) > 1000
    batch_ids = {b["span_id"] for b in batches}
    under = [s for s in spans if s["kind"] == CLIENT and s["parent_span_id"] in batch_ids]
    assert any(s["attributes"].get("db.system") == "mongodb" for s in under), (
        "catalog add_segment commands under the upload batches"
    )
    puts = [s for s in under if s["name"] == "s3 put"]
    endpoint = urlsplit(flow.ns.store_url).netloc.rpartition("@")[2]
    assert puts and {s["attributes"]["server.address"] for s in puts} == {endpoint}
    assert all(s["attributes"]["kubevod.store.key"].endswith((".m4s", "/init.mp4")) for s in puts)
    # the catalog set ready last, under the transcode
    finalize = one(spans, "worker.finalize")
    assert finalize["parent_span_id"] == transcode["span_id"]
    assert encode["end_ns"] <= finalize["start_ns"]
    resource = transcode["resource"]
    assert resource["service.name"] == "kubevod-worker"
    assert resource["k8s.pod.name"].startswith(flow.job["metadata"]["name"] + "-")
    assert resource["k8s.node.name"] == TEST_NODE
    assert resource["k8s.namespace.name"] == flow.ns.name

    # API: the request continues the same trace; render and catalog reads below it
    server = one(spans, MASTER_ROUTE)
    render = one(spans, "manifest.render")
    assert server["kind"] == SERVER and server["service_name"] == "kubevod-api"
    assert server["parent_span_id"] == start["span_id"]
    assert render["parent_span_id"] == server["span_id"]
    assert render["attributes"]["kubevod.manifest.kind"] == "hls_master"
    reads = [
        s
        for s in spans
        if s["service_name"] == "kubevod-api"
        and s["kind"] == CLIENT
        and s["parent_span_id"] == server["span_id"]
    ]
    assert reads, "the catalog read of the request is a MongoDB client span in the trace"

    assert len({s["trace_id"] for s in spans}) == 1


def test_log_lines_carry_the_trace_and_no_secret(
    flow: Flow, otlp: OtlpReceiver, minio: Any, tmp_path: Path
) -> None:
    spans = trace_with(otlp, flow.trace_id, {"operator.admit", "worker.transcode"})
    ids = {s["span_id"]: s["name"] for s in spans}

    operator = json_lines(flow.operator.log.read_text())
    started = [line for line in operator if line["message"].startswith("started Job")]
    assert len(started) == 1, [line["message"] for line in operator][-20:]
    assert started[0]["trace_id"] == flow.trace_id
    assert ids.get(started[0]["span_id"]) in {"operator.admit", "operator.start_transcode"}
    assert (started[0]["namespace"], started[0]["name"]) == (flow.ns.name, "traced")
    assert started[0]["video_id"] == flow.video_id
    assert started[0]["service"] == "kubevod-operator"

    worker = json_lines(flow.worker_log)
    traced = [line for line in worker if line.get("trace_id")]
    assert traced, flow.worker_log[-2000:]
    assert {line["trace_id"] for line in traced} == {flow.trace_id}
    assert any(ids.get(line["span_id"], "").startswith("worker.") for line in traced)

    api = json_lines(flow.api.log.read_text())
    assert api and all(line["service"] == "kubevod-api" for line in api)
    everything = flow.operator.log.read_text() + flow.worker_log + flow.api.log.read_text()
    assert minio.secret_key not in everything
    assert "s3://" in everything and ":***@" in everything, "URLs are logged, redacted"


def test_local_mode_transcode_joins_the_trace_of_the_request_that_added_it(
    otlp: OtlpReceiver, tmp_path: Path
) -> None:
    source = clip(tmp_path / "home.mp4", seconds=2)
    env = cli_env(**otlp.env, OTEL_BSP_SCHEDULE_DELAY="100")
    server = LocalServer(tmp_path / "data", env=env).start()
    trace_id, caller = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    try:
        added = httpx.post(
            f"{server.url}/api/videos",
            json={"source": str(source)},
            headers={"traceparent": f"00-{trace_id}-{caller}-01"},
            timeout=10,
        )
        assert added.status_code == 202, added.text
        video_id = added.json()["id"]
        server.wait_for(video_id, lambda v: v["state"] == "ready")
    finally:
        server.stop()
    spans = trace_with(otlp, trace_id, {"POST /api/videos", "worker.transcode", "worker.encode"})
    post, transcode = one(spans, "POST /api/videos"), one(spans, "worker.transcode")
    assert post["parent_span_id"] == caller, "the request continues the caller's trace"
    assert transcode["parent_span_id"] == post["span_id"], "the pool thread joins it"
    assert transcode["attributes"]["video_id"] == video_id
    assert one(spans, "worker.encode")["parent_span_id"] == transcode["span_id"]
    assert {s["service_name"] for s in spans} == {"kubevod"}
    assert transcode["resource"]["kubevod.component"] == "local"
