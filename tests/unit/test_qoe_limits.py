"""The pure bounds of QoE intake: token buckets, the session cap, clamped values."""

from __future__ import annotations

import pytest
from kubevod.api.qoe_limits import Clamps, RateLimiter, SessionCap, clamp_beacon

from kubevod.models import QoeBeacon

CLAMPS = Clamps(max_startup_ms=60_000, max_session_ms=6 * 3600 * 1000, max_events=1000)


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    limiter = RateLimiter(rate_per_s=2, burst=3, max_keys=10)

    first = [limiter.take("a", now=0.0) for _ in range(4)]
    later = limiter.take("a", now=0.5)  # one token back after 0.5 s at 2/s

    assert first[:3] == [0, 0, 0] and first[3] == pytest.approx(0.5)
    assert later == 0
    assert limiter.take("b", now=0.5) == 0  # another client has its own bucket


def test_the_least_recently_seen_client_is_forgotten_past_max_keys() -> None:
    limiter = RateLimiter(rate_per_s=0.001, burst=1, max_keys=2)
    limiter.take("a", 0.0)
    limiter.take("b", 0.0)
    limiter.take("c", 0.0)  # forgets "a"

    assert limiter.take("a", 0.0) == 0  # a fresh, full bucket
    assert limiter.take("c", 0.0) > 0


def test_the_session_cap_admits_known_sessions_and_refuses_new_ones_at_the_cap() -> None:
    cap = SessionCap(2, refresh_s=60)
    assert cap.needs_count("v", now=0)
    cap.set_count("v", 1, now=0)
    assert not cap.needs_count("v", now=30)

    assert cap.admits("v", "s1")
    cap.recorded("v", "s1", new=True)  # 2 sessions now
    assert not cap.admits("v", "s2")
    assert cap.admits("v", "s1")
    assert cap.needs_count("v", now=60)
    cap.set_count("v", 0, now=60)  # e.g. the catalog was emptied
    assert cap.admits("v", "s2")


@pytest.mark.parametrize(
    ("fields", "expected", "changed"),
    [
        ({"startup_ms": 500_000}, {"startup_ms": 60_000}, ["startup_ms"]),
        ({"watch_ms": 80_000_000}, {"watch_ms": 21_600_000}, ["watch_ms"]),
        ({"rebuffer_ms": 80_000_000}, {"rebuffer_ms": 21_600_000}, ["rebuffer_ms"]),
        ({"rebuffer_count": 5000, "switches": 7}, {"rebuffer_count": 1000}, ["rebuffer_count"]),
        ({"switches": 99_999}, {"switches": 1000}, ["switches"]),
        ({"rendition": "9999p"}, {"rendition": None}, ["rendition"]),
        ({"errors": ["x" * 500]}, {"errors": ["x" * 200]}, ["errors"]),
        ({"startup_ms": 900, "rendition": "720p", "watch_ms": 1000}, {}, []),
    ],
)
def test_values_are_clamped_into_their_sane_range(
    fields: dict[str, object], expected: dict[str, object], changed: list[str]
) -> None:
    beacon = QoeBeacon.model_validate({"video_id": "v1", "session": "s", **fields})

    clamped, names = clamp_beacon(beacon, CLAMPS, {"720p", "360p"})

    assert names == changed
    for name, value in {**fields, **expected}.items():
        assert getattr(clamped, name) == value
