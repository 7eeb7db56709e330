"""Operator and worker metrics: names, values after recording, and the /metrics server."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kubevod.metrics import OperatorMetrics, WorkerMetrics, start_metrics_server


def samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items()))
            out[key] = sample.value
    return out


def test_operator_metrics_after_a_ready_and_a_failed_transcode() -> None:
    metrics = OperatorMetrics()
    metrics.set_phases({"Queued": 3, "Transcoding": 2, "Ready": 7})
    metrics.observe_transcode(20.0, 60.0, outcome="ready")  # 3x realtime
    metrics.observe_transcode(5.0, None, outcome="failed")
    got = samples(generate_latest(metrics.registry).decode())
    assert got["kubevod_operator_queue_depth"] == 3
    assert got["kubevod_operator_jobs{phase=Queued}"] == 3
    assert got["kubevod_operator_jobs{phase=Failed}"] == 0, "phases with no Job read 0"
    assert got["kubevod_operator_transcodes_total{outcome=ready}"] == 1
    assert got["kubevod_operator_transcodes_total{outcome=failed}"] == 1
    assert got["kubevod_operator_transcode_duration_seconds_sum{outcome=ready}"] == 20
    assert got["kubevod_operator_transcode_speed_ratio_sum"] == 3
    assert got["kubevod_operator_transcode_speed_ratio_count"] == 1, "failed ones have no speed"
    assert got["kubevod_operator_transcode_speed_ratio_bucket{le=2.0}"] == 0
    assert got["kubevod_operator_transcode_speed_ratio_bucket{le=4.0}"] == 1


def test_phase_counts_replace_previous_ones() -> None:
    metrics = OperatorMetrics()
    metrics.set_phases({"Queued": 3})
    metrics.set_phases({"Ready": 1})
    got = samples(generate_latest(metrics.registry).decode())
    assert got["kubevod_operator_jobs{phase=Queued}"] == 0
    assert got["kubevod_operator_queue_depth"] == 0


def test_worker_metrics_from_progress_and_uploads() -> None:
    metrics = WorkerMetrics()
    metrics.observe_progress(fps=None, speed=None, accelerator="none")  # ffmpeg's first report
    metrics.observe_progress(fps=240.0, speed=8.0, accelerator="none")
    metrics.observe_upload(2_000_000, 0.5, kind="segment")
    metrics.observe_upload(0, 0.0, kind="init")
    got = samples(generate_latest(metrics.registry).decode())
    assert got["kubevod_worker_encode_fps{accelerator=none}"] == 240
    assert got["kubevod_worker_encode_speed_ratio_count{accelerator=none}"] == 1
    assert got["kubevod_worker_upload_throughput_bytes_per_second_sum{kind=segment}"] == 4e6
    assert got["kubevod_worker_uploaded_bytes_total{kind=segment}"] == 2e6
    assert got["kubevod_worker_uploaded_bytes_total{kind=init}"] == 0


def test_operator_worker_and_api_metrics_share_one_registry_without_clashes() -> None:
    registry = CollectorRegistry()
    OperatorMetrics(registry)
    WorkerMetrics(registry)
    try:
        from kubevod.api.metrics import Metrics
    except ImportError:
        pytest.skip("the API is not importable here")
    api = Metrics()
    ours = {name for name in registry._names_to_collectors}
    theirs = {name for name in api.registry._names_to_collectors}
    assert not ours & theirs


def test_api_qoe_metrics_are_the_difference_from_the_previous_beacon_given() -> None:
    """observe_beacon keeps no memory: the previous beacon comes from the catalog."""
    try:
        from kubevod.api.metrics import Metrics
    except ImportError:
        pytest.skip("the API is not importable here")
    from kubevod.models import QoeBeacon

    first = QoeBeacon(video_id="v", session="s", startup_ms=500, watch_ms=4000)
    later = first.model_copy(
        update={"watch_ms": 9000, "rebuffer_ms": 1000, "rebuffer_count": 2, "errors": ["x"]}
    )
    one, other = Metrics(), Metrics()  # two replicas
    one.observe_beacon(first, None)
    other.observe_beacon(later, first)
    a = samples(generate_latest(one.registry).decode())
    b = samples(generate_latest(other.registry).decode())

    def both(name: str) -> float:
        return a[name] + b[name]

    assert (a["kubevod_qoe_sessions_total"], b["kubevod_qoe_sessions_total"]) == (1, 0)
    assert both("kubevod_qoe_startup_seconds_count") == 1
    assert both("kubevod_qoe_watch_seconds_total") == 9
    assert b["kubevod_qoe_watch_seconds_total"] == 5
    assert both("kubevod_qoe_rebuffer_seconds_total") == 1
    assert b["kubevod_qoe_rebuffer_ratio_sum"] == pytest.approx(1 / 6)
    assert both("kubevod_qoe_rebuffer_count_sum") == 2
    assert both("kubevod_qoe_player_errors_total") == 1
    assert both("kubevod_qoe_beacons_total") == 2


def test_metrics_server_serves_the_registry_on_a_free_port() -> None:
    metrics = WorkerMetrics()
    metrics.observe_progress(fps=30.0, speed=1.0, accelerator="nvidia")
    port = start_metrics_server(0, addr="127.0.0.1", registry=metrics.registry)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        got = samples(response.read().decode())
    assert got["kubevod_worker_encode_fps{accelerator=nvidia}"] == 30
    assert start_metrics_server(port, addr="127.0.0.1", registry=metrics.registry) == port
