"""Telemetry setup: resource attributes, W3C traceparent in env, span helpers, no-export mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from kubevod.__about__ import __version__
from kubevod.telemetry import (
    attach_traceparent,
    build_resource,
    context_from_env,
    context_from_traceparent,
    current_ids,
    detach,
    exporter_endpoint,
    inject_traceparent,
)
from tests.fixtures.util import ROOT

TRACER = TracerProvider().get_tracer("test")  # a private SDK provider: the global is untouched


def hexes(span: trace.Span) -> tuple[str, str]:
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def test_resource_names_service_version_component_and_pod_from_downward_api() -> None:
    env = {"POD_NAME": "api-7f9c-x2", "NODE_NAME": "nuc-1", "POD_NAMESPACE": "kubevod"}
    attrs = build_resource("kubevod-api", component="api", env=env).attributes
    assert attrs["service.name"] == "kubevod-api"
    assert attrs["service.version"] == __version__
    assert attrs["kubevod.component"] == "api"
    assert attrs["k8s.pod.name"] == "api-7f9c-x2"
    assert attrs["k8s.node.name"] == "nuc-1"
    assert attrs["k8s.namespace.name"] == "kubevod"


def test_resource_outside_the_cluster_has_no_k8s_attributes() -> None:
    attrs = build_resource("kubevod", component="local", env={}).attributes
    assert not [key for key in attrs if str(key).startswith("k8s.")]


def test_otel_service_name_overrides_the_default_name() -> None:
    attrs = build_resource("kubevod-api", component="api", env={"OTEL_SERVICE_NAME": "vod"})
    assert attrs.attributes["service.name"] == "vod"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"}, "http://otel:4318"),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/v1/traces"},
            "http://t:4318/v1/traces",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318", "OTEL_TRACES_EXPORTER": "none"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318", "OTEL_SDK_DISABLED": "true"}, None),
    ],
)
def test_export_only_when_an_endpoint_is_set(env: dict[str, str], expected: str | None) -> None:
    assert exporter_endpoint(env) == expected


def test_traceparent_in_env_continues_the_trace_in_a_child() -> None:
    with TRACER.start_as_current_span("reconcile") as parent:
        env = inject_traceparent()
    trace_id, span_id = hexes(parent)
    assert list(env) == ["TRACEPARENT"]
    version, env_trace, env_span, flags = env["TRACEPARENT"].split("-")
    assert (version, env_trace, env_span) == ("00", trace_id, span_id)
    assert int(flags, 16) & 1, "sampled"

    with TRACER.start_as_current_span("transcode", context=context_from_env(env)) as child:
        assert hexes(child)[0] == trace_id
        assert child.parent is not None  # type: ignore[attr-defined]
        assert format(child.parent.span_id, "016x") == span_id  # type: ignore[attr-defined]


def test_no_traceparent_outside_a_span() -> None:
    assert inject_traceparent() == {}


@pytest.mark.parametrize("value", [None, "", "garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"])
def test_a_missing_or_bad_traceparent_starts_a_new_trace(value: str | None) -> None:
    with TRACER.start_as_current_span("x", context=context_from_traceparent(value)) as span:
        assert span.parent is None  # type: ignore[attr-defined]
        assert span.get_span_context().is_valid


def test_attach_traceparent_parents_every_later_span_until_detached() -> None:
    value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    token = attach_traceparent(value)
    try:
        with TRACER.start_as_current_span("fetch") as span:
            assert hexes(span)[0] == "0af7651916cd43dd8448eb211c80319c"
            assert current_ids() == hexes(span)
    finally:
        detach(token)
    assert current_ids() is None


def test_tracestate_travels_with_traceparent() -> None:
    ctx = context_from_traceparent(
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "vendor=abc"
    )
    with TRACER.start_as_current_span("x", context=ctx):
        env = inject_traceparent()
    assert env["TRACESTATE"] == "vendor=abc"


SCRIPT = textwrap.dedent(
    """
    import json, sys
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from kubevod import telemetry

    telemetry.setup_telemetry("kubevod-worker", component="worker")
    telemetry.setup_telemetry("kubevod-api", component="api")  # no-op: first wins
    provider = telemetry.provider()
    out = {
        "exporter_loaded": "opentelemetry.exporter.otlp.proto.http.trace_exporter" in sys.modules,
        "processors": len(provider._active_span_processor._span_processors),
        "service": provider.resource.attributes["service.name"],
    }
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with telemetry.span("upload", video_id="v1", missing=None, attributes={"kubevod.bytes": 9}):
        telemetry.add_event("batch", segments=4)
        telemetry.set_attributes(rendition="720p")
        out["ids"] = telemetry.current_ids()
    try:
        with telemetry.span("probe"):
            raise ValueError("not a video")
    except ValueError:
        out["reraised"] = True
    upload, probe = memory.get_finished_spans()
    out["upload"] = {
        "attributes": dict(upload.attributes),
        "events": [(e.name, dict(e.attributes)) for e in upload.events],
        "trace_id": format(upload.context.trace_id, "032x"),
    }
    out["probe"] = {
        "status": probe.status.status_code.name,
        "events": [e.name for e in probe.events],
    }
    telemetry.shutdown()
    telemetry.shutdown()  # twice is harmless
    print(json.dumps(out))
    """
)


def run_script() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_setup_without_endpoint_exports_nothing_and_span_helpers_record() -> None:
    out = run_script()
    assert out["exporter_loaded"] is False, "no exporter is even imported without an endpoint"
    assert out["processors"] == 0
    assert out["service"] == "kubevod-worker"
    assert out["upload"]["attributes"] == {
        "video_id": "v1",
        "kubevod.bytes": 9,
        "rendition": "720p",
    }
    assert out["upload"]["events"] == [["batch", {"segments": 4}]]
    assert out["ids"][0] == out["upload"]["trace_id"]
    assert out["reraised"] is True
    assert out["probe"]["status"] == "ERROR"
    assert out["probe"]["events"] == ["exception"]
