"""QoE metrics with several API replicas: one session's beacons spread over two apps.

Behind a Kubernetes Service each beacon of a playback session may reach a
different replica. Each app here opens its own catalog on one shared database
(as replicas do), and Prometheus sums over the replicas: that sum must count
the session once, its startup once, and its watch time once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubevod.backends import open_catalog, open_store
from tests.integration.api_env import ApiEnv, api_env

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "mongo"])
async def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[ApiEnv]]:
    """Two API apps, each with its own catalog client on the same database."""
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'catalog.db'}"
    else:
        url = request.getfixturevalue("mongo_url")
    store = open_store((tmp_path / "media").as_uri())
    async with AsyncExitStack() as stack:
        envs = []
        for _ in range(2):
            catalog = open_catalog(url)
            stack.callback(catalog.close)
            envs.append(
                await stack.enter_async_context(api_env(tmp_path, catalog=catalog, store=store))
            )
        yield envs


async def summed_metrics(envs: list[ApiEnv]) -> dict[str, float]:
    """Every sample of the apps' ``/metrics``, summed over the apps (as PromQL ``sum``)."""
    total: defaultdict[str, float] = defaultdict(float)
    for env in envs:
        text = (await env.client.get("/metrics")).text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if not s.labels:
                    total[s.name] += s.value
    return total


async def test_a_session_spread_over_two_replicas_is_counted_once(replicas: list[ApiEnv]) -> None:
    video, _ = replicas[0].add_video()
    session = {"video_id": video.id, "session": "s1", "startup_ms": 900}
    beacons = [  # running totals, as the player sends them
        {**session, "watch_ms": 4000},
        {**session, "watch_ms": 10_000, "rebuffer_ms": 500, "rebuffer_count": 1, "switches": 1},
        {**session, "watch_ms": 16_000, "rebuffer_ms": 500, "rebuffer_count": 1, "switches": 2},
        {**session, "watch_ms": 25_000, "rebuffer_ms": 2000, "rebuffer_count": 3, "switches": 2,
         "errors": ["decode"]},
    ]  # fmt: skip
    for i, beacon in enumerate(beacons):  # alternating replicas: A, B, A, B
        resp = await replicas[i % 2].client.post("/api/qoe", json=beacon)
        assert resp.status_code == 204

    got = await summed_metrics(replicas)

    assert got["kubevod_qoe_beacons_total"] == 4
    assert got["kubevod_qoe_sessions_total"] == 1
    assert got["kubevod_qoe_startup_seconds_count"] == 1
    assert got["kubevod_qoe_startup_seconds_sum"] == pytest.approx(0.9)
    assert got["kubevod_qoe_watch_seconds_total"] == pytest.approx(25)  # the last watch_ms
    assert got["kubevod_qoe_rebuffer_seconds_total"] == pytest.approx(2)
    assert got["kubevod_qoe_rebuffer_count_sum"] == 3
    assert got["kubevod_qoe_bitrate_switches_sum"] == 2
    assert got["kubevod_qoe_player_errors_total"] == 1
    assert got["kubevod_qoe_rebuffer_ratio_count"] == 4  # one per beacon interval
    stats = (await replicas[1].client.get(f"/api/videos/{video.id}/qoe")).json()
    assert stats["sessions"] == 1
