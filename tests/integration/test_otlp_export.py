"""One trace across two real processes, exported over OTLP/HTTP (docs/architecture.md §8).

A parent process (standing in for the operator's handler) opens a span and
starts a child process (standing in for the worker's Job) with ``TRACEPARENT``
in its env; the child continues the trace. The receiver (behind a real
OpenTelemetry Collector when one is installed) must see ONE trace with the
spans in parent/child order, and the JSON log lines of both processes must
carry the ids of the span they were written in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from tests.fixtures.otlp import OtlpReceiver
from tests.fixtures.util import ROOT

pytestmark = pytest.mark.integration

OPERATOR = textwrap.dedent(
    """
    import os, subprocess, sys
    from kubevod import telemetry
    from kubevod.logs import get_logger, setup_logging

    telemetry.setup_telemetry("kubevod-operator", component="operator")
    setup_logging(json=True)
    log = get_logger("kubevod.operator.handlers", namespace="media", name="demo")
    with telemetry.span("reconcile VideoAsset", namespace="media", name="demo"):
        log.info("creating job for s3://kubevod:minio-secret-key@minio:9000/kubevod")
        env = {**os.environ, **telemetry.inject_traceparent(), "POD_NAME": "demo-job-abcde"}
        subprocess.run([sys.executable, "-c", os.environ["CHILD_CODE"]], env=env, check=True)
    telemetry.shutdown()
    """
)

WORKER = textwrap.dedent(
    """
    import os
    from kubevod import telemetry
    from kubevod.logs import get_logger, setup_logging

    telemetry.setup_telemetry("kubevod-worker", component="worker")
    setup_logging(json=True)
    telemetry.attach_traceparent(os.environ.get("TRACEPARENT"))
    log = get_logger("kubevod.worker.pipeline", video_id="demo")
    with telemetry.span("transcode", video_id="demo"):
        with telemetry.span("encode", rendition="360p"):
            telemetry.add_event("progress", percent=50.0, fps=240.0)
            log.info("encoding")
    telemetry.shutdown()
    """
)


def run_operator(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACE"))}
    env.update(
        CHILD_CODE=WORKER,
        POD_NAME="kubevod-operator-0",
        NODE_NAME="node-a",
        POD_NAMESPACE="kubevod-system",
        PYTHONPATH=str(ROOT),
        **extra_env,
    )
    return subprocess.run(
        [sys.executable, "-c", OPERATOR],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )


def json_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_job_env_traceparent_makes_one_trace_from_operator_to_worker(otlp: OtlpReceiver) -> None:
    otlp.clear()
    result = run_operator(otlp.env)

    spans = otlp.wait_for_spans(3)
    by_name = {s["name"]: s for s in spans}
    assert set(by_name) == {"reconcile VideoAsset", "transcode", "encode"}
    assert len({s["trace_id"] for s in spans}) == 1, "all spans must share one trace"

    root, job, encode = by_name["reconcile VideoAsset"], by_name["transcode"], by_name["encode"]
    assert root["parent_span_id"] is None
    assert job["parent_span_id"] == root["span_id"]
    assert encode["parent_span_id"] == job["span_id"]
    assert root["start_ns"] <= job["start_ns"] <= encode["start_ns"]
    assert encode["end_ns"] <= job["end_ns"] <= root["end_ns"]

    assert root["service_name"] == "kubevod-operator"
    assert job["service_name"] == encode["service_name"] == "kubevod-worker"
    assert root["resource"]["k8s.pod.name"] == "kubevod-operator-0"
    assert job["resource"]["k8s.pod.name"] == "demo-job-abcde"
    assert job["resource"]["k8s.node.name"] == "node-a"
    assert job["resource"]["k8s.namespace.name"] == "kubevod-system"
    assert job["resource"]["service.version"]
    assert job["resource"]["kubevod.component"] == "worker"
    assert root["attributes"] == {"namespace": "media", "name": "demo"}
    assert encode["events"][0]["name"] == "progress"
    assert encode["events"][0]["attributes"] == {"percent": 50.0, "fps": 240.0}

    lines = {line["message"].split(" ")[0]: line for line in json_lines(result.stderr)}
    assert lines["creating"]["trace_id"] == root["trace_id"]
    assert lines["creating"]["span_id"] == root["span_id"]
    assert lines["creating"]["namespace"] == "media"
    assert lines["creating"]["name"] == "demo"
    assert "minio-secret-key" not in result.stderr
    assert lines["encoding"]["trace_id"] == root["trace_id"]
    assert lines["encoding"]["span_id"] == encode["span_id"]
    assert lines["encoding"]["video_id"] == "demo"


def test_without_an_endpoint_nothing_is_exported_but_logs_keep_ids(otlp: OtlpReceiver) -> None:
    otlp.clear()
    result = run_operator({})

    lines = json_lines(result.stderr)
    assert len(lines) == 2
    assert lines[0]["trace_id"] == lines[1]["trace_id"], "the trace still crosses processes"
    assert lines[0]["span_id"] != lines[1]["span_id"]
    assert otlp.spans() == []


API = textwrap.dedent(
    """
    import json, sys
    import httpx, anyio
    from fastapi import FastAPI
    from kubevod import telemetry
    from kubevod.api.app import NO_NATIVE_TELEMETRY
    from kubevod.api.tracing import ServerSpans
    from kubevod.logs import get_logger, setup_logging

    telemetry.setup_telemetry("kubevod-api", component="api")
    setup_logging(json=True)
    log = get_logger("kubevod.api.playback")
    app = FastAPI(**NO_NATIVE_TELEMETRY)  # the server span is ServerSpans', as in kubevod-api

    @app.get("/v/{video_id}/master.m3u8")
    def master(video_id: str) -> dict[str, str]:
        with telemetry.span("render manifest", video_id=video_id):
            log.info("rendering", extra={"video_id": video_id})
        return {"ok": video_id}

    @app.get("/metrics")
    def metrics() -> str:
        return ""

    app.add_middleware(ServerSpans, excluded_paths=telemetry.UNTRACED_PATHS.split(","))

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            headers = {"traceparent": sys.argv[1]}
            assert (await client.get("/v/abc/master.m3u8", headers=headers)).status_code == 200
            assert (await client.get("/metrics", headers=headers)).status_code == 200

    anyio.run(main)
    telemetry.shutdown()
    """
)


def test_api_request_with_traceparent_continues_the_trace(otlp: OtlpReceiver) -> None:
    otlp.clear()
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", API, f"00-{trace_id}-{parent}-01"],
        env={**env, **otlp.env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    spans = otlp.wait_for_spans(2, where=lambda s: s["kind"] in (1, 2))  # INTERNAL, SERVER
    server = next(s for s in spans if s["name"] == "GET /v/{video_id}/master.m3u8")
    render = next(s for s in spans if s["name"] == "render manifest")
    assert server["trace_id"] == render["trace_id"] == trace_id
    assert server["parent_span_id"] == parent, "the span continues the caller's span"
    assert render["parent_span_id"] == server["span_id"]
    assert server["attributes"]["http.route"] == "/v/{video_id}/master.m3u8"
    assert server["service_name"] == "kubevod-api"
    assert not [s for s in otlp.spans() if "/metrics" in s["name"]], "scrapes are not traced"
    assert not [s for s in otlp.spans() if s["name"].endswith(("http send", "http receive"))]
    (line,) = [x for x in json_lines(result.stderr) if x["logger"] == "kubevod.api.playback"]
    assert line["trace_id"] == trace_id
    assert line["span_id"] == render["span_id"]
