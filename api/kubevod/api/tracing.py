"""One SERVER span per API request, at a cost that fits a request served from memory.

``kubevod-api`` traces every request (docs/architecture.md §8): a span named
``GET /v/{video_id}/master.m3u8`` (method and route template), continuing the
caller's W3C ``traceparent`` (nginx, the player, a Job), current while the
request runs, so the catalog calls and the render below it, and every log
line, carry its ids.

OpenTelemetry's ASGI instrumentation (``opentelemetry-instrumentation-fastapi``,
used before) makes the same span, but per request it walks every route to name the span,
collects some fifteen attributes and wraps each ASGI message: hundreds of
microseconds on the development machine, more than answering a cached manifest
(docs/benchmarks-api.md). This middleware names the span when the request is
done, from the route the router (or the manifest fast path) put in the scope,
and records what a trace is read for: method, target, route, scheme, peer,
status, and an exception when one escapes.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kubevod import telemetry


class ServerSpans:
    """Pure ASGI middleware: a SERVER span around each HTTP request.

    Args:
        app: the rest of the stack.
        excluded_paths: paths never traced (scrapes and probes, every few seconds).
        tracer: where spans start; the process's provider (``kubevod.telemetry``) when None.
    """

    def __init__(
        self, app: ASGIApp, *, excluded_paths: Iterable[str] = (), tracer: Tracer | None = None
    ) -> None:
        self.app = app
        self.excluded = frozenset(excluded_paths)
        self.tracer = tracer or telemetry.tracer(__name__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.excluded:
            await self.app(scope, receive, send)
            return
        traceparent = tracestate = None
        for name, value in scope["headers"]:
            if name == b"traceparent":
                traceparent = value.decode("latin-1")
            elif name == b"tracestate":
                tracestate = value.decode("latin-1")
        parent = (
            telemetry.context_from_traceparent(traceparent, tracestate) if traceparent else None
        )
        method = scope["method"]
        span = self.tracer.start_span(method, context=parent, kind=SpanKind.SERVER)
        token = otel_context.attach(trace.set_span_in_context(span))
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            span.record_exception(exc)
            raise
        finally:
            # every attribute in one call: each call takes the span's lock and checks values
            client = scope.get("client")
            attributes: dict[str, str | int] = {
                "http.method": method,
                "http.target": scope["path"],
                "http.scheme": scope.get("scheme", "http"),
                "http.flavor": scope.get("http_version", "1.1"),
                "http.status_code": status,
            }
            if client:
                attributes["net.peer.ip"] = client[0]
            template = getattr(scope.get("route"), "path", None)
            if template:
                span.update_name(f"{method} {template}")
                attributes["http.route"] = template
            span.set_attributes(attributes)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
            otel_context.detach(token)
