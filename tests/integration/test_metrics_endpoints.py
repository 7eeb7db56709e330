"""The metrics endpoints after real work: the names the dashboard reads, sane values.

One VideoAsset goes the whole cluster path (real operator, the real worker run
with the Job's env — the test plays the kubelet —, real API; see
``operator_support.flow``); then players fetch its manifest and send QoE
beacons to the real API, and both Prometheus endpoints are scraped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubevod.worker.pipeline import run
from prometheus_client.parser import text_string_to_metric_families

from kubevod.catalog.sqlite import SqliteCatalog
from kubevod.jobs import TranscodeJob
from kubevod.metrics import start_metrics_server
from kubevod.store.file import FileStore
from tests.fixtures.jobs import scheduled
from tests.fixtures.media import make_video
from tests.fixtures.otlp import OtlpReceiver
from tests.integration.operator_support.flow import Flow, install_crds, one_video
from tests.integration.worker_media import fast_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
MASTER = "/v/{video_id}/master.m3u8"


@pytest.fixture(scope="module")
def flow(
    kube: Any, minio: Any, mongo: Any, otlp: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flow]:
    install_crds(kube)
    with one_video(kube, minio, mongo, otlp.endpoint, tmp_path_factory.mktemp("m")) as done:
        yield done


def scrape(text: str) -> tuple[Samples, set[str]]:
    """(every sample by name and labels, every family name) of a Prometheus exposition."""
    samples: Samples = {}
    families: set[str] = set()
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, families


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_operator_metrics_after_a_transcode(flow: Flow) -> None:
    samples, families = scrape(flow.ns.metrics())
    assert {
        "kubevod_operator_queue_depth",
        "kubevod_operator_jobs",
        "kubevod_operator_transcode_duration_seconds",
        "kubevod_operator_transcode_speed_ratio",
        "kubevod_operator_transcodes",
        "kubevod_operator_handler_errors",
    } <= families
    phases = {p: value(samples, "kubevod_operator_jobs", phase=p) for p in ("Ready", "Queued")}
    assert phases == {"Ready": 1, "Queued": 0}
    assert value(samples, "kubevod_operator_jobs", phase="Transcoding") == 0
    assert value(samples, "kubevod_operator_queue_depth") == 0
    assert value(samples, "kubevod_operator_transcodes_total", outcome="ready") == 1
    ready = {"outcome": "ready"}
    assert value(samples, "kubevod_operator_transcode_duration_seconds_count", **ready) == 1
    wall = value(samples, "kubevod_operator_transcode_duration_seconds_sum", **ready)
    assert 0 < wall < 120
    assert value(samples, "kubevod_operator_transcode_speed_ratio_count") == 1
    speed = value(samples, "kubevod_operator_transcode_speed_ratio_sum")
    # a 2 s clip; the Job's times have 1 s resolution, so the speed is 2 s over the wall time
    assert speed == pytest.approx(flow.status["duration"] / wall, rel=0.01)
    assert 0 < speed < 10


def test_api_metrics_after_playback_and_beacons(flow: Flow) -> None:
    with httpx.Client(base_url=flow.api_url, timeout=10) as client:
        for _ in range(2):  # the second comes from the LRU of ready manifests: no render
            assert client.get(f"/v/{flow.video_id}/master.m3u8").status_code == 200
        assert client.get("/v/nosuchvideo1/master.m3u8").status_code == 404
        session = {"video_id": flow.video_id, "session": "s1"}
        beacons = [
            {**session, "startup_ms": 800, "watch_ms": 4000, "switches": 1},
            {**session, "startup_ms": 800, "watch_ms": 10000, "rebuffer_ms": 1000,
             "rebuffer_count": 1, "switches": 2},
        ]  # fmt: skip
        for beacon in beacons:  # running totals, as players send them
            assert client.post("/api/qoe", json=beacon).status_code == 204
        samples, families = scrape(client.get("/metrics").text)

    assert {
        "kubevod_api_requests",
        "kubevod_api_request_duration_seconds",
        "kubevod_manifest_render_seconds",
        "kubevod_qoe_startup_seconds",
        "kubevod_qoe_rebuffer_ratio",
        "kubevod_qoe_rebuffer_count",
        "kubevod_qoe_bitrate_switches",
        "kubevod_qoe_beacons",
        "kubevod_qoe_player_errors",
        "process_cpu_seconds",  # the process registry is served too
    } <= families
    get = {"method": "GET", "route": MASTER}
    assert value(samples, "kubevod_api_requests_total", **get, status="200") == 2
    assert value(samples, "kubevod_api_requests_total", **get, status="404") == 1
    assert value(samples, "kubevod_api_request_duration_seconds_count", **get) == 3
    assert 0 < value(samples, "kubevod_api_request_duration_seconds_sum", **get) < 5
    master = {"kind": "hls_master"}
    assert value(samples, "kubevod_manifest_render_seconds_count", **master) == 1
    assert 0 < value(samples, "kubevod_manifest_render_seconds_sum", **master) < 1

    assert value(samples, "kubevod_qoe_beacons_total") == 2
    assert value(samples, "kubevod_qoe_sessions_total") == 1
    assert value(samples, "kubevod_qoe_startup_seconds_count") == 1  # once per session
    assert value(samples, "kubevod_qoe_startup_seconds_sum") == pytest.approx(0.8)
    assert value(samples, "kubevod_qoe_watch_seconds_total") == pytest.approx(10)
    assert value(samples, "kubevod_qoe_rebuffer_seconds_total") == pytest.approx(1)
    # per beacon interval: 0 s of 4 s stalled, then 1 s of 7 s
    assert value(samples, "kubevod_qoe_rebuffer_ratio_count") == 2
    assert value(samples, "kubevod_qoe_rebuffer_ratio_sum") == pytest.approx(1 / 7)
    assert value(samples, "kubevod_qoe_rebuffer_ratio_bucket", le="1.0") == 2  # all in 0..1
    assert value(samples, "kubevod_qoe_rebuffer_ratio_bucket", le="0.0") == 1
    assert value(samples, "kubevod_qoe_rebuffer_count_sum") == 1  # each stall once
    assert value(samples, "kubevod_qoe_bitrate_switches_sum") == 2  # each switch once
    assert value(samples, "kubevod_qoe_player_errors_total") == 0


WORKER_STAGES = ("fetch", "probe", "encode", "thumbnails", "finalize")


def _worker_samples(port: int) -> tuple[Samples, set[str]]:
    return scrape(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)


def test_worker_metrics_after_a_transcode(tmp_path: Path) -> None:
    """The worker's metrics (local mode serves them on /metrics; a Job on KUBEVOD_METRICS_PORT).

    The transcode runs in this process, so the counters include earlier tests' work:
    compared before and after.
    """
    port = start_metrics_server(0, addr="127.0.0.1")
    before, _ = _worker_samples(port)
    source = make_video(tmp_path / "clip.mp4", seconds=3, width=320, height=180)
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    job = TranscodeJob(video_id="metered", source=str(source), segment_seconds=1)
    try:
        video = run(scheduled(catalog, job), store=FileStore(tmp_path / "media"), catalog=catalog,
                    settings=fast_settings())  # fmt: skip
        segments = catalog.segments(job.video_id)
    finally:
        catalog.close()
    after, families = _worker_samples(port)
    assert {
        "kubevod_worker_encode_fps",
        "kubevod_worker_encode_speed_ratio",
        "kubevod_worker_upload_throughput_bytes_per_second",
        "kubevod_worker_uploaded_bytes",
        "kubevod_worker_stage_duration_seconds",
    } <= families

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - before.get((name, frozenset(labels.items())), 0.0)

    for stage in WORKER_STAGES:
        assert grew("kubevod_worker_stage_duration_seconds_count", stage=stage) == 1, stage
        assert 0 < grew("kubevod_worker_stage_duration_seconds_sum", stage=stage) < 60, stage
    assert video.state == "ready"
    assert grew("kubevod_worker_uploaded_bytes_total", kind="segment") == sum(
        s.size for s in segments
    )
    assert grew("kubevod_worker_uploaded_bytes_total", kind="init") > 0
    assert grew("kubevod_worker_uploaded_bytes_total", kind="poster") > 0
    assert grew("kubevod_worker_uploaded_bytes_total", kind="trickplay") > 0
    uploads = grew("kubevod_worker_upload_throughput_bytes_per_second_count", kind="segment")
    assert uploads == len(segments)
    assert grew("kubevod_worker_upload_throughput_bytes_per_second_sum", kind="segment") > 0
    # encode speed (x realtime) and fps (speed x the source's 30 fps) from the progress
    assert grew("kubevod_worker_encode_speed_ratio_count", accelerator="software") >= 1
    assert value(after, "kubevod_worker_encode_fps", accelerator="software") > 0
