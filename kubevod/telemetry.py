"""One OpenTelemetry setup for the operator, the worker, the API and local mode.

``setup_telemetry`` installs an SDK ``TracerProvider`` whose resource says which
service, version and (in the cluster, from the downward API) which pod, node and
namespace produced a span. Spans are exported over OTLP/HTTP only when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set; otherwise
no span processor is installed at all, so a span costs an id and a few
attribute writes and is dropped when it ends. Spans still get real ids, so log
lines carry trace and span ids even when nothing is exported (kubevod.logs).

A trace crosses process boundaries in the W3C ``traceparent`` format: the
operator puts ``inject_traceparent()`` into the Job's env, the worker continues
it with ``attach_traceparent(os.environ.get("TRACEPARENT"))`` (docs/architecture.md §8).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator, Mapping
from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kubevod import contract
from kubevod.__about__ import __version__

#: Environment variables that carry a trace into a child process (Job env, subprocess).
TRACEPARENT_ENV = contract.TRACEPARENT
TRACESTATE_ENV = contract.TRACESTATE

#: Downward-API env vars (set by the chart) -> OpenTelemetry resource attributes.
DOWNWARD_API_ATTRIBUTES: Mapping[str, str] = {
    "POD_NAME": "k8s.pod.name",
    "NODE_NAME": "k8s.node.name",
    "POD_NAMESPACE": "k8s.namespace.name",
}

_PROPAGATOR = TraceContextTextMapPropagator()
_LOCK = threading.Lock()
_provider: TracerProvider | None = None
_shut_down = False

AttributeValue = str | bool | int | float


def exporter_endpoint(env: Mapping[str, str] | None = None) -> str | None:
    """The OTLP endpoint spans go to, or None when nothing should be exported.

    ``OTEL_TRACES_EXPORTER=none`` and ``OTEL_SDK_DISABLED=true`` turn export off
    even when an endpoint is set (the standard OpenTelemetry switches).
    """
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if env.get("OTEL_TRACES_EXPORTER", "").lower() == "none":
        return None
    return env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")


def build_resource(
    service_name: str, *, component: str, env: Mapping[str, str] | None = None
) -> Resource:
    """The resource attributes of every span this process makes (pure but for ``env``).

    Args:
        service_name: ``service.name``; ``OTEL_SERVICE_NAME`` wins when set.
        component: ``kubevod.component`` (operator, worker, api, local).
        env: where to read the downward-API variables; ``os.environ`` by default.

    Returns:
        A Resource with service name/version, component, and k8s pod/node/namespace
        where the variables are set; ``OTEL_RESOURCE_ATTRIBUTES`` is merged too.
    """
    env = os.environ if env is None else env
    attributes: dict[str, AttributeValue] = {
        "service.name": env.get("OTEL_SERVICE_NAME") or service_name,
        "service.version": __version__,
        "service.namespace": "kubevod",
        "kubevod.component": component,
    }
    for variable, key in DOWNWARD_API_ATTRIBUTES.items():
        if env.get(variable):
            attributes[key] = env[variable]
    return Resource.create(attributes)


def setup_telemetry(service_name: str, *, component: str) -> None:
    """Install the process-wide tracer provider once; later calls do nothing.

    In local mode the API and the transcode pool share one process: the first
    caller names the service.
    """
    global _provider
    with _LOCK:
        if _provider is not None:
            return
        if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
            return
        provider = TracerProvider(resource=build_resource(service_name, component=component))
        if exporter_endpoint() is not None:
            # Imported here: the exporter pulls in requests/protobuf, which a
            # process that exports nothing never needs.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _provider = provider


def provider() -> TracerProvider | None:
    """The provider ``setup_telemetry`` installed, or None before it ran."""
    return _provider


@functools.lru_cache(maxsize=256)
def tracer(name: str) -> Tracer:
    """A tracer for a module (``tracer(__name__)``), cached: making one costs microseconds.

    Before ``setup_telemetry`` it is OpenTelemetry's proxy, which starts real
    spans as soon as a provider is installed.
    """
    return trace.get_tracer(name, __version__)


def _clean(attributes: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """Drop None values and stringify what OpenTelemetry cannot store."""
    cleaned: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        cleaned[key] = value if isinstance(value, str | bool | int | float) else str(value)
    return cleaned


@contextlib.contextmanager
def span(
    name: str,
    /,
    *,
    parent: Context | None = None,
    span_kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    tracer_name: str = "kubevod",
    **attrs: Any,
) -> Iterator[Span]:
    """Run a block inside a new current span; exceptions are recorded and re-raised.

    Args:
        name: the span name (``"encode"``, ``"upload batch"``).
        parent: parent context (``context_from_env()``); the current span when None.
        span_kind: INTERNAL by default; SERVER/CLIENT/PRODUCER/CONSUMER where they fit.
        attributes: attributes with dotted names (``{"kubevod.video.id": ...}``).
        tracer_name: the instrumentation scope, usually the calling module's name.
        **attrs: more attributes, stored under their keyword names; None values are skipped.
    """
    merged = {**(attributes or {}), **attrs}
    with tracer(tracer_name).start_as_current_span(
        name, context=parent, kind=span_kind, attributes=_clean(merged)
    ) as current:
        yield current


def add_event(name: str, **attributes: Any) -> None:
    """Add an event (e.g. encode progress) to the current span, if it records."""
    current = trace.get_current_span()
    if current.is_recording():
        current.add_event(name, _clean(attributes))


def set_attributes(**attributes: Any) -> None:
    """Set attributes on the current span, if it records."""
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes(_clean(attributes))


def inject_traceparent(context: Context | None = None) -> dict[str, str]:
    """Env vars that let a child process continue the current trace.

    Returns ``{"TRACEPARENT": "00-<trace>-<span>-01"}`` (plus ``TRACESTATE``
    when there is one), or ``{}`` outside any valid span.
    """
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    env: dict[str, str] = {}
    if carrier.get("traceparent"):
        env[TRACEPARENT_ENV] = carrier["traceparent"]
    if carrier.get("tracestate"):
        env[TRACESTATE_ENV] = carrier["tracestate"]
    return env


def context_from_traceparent(traceparent: str | None, tracestate: str | None = None) -> Context:
    """A context whose parent is the span named by a W3C ``traceparent`` (empty if invalid)."""
    carrier = {"traceparent": traceparent or ""}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier, context=Context())


def context_from_env(env: Mapping[str, str] | None = None) -> Context:
    """The context that ``inject_traceparent`` put into a process's env."""
    env = os.environ if env is None else env
    return context_from_traceparent(env.get(TRACEPARENT_ENV), env.get(TRACESTATE_ENV))


def attach_traceparent(traceparent: str | None, tracestate: str | None = None) -> Token[Context]:
    """Make the span named by ``traceparent`` the parent of everything this process
    starts from now on (a worker pod runs one job). Returns a token for ``detach``.
    """
    return otel_context.attach(context_from_traceparent(traceparent, tracestate))


def detach(token: Token[Context]) -> None:
    """Undo ``attach_traceparent``."""
    otel_context.detach(token)


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current span as lowercase hex, or None outside one."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


#: API paths that are not worth a trace: scrapes and probes, every few seconds.
UNTRACED_PATHS = "/metrics,/healthz,/readyz,/livez"


def instrument_pymongo() -> None:
    """Trace every MongoDB command as a child span; call before creating a MongoClient."""
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    instrumentor = PymongoInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def shutdown(timeout_millis: int = 5000) -> None:
    """Flush exported spans and stop the exporter (call before a process exits).

    The SDK also does this at interpreter exit; a worker calls it explicitly so
    the spans of a Job are sent before the pod's container stops.
    """
    global _shut_down
    with _LOCK:
        if _provider is None or _shut_down:
            return
        _shut_down = True
        _provider.force_flush(timeout_millis)
        _provider.shutdown()
