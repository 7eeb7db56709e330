"""Prometheus metrics of the API: requests, latency, manifest renders, QoE.

Each app has its own registry (two apps in one test process never clash).
Requests are labelled by route template (``/v/{video_id}/master.m3u8``), never
by raw path, so a crawler cannot blow up the series count; unmatched paths
share the label ``unmatched``.

QoE beacons carry a session's running totals, several times per session. The
metrics take the difference from the session's previous beacon, which the
catalog hands back when it records the new one (``Catalog.record_qoe``): the
catalog is shared by every API replica, so a session whose beacons land on
different replicas is still counted once in the sum over replicas, and every
stall, switch and second once: startup time once per session, the other
histograms per beacon interval. The overall stall ratio is
``rate(kubevod_qoe_rebuffer_seconds_total)`` over the sum of that and
``rate(kubevod_qoe_watch_seconds_total)``.

``/metrics`` serves this app's registry followed by the process's default
registry (process and Python collectors; in local mode also the
``kubevod_worker_*`` families of the transcodes running in the process).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kubevod.models import QoeBeacon

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_RENDER_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)


class Metrics:
    """The API's metric families, registered in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "kubevod_api_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "kubevod_api_request_duration_seconds",
            "Time from request to the end of the response body",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.manifest_render = Histogram(
            "kubevod_manifest_render_seconds",
            "Time to render one manifest from catalog metadata (catalog reads excluded)",
            ["kind"],
            buckets=_RENDER_BUCKETS,
            registry=r,
        )
        self.qoe_beacons = Counter("kubevod_qoe_beacons", "QoE beacons accepted", registry=r)
        self.qoe_sessions = Counter(
            "kubevod_qoe_sessions", "Playback sessions seen (first beacon)", registry=r
        )
        self.qoe_startup = Histogram(
            "kubevod_qoe_startup_seconds",
            "Player startup time, navigation to first frame (once per session)",
            buckets=(0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20),
            registry=r,
        )
        # Per beacon interval (the difference from the session's previous beacon):
        # each stall, switch and second of a session is counted exactly once.
        self.qoe_rebuffer_ratio = Histogram(
            "kubevod_qoe_rebuffer_ratio",
            "Share of time stalled between two beacons of a session",
            buckets=(0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1),
            registry=r,
        )
        self.qoe_rebuffers = Histogram(
            "kubevod_qoe_rebuffer_count",
            "Stalls between two beacons of a session (_sum: all stalls)",
            buckets=(0, 1, 2, 3, 5, 10, 20, 50),
            registry=r,
        )
        self.qoe_switches = Histogram(
            "kubevod_qoe_bitrate_switches",
            "Quality switches between two beacons of a session (_sum: all switches)",
            buckets=(0, 1, 2, 3, 5, 10, 20, 50),
            registry=r,
        )
        self.qoe_watch = Counter(
            "kubevod_qoe_watch_seconds", "Time spent playing, all sessions", registry=r
        )
        self.qoe_rebuffer = Counter(
            "kubevod_qoe_rebuffer_seconds", "Time spent stalled, all sessions", registry=r
        )
        self.qoe_errors = Counter("kubevod_qoe_player_errors", "Player errors reported", registry=r)
        self.qoe_dropped = Counter(
            "kubevod_qoe_beacons_dropped",
            "QoE beacons not recorded: rate_limited (429) or session_cap (204, not counted)",
            ["reason"],
            registry=r,
        )
        self.qoe_clamped = Counter(
            "kubevod_qoe_values_clamped",
            "Beacon values brought into their sane range, by field",
            ["field"],
            registry=r,
        )

    def observe_beacon(self, beacon: QoeBeacon, previous: QoeBeacon | None) -> None:
        """Feed one recorded beacon into the QoE metrics, as its difference from ``previous``.

        Args:
            beacon: the beacon just recorded (a session's running totals).
            previous: the session's beacon it replaced in the catalog, None for the
                session's first; the catalog owns it, so that every replica computes
                its differences along the same chain of beacons.
        """
        self.qoe_beacons.inc()
        if previous is None:
            self.qoe_sessions.inc()
        # a session's first beacon counts from zero (the model's defaults)
        prior = previous or QoeBeacon(video_id=beacon.video_id, session=beacon.session)
        if beacon.startup_ms is not None and prior.startup_ms is None:
            self.qoe_startup.observe(beacon.startup_ms / 1000)
        watch = max(0.0, beacon.watch_ms - prior.watch_ms) / 1000
        stalled = max(0.0, beacon.rebuffer_ms - prior.rebuffer_ms) / 1000
        self.qoe_watch.inc(watch)
        self.qoe_rebuffer.inc(stalled)
        if watch + stalled > 0:
            self.qoe_rebuffer_ratio.observe(stalled / (watch + stalled))
        self.qoe_rebuffers.observe(max(0, beacon.rebuffer_count - prior.rebuffer_count))
        self.qoe_switches.observe(max(0, beacon.switches - prior.switches))
        self.qoe_errors.inc(max(0, len(beacon.errors) - len(prior.errors)))


class MetricsMiddleware:
    """Pure ASGI middleware counting requests and timing them by route template.

    The labelled children are looked up once per (method, route, status) and kept:
    ``labels()`` takes a lock and builds a key per call, a cost that shows on a
    request answered from memory.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _child(self, method: str, template: str, status: int) -> tuple[Any, Any]:
        key = (method, template, status)
        child = self._children.get(key)
        if child is None:
            child = (
                self.metrics.requests.labels(method, template, str(status)),
                self.metrics.latency.labels(method, template),
            )
            if len(self._children) < 10_000:  # bounded: templates x methods x statuses
                self._children[key] = child
        return child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            requests, latency = self._child(scope.get("method", "GET"), template, status)
            requests.inc()
            latency.observe(time.perf_counter() - started)


router = APIRouter(tags=["operations"])


async def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.services.metrics
    return metrics


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
def metrics_endpoint(metrics: Annotated[Metrics, Depends(_metrics)]) -> Response:
    """Prometheus metrics of this API process (and of local mode's transcoder threads)."""
    # The default registry: the process collectors, and in local mode the
    # ``kubevod_worker_*`` families of the transcodes running in this process.
    body = generate_latest(metrics.registry) + generate_latest(REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
