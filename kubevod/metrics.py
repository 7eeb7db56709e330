"""Prometheus metrics of the operator and the worker, and the server that exposes them.

The API keeps its own request and QoE metrics (``kubevod.api.metrics``,
``kubevod_api_*``, ``kubevod_qoe_*``, ``kubevod_manifest_*``); the names here
are ``kubevod_operator_*`` and ``kubevod_worker_*``, so all can share one
registry in local mode.

Each group is a class owning its metric objects, registered in the registry it
is given (a fresh one in tests). A process uses the one shared instance from
``operator_metrics()`` / ``worker_metrics()``, registered in the default
registry that ``start_metrics_server`` serves.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import start_http_server

#: VideoAsset phases (docs/architecture.md §5), so a phase with no Job still reads 0.
PHASES = ("Pending", "Queued", "Transcoding", "Ready", "Failed")

#: Seconds a whole transcode may take: a 2 s test clip up to a 4 h film in software.
DURATION_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
#: x realtime: media seconds per wall second (0.1 = a slow 4K software encode, 64 = NVENC 360p).
SPEED_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 4, 8, 16, 32, 64)
#: Bytes per second of one object upload: 100 kB/s (a bad Wi-Fi NAS) to 1 GB/s (loopback).
THROUGHPUT_BUCKETS = (1e5, 3e5, 1e6, 3e6, 1e7, 3e7, 1e8, 3e8, 1e9)
STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200)


class OperatorMetrics:
    """Queue depth, Jobs by phase, and how long and how fast transcodes were."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry = r
        self.queue_depth = Gauge(
            "kubevod_operator_queue_depth",
            "VideoAssets waiting for a transcode slot (phase Queued)",
            registry=r,
        )
        self.jobs = Gauge(
            "kubevod_operator_jobs",
            "VideoAssets by phase, as last seen by this operator",
            ["phase"],
            registry=r,
        )
        self.transcode_duration = Histogram(
            "kubevod_operator_transcode_duration_seconds",
            "Wall time from Job start to its end, by outcome (ready, failed)",
            ["outcome"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.transcode_speed = Histogram(
            "kubevod_operator_transcode_speed_ratio",
            "Media seconds transcoded per wall second (x realtime), finished Jobs",
            buckets=SPEED_BUCKETS,
            registry=r,
        )
        self.transcodes = Counter(
            "kubevod_operator_transcodes",
            "Finished transcodes by outcome (ready, failed)",
            ["outcome"],
            registry=r,
        )
        self.handler_errors = Counter(
            "kubevod_operator_handler_errors",
            "Handler failures by kind (temporary: retried, permanent: spec is wrong)",
            ["kind"],
            registry=r,
        )
        for phase in PHASES:
            self.jobs.labels(phase)

    def set_phases(self, counts: Mapping[str, int]) -> None:
        """Set the Jobs-by-phase gauge (and queue depth) from a full count by phase."""
        for phase in {*PHASES, *counts}:
            self.jobs.labels(phase).set(counts.get(phase, 0))
        self.queue_depth.set(counts.get("Queued", 0))

    def observe_transcode(
        self, wall_seconds: float, media_seconds: float | None, *, outcome: str = "ready"
    ) -> None:
        """Record one finished transcode; speed only for successful ones with a duration."""
        self.transcodes.labels(outcome).inc()
        self.transcode_duration.labels(outcome).observe(max(wall_seconds, 0.0))
        if outcome == "ready" and media_seconds and wall_seconds > 0:
            self.transcode_speed.observe(media_seconds / wall_seconds)


class WorkerMetrics:
    """Encode fps and speed from ffmpeg's progress, upload throughput, stage durations."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry = r
        self.encode_fps = Gauge(
            "kubevod_worker_encode_fps",
            "Frames per second ffmpeg reported last (source frames, all rungs at once)",
            ["accelerator"],
            registry=r,
        )
        self.encode_speed = Histogram(
            "kubevod_worker_encode_speed_ratio",
            "Encode speed in x realtime, one sample per ffmpeg progress report",
            ["accelerator"],
            buckets=SPEED_BUCKETS,
            registry=r,
        )
        self.upload_throughput = Histogram(
            "kubevod_worker_upload_throughput_bytes_per_second",
            "Bytes per second of each object upload to the store",
            ["kind"],
            buckets=THROUGHPUT_BUCKETS,
            registry=r,
        )
        self.uploaded_bytes = Counter(
            "kubevod_worker_uploaded_bytes",
            "Bytes uploaded to the object store, by kind (segment, init, poster, trickplay, ...)",
            ["kind"],
            registry=r,
        )
        self.stage_duration = Histogram(
            "kubevod_worker_stage_duration_seconds",
            "Wall time of each pipeline stage (fetch, probe, encode, thumbnails, finalize)",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )

    def observe_progress(self, *, fps: float | None, speed: float | None, accelerator: str) -> None:
        """Record one ffmpeg progress report (either value may be missing early on)."""
        if fps is not None and fps >= 0:
            self.encode_fps.labels(accelerator).set(fps)
        if speed is not None and speed > 0:
            self.encode_speed.labels(accelerator).observe(speed)

    def observe_upload(self, nbytes: int, seconds: float, *, kind: str = "segment") -> None:
        """Record one finished object upload."""
        self.uploaded_bytes.labels(kind).inc(max(nbytes, 0))
        if seconds > 0 and nbytes > 0:
            self.upload_throughput.labels(kind).observe(nbytes / seconds)


@functools.cache
def operator_metrics() -> OperatorMetrics:
    """The process's operator metrics, in the default registry."""
    return OperatorMetrics(REGISTRY)


@functools.cache
def worker_metrics() -> WorkerMetrics:
    """The process's worker metrics, in the default registry (local mode: same process)."""
    return WorkerMetrics(REGISTRY)


_servers: dict[tuple[str, int], int] = {}
_servers_lock = threading.Lock()


def start_metrics_server(
    port: int, *, addr: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY
) -> int:
    """Serve ``/metrics`` from a daemon thread; returns the bound port (``port=0``: any free).

    Calling it again for the same address and port does nothing.
    """
    with _servers_lock:
        if port and (addr, port) in _servers:
            return _servers[(addr, port)]
        server, _thread = start_http_server(port, addr=addr, registry=registry)
        bound = int(server.server_address[1])
        _servers[(addr, bound)] = bound
        return bound
