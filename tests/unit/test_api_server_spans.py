"""kubevod.api.tracing.ServerSpans: the SERVER span kubevod-api makes per request.

The same promises tests/integration/test_otlp_export.py checks for OpenTelemetry's
own instrumentation: the span continues the caller's ``traceparent``, is current
while the route runs, is named by method and route template (also for a manifest
answered by the fast path, before routing), and scrapes are not traced.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from kubevod.api.app import create_app
from kubevod.api.settings import ApiSettings
from kubevod.api.tracing import ServerSpans
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kubevod.backends import open_catalog, open_store
from tests.unit.manifest_cases import ladder_video, segments_for

TRACE_ID, PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT}-01"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def traced(app: FastAPI, exporter: InMemorySpanExporter) -> FastAPI:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app.add_middleware(ServerSpans, excluded_paths=["/metrics"], tracer=provider.get_tracer("test"))
    return app


def server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]


async def get(app: FastAPI, path: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await client.get(path, headers=headers)


async def test_span_continues_the_caller_and_is_current_in_the_route(
    exporter: InMemorySpanExporter,
) -> None:
    app = FastAPI()
    seen: list[str] = []

    @app.get("/v/{video_id}/master.m3u8")
    async def master(video_id: str) -> dict[str, str]:
        seen.append(format(trace.get_current_span().get_span_context().span_id, "016x"))
        return {"ok": video_id}

    @app.get("/metrics")
    async def metrics() -> str:
        return ""

    traced(app, exporter)
    assert (await get(app, "/v/abc/master.m3u8", traceparent=TRACEPARENT)).status_code == 200
    assert (await get(app, "/metrics", traceparent=TRACEPARENT)).status_code == 200

    (span,) = server_spans(exporter)
    assert span.name == "GET /v/{video_id}/master.m3u8"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT
    assert seen == [format(span.context.span_id, "016x")]
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/v/{video_id}/master.m3u8"
    assert span.attributes["http.status_code"] == 200
    assert span.attributes["http.method"] == "GET"
    assert span.attributes["http.target"] == "/v/abc/master.m3u8"


async def test_unmatched_and_failing_requests(exporter: InMemorySpanExporter) -> None:
    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    traced(app, exporter)
    assert (await get(app, "/nowhere")).status_code == 404
    with pytest.raises(RuntimeError):
        await get(app, "/boom")

    nowhere, failed = server_spans(exporter)
    assert nowhere.name == "GET" and nowhere.parent is None
    assert nowhere.attributes is not None and nowhere.attributes["http.status_code"] == 404
    assert failed.name == "GET /boom" and failed.status.status_code == StatusCode.ERROR
    assert failed.attributes is not None and failed.attributes["http.status_code"] == 500
    assert [e.name for e in failed.events] == ["exception"]


async def test_a_manifest_from_the_fast_path_is_named_by_its_route(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    catalog = open_catalog(f"sqlite://{tmp_path / 'catalog.db'}")
    try:
        video = catalog.create(ladder_video())
        for seg in segments_for(video, [4.0, 4.0]):
            catalog.add_segment(video.id, seg)
        app = create_app(ApiSettings(), store=open_store(tmp_path.as_uri()), catalog=catalog)
        traced(app, exporter)
        for _ in range(2):  # the second is answered from memory, before routing
            assert (await get(app, f"/v/{video.id}/720p.m3u8")).status_code == 200
    finally:
        catalog.close()

    names = [s.name for s in server_spans(exporter)]
    assert names == ["GET /v/{video_id}/{rendition}.m3u8"] * 2
