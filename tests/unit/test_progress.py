"""ffmpeg ``-progress`` parsing: percent clamped to 0..100, never backwards, speed read."""

from __future__ import annotations

import pytest
from kubevod.worker.progress import ProgressParser, ProgressUpdate, percent_of
from kubevod.worker.tracker import ProgressTracker


def feed(parser: ProgressParser, text: str) -> list[ProgressUpdate]:
    return [u for line in text.splitlines() if (u := parser.feed(line)) is not None]


BLOCK = """frame=120
fps=60.1
stream_0_0_q=28.0
bitrate=1200.3kbits/s
total_size=601234
out_time_us={us}
out_time_ms={us}
out_time=00:00:04.000000
dup_frames=0
drop_frames=0
speed={speed}
progress={state}
"""


def test_blocks_become_updates() -> None:
    parser = ProgressParser(duration=20.0)
    text = BLOCK.format(us=4_000_000, speed="2.03x", state="continue")
    text += BLOCK.format(us=10_000_000, speed="1.9x", state="continue")
    updates = feed(parser, text)
    assert [(u.percent, u.seconds, u.speed, u.done) for u in updates] == [
        (20.0, 4.0, 2.03, False),
        (50.0, 10.0, 1.9, False),
    ]


def test_end_means_100_percent() -> None:
    parser = ProgressParser(duration=20.0)
    (update,) = feed(parser, BLOCK.format(us=19_960_000, speed="1.5x", state="end"))
    assert update.percent == 100.0 and update.done


@pytest.mark.parametrize(
    ("us", "percent"),
    [(-5_000_000, 0.0), (0, 0.0), (25_000_000, 100.0), (12_345_678, 61.72839)],
)
def test_percent_is_clamped(us: int, percent: float) -> None:
    (update,) = feed(ProgressParser(20.0), BLOCK.format(us=us, speed="1x", state="continue"))
    assert update.percent == pytest.approx(percent)


def test_never_goes_backwards_and_keeps_the_last_known_speed() -> None:
    parser = ProgressParser(10.0)
    feed(parser, BLOCK.format(us=6_000_000, speed="3x", state="continue"))
    (update,) = feed(parser, BLOCK.format(us=2_000_000, speed="N/A", state="continue"))
    assert update.percent == 60.0 and update.speed == 3.0


def test_unknown_speed_and_time_and_garbage_lines() -> None:
    parser = ProgressParser(10.0)
    updates = feed(
        parser, "garbage\n\nout_time_us=N/A\nout_time=N/A\nspeed=N/A\nprogress=continue\n"
    )
    assert [(u.percent, u.speed) for u in updates] == [(0.0, None)]


def test_out_time_is_used_when_microseconds_are_missing() -> None:
    (update,) = feed(ProgressParser(7200.0), "out_time=01:00:00.500000\nprogress=continue\n")
    assert update.seconds == pytest.approx(3600.5)
    assert update.percent == pytest.approx(50.0069, abs=1e-3)


@pytest.mark.parametrize(
    ("seconds", "duration", "percent"), [(1, 0, 0.0), (5, 10, 50.0), (11, 10, 100.0)]
)
def test_percent_of(seconds: float, duration: float, percent: float) -> None:
    assert percent_of(seconds, duration) == percent


class Clock:
    """A hand-moved clock for the tracker's rate limit."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def tracker(
    duration: float = 10.0,
) -> tuple[ProgressTracker, Clock, list[tuple[float, float | None]], list[float]]:
    clock = Clock()
    writes: list[tuple[float, float | None]] = []
    rises: list[float] = []
    t = ProgressTracker(
        duration, lambda p, s: writes.append((p, s)), on_rise=rises.append, clock=clock
    )
    return t, clock, writes, rises


def test_segments_alone_move_the_bar_when_ffmpeg_reports_nothing() -> None:
    """ffmpeg 5.1 with the trickplay output: no -progress until the end; segments speak."""
    t, clock, writes, rises = tracker()
    for second in (1, 3, 5, 7):
        clock.now += 1.0
        t.media(second)
    assert rises == pytest.approx([9.5, 28.5, 47.5, 66.5])
    assert [p for p, _ in writes] == pytest.approx([9.5, 28.5, 47.5, 66.5])
    assert writes[-1][1] == pytest.approx(7 / 4), "speed estimated from media time / wall time"


def test_writes_at_most_every_interval_and_flush_writes_the_last() -> None:
    t, clock, writes, rises = tracker()
    for step in range(1, 11):  # a report every 0.125 s
        clock.now += 0.125
        t.ffmpeg(ProgressUpdate(step * 5.0, step * 0.5, 2.0, False))
    assert len(rises) == 10
    # at 0.125 s, then at the first report 0.5 s after a write (0.625 s, 1.125 s)
    assert [p for p, _ in writes] == pytest.approx([4.75, 23.75, 42.75])
    t.flush()
    assert writes[-1][0] == pytest.approx(47.5) and writes[-1][1] == 2.0
    t.flush()
    assert len(writes) == 4, "nothing new: no write"


def test_the_furthest_witness_wins_never_backwards_and_clamped_below_100() -> None:
    t, clock, writes, rises = tracker()
    t.media(6.0)
    t.ffmpeg(ProgressUpdate(30.0, 3.0, 1.5, False))  # a late report behind the segments
    clock.now += 1
    t.ffmpeg(ProgressUpdate(100.0, 12.0, 1.5, True))  # past the probed duration
    assert rises == pytest.approx([57.0, 95.0])
    assert [p for p, _ in writes] == rises and t.percent == 95.0
    t.begin()  # a software retry after a failed GPU encode starts from 0 s
    t.media(2.0)
    assert t.percent == 95.0 and len(rises) == 2


def test_a_failing_catalog_write_does_not_stop_the_encode() -> None:
    clock = Clock()
    calls: list[float] = []

    def down(percent: float, _speed: float | None) -> None:
        calls.append(percent)
        raise ConnectionError("catalog down")

    t = ProgressTracker(10.0, down, clock=clock)
    t.media(1.0)
    t.media(2.0)  # within the interval: not retried at once
    clock.now += 0.5
    t.media(3.0)
    assert calls == pytest.approx([9.5, 28.5])
