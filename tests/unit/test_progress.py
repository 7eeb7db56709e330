"""ffmpeg ``-progress`` parsing: percent clamped to 0..100, never backwards, speed read."""

from __future__ import annotations

import pytest
from kubevod.worker.progress import ProgressParser, ProgressUpdate, percent_of


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
