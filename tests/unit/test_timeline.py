"""The segment timeline (pure): regular cuts, and cuts chosen among a source's keyframes."""

from __future__ import annotations

import math

import pytest

from kubevod.timeline import Timeline, spread


def test_regular_cuts_a_short_first_segment_then_every_length() -> None:
    t = Timeline.regular(1.0, 4.0)
    assert t.cuts_before(10.0) == (1.0, 5.0, 9.0)
    assert [t.index(s) for s in (0.0, 0.96, 0.99, 1.0, 4.97, 5.0, 9.5)] == [0, 1, 1, 1, 2, 2, 3]
    assert [t.end(i) for i in range(3)] == [1.0, 5.0, 9.0]
    assert t.longest(10.0) == 4.0
    assert Timeline.regular(6.0, 4.0).first == 4.0  # never a first segment longer


@pytest.mark.parametrize(
    ("keyframes", "duration", "cuts"),
    [
        # keyframes every second: exactly the regular timeline
        ([float(s) for s in range(20)], 20.0, (1.0, 5.0, 9.0, 13.0, 17.0)),
        # every 2 s: the first segment cannot be shorter than a GOP
        ([float(s) for s in range(0, 20, 2)], 20.0, (2.0, 6.0, 10.0, 14.0, 18.0)),
        # irregular keyframes (scene cuts): each cut the first keyframe at or after target
        ([0.0, 0.7, 1.3, 4.2, 6.1, 8.8, 9.4, 12.0], 14.0, (1.3, 6.1, 9.4)),
        # a late keyframe passes a target: the next cut aims at the following one
        ([0.0, 1.0, 10.0, 13.0, 14.0], 15.0, (1.0, 10.0, 13.0)),
        # a keyframe right at the end makes no zero-length last segment
        ([0.0, 1.0, 5.0, 9.0, 9.99], 10.0, (1.0, 5.0, 9.0)),
        # an odd duration: the last segment is short
        ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 5.4, (1.0, 5.0)),
    ],
)
def test_cuts_on_keyframes(
    keyframes: list[float], duration: float, cuts: tuple[float, ...]
) -> None:
    t = Timeline.on_keyframes(keyframes, duration, first=1.0, every=4.0, longest=10.0)
    assert t is not None and t.cuts == cuts
    assert t.cuts_before(duration) == cuts
    assert math.isinf(t.end(len(cuts)))


@pytest.mark.parametrize(
    ("keyframes", "duration"),
    [
        ([0.0], 30.0),  # one keyframe: one 30-s segment
        ([0.0, 1.0, 5.0, 20.0], 24.0),  # a 15-s gap
        ([0.0, 1.0, 5.0], 20.0),  # the tail runs 15 s without a keyframe
    ],
)
def test_keyframes_too_sparse_for_the_timeline(keyframes: list[float], duration: float) -> None:
    assert Timeline.on_keyframes(keyframes, duration, first=1.0, every=4.0, longest=10.0) is None


def test_a_piece_just_before_a_cut_counts_after_it() -> None:
    t = Timeline.on_keyframes([0.0, 1.3, 6.1], 9.0, first=1.0, every=4.0, longest=10.0)
    assert t is not None
    assert [t.index(s) for s in (0.0, 1.26, 1.3, 6.06, 8.9)] == [0, 1, 1, 2, 2]
    assert t.longest(9.0) == pytest.approx(4.8)


@pytest.mark.parametrize("total", [0, 1, 2, 3, 7, 20])
@pytest.mark.parametrize("pods", [1, 2, 3, 5])
def test_spread_gives_every_chunk_after_the_first_to_exactly_one_pod(total: int, pods: int) -> None:
    shares = [spread(total, pods, pod) for pod in range(pods)]
    given = sorted(i for share in shares for i in share)
    assert given == list(range(1, total))  # chunk 0 is the registration's
    for share in shares:
        assert share == sorted(share)  # front to back within a pod
    sizes = [len(s) for s in shares]
    assert max(sizes, default=0) - min(sizes, default=0) <= 1  # balanced


def test_spread_refuses_a_pod_outside_the_job() -> None:
    for pods, pod in [(2, 2), (2, -1), (0, 0)]:
        with pytest.raises(ValueError):
            spread(5, pods, pod)
