"""Ladder planning (docs/architecture.md §6): never upscale, source height between rungs."""

from __future__ import annotations

import pytest
from kubevod.worker.ladder import (
    CODEC_FACTOR,
    codec_bitrate,
    output_fps,
    plan_ladder,
    scale_bitrate,
)

from kubevod.errors import InvalidInput
from kubevod.jobs import LadderRung


def sizes(rungs: list) -> list[tuple[str, int, int, int]]:
    return [(r.name, r.width, r.height, r.maxrate) for r in rungs]


@pytest.mark.parametrize(
    ("width", "height", "fps", "expected"),
    [
        (
            1920, 1080, 30,
            [("1080p", 1920, 1080, 5_000_000), ("720p", 1280, 720, 2_800_000),
             ("480p", 854, 480, 1_400_000), ("360p", 640, 360, 800_000),
             ("240p", 426, 240, 400_000)],
        ),
        (
            3840, 2160, 24,
            [("2160p", 3840, 2160, 14_000_000), ("1440p", 2560, 1440, 8_000_000),
             ("1080p", 1920, 1080, 5_000_000), ("720p", 1280, 720, 2_800_000),
             ("480p", 854, 480, 1_400_000), ("360p", 640, 360, 800_000),
             ("240p", 426, 240, 400_000)],
        ),
        # odd source: its own height is added between 480 and 360, sizes made even
        (
            718, 405, 30,
            [("405p", 718, 404, 1_006_000), ("360p", 638, 360, 800_000),
             ("240p", 426, 240, 400_000)],
        ),
        # portrait (rotation already applied): the short side names the rung
        (
            1080, 1920, 30,
            [("1080p", 1080, 1920, 5_000_000), ("720p", 720, 1280, 2_800_000),
             ("480p", 480, 854, 1_400_000), ("360p", 360, 640, 800_000),
             ("240p", 240, 426, 400_000)],
        ),
        # tiny source: below the lowest rung, encoded at its own size only
        (320, 180, 30, [("180p", 320, 180, 225_000)]),
        # 60 fps: named 720p60 and given 1.5x the bits
        (1280, 720, 60, [("720p60", 1280, 720, 4_200_000), ("480p60", 854, 480, 2_100_000),
                         ("360p60", 640, 360, 1_200_000), ("240p60", 426, 240, 600_000)]),
    ],
)  # fmt: skip
def test_default_ladder(width: int, height: int, fps: float, expected: list) -> None:
    assert sizes(plan_ladder(width, height, fps)) == expected


def test_never_upscales_and_dimensions_are_even() -> None:
    for w, h in [(1000, 563), (641, 359), (1921, 1081), (5000, 2813), (99, 1001)]:
        for rung in plan_ladder(w, h, 29.97):
            assert rung.width % 2 == 0 and rung.height % 2 == 0
            assert min(rung.width, rung.height) <= min(w, h) + 1
            assert rung.bufsize == 2 * rung.maxrate


def test_aspect_is_kept() -> None:
    for rung in plan_ladder(1440, 1080, 25):  # 4:3
        assert abs(rung.width / rung.height - 4 / 3) < 0.02


def test_explicit_rungs_above_the_source_are_dropped() -> None:
    ladder = [
        LadderRung(height=1080, bitrate=6_000_000),
        LadderRung(height=480, bitrate=1_000_000, name="sd"),
    ]
    assert sizes(plan_ladder(1280, 720, 30, ladder)) == [("sd", 854, 480, 1_000_000)]


def test_explicit_rungs_all_above_the_source_encode_it_at_its_own_size() -> None:
    ladder = [LadderRung(height=1080, bitrate=6_000_000)]
    assert [r.height for r in plan_ladder(640, 360, 30, ladder)] == [360]


def test_named_profiles_and_unknown_profile() -> None:
    assert plan_ladder(3840, 2160, 30, "hd")[0].name == "1080p"
    assert plan_ladder(3840, 2160, 30, "small")[0].name == "720p"
    with pytest.raises(InvalidInput, match="unknown ladder profile"):
        plan_ladder(1920, 1080, 30, "huge")


@pytest.mark.parametrize(
    ("fps", "expected"),
    [(0, 30.0), (23.976, 23.976), (60, 60.0), (120, 60.0), (59.94, 59.94), (240, 60.0)],
)
def test_output_fps_is_capped_at_60(fps: float, expected: float) -> None:
    assert output_fps(fps) == expected


@pytest.mark.parametrize(
    ("fps", "expected"), [(24, 1000), (30, 1000), (45, 1250), (60, 1500), (120, 1500)]
)
def test_bitrate_scaling_for_high_frame_rates(fps: float, expected: int) -> None:
    assert scale_bitrate(1_000_000, fps) == expected * 1000


def test_better_codecs_get_a_cheaper_ladder() -> None:
    assert CODEC_FACTOR == {"h264": 1.0, "hevc": 0.7, "av1": 0.6}
    assert codec_bitrate(5_000_000, "hevc") == 3_500_000
    assert codec_bitrate(2_800_000, "av1") == 1_680_000
    assert codec_bitrate(2_800_000, "h264") == 2_800_000
    h264 = plan_ladder(1280, 720, 30)
    for codec, factor in (("hevc", 0.7), ("av1", 0.6)):
        rungs = plan_ladder(1280, 720, 30, codec=codec)
        assert [(r.name, r.width, r.height) for r in rungs] == [
            (r.name, r.width, r.height) for r in h264
        ]
        for mine, base in zip(rungs, h264, strict=True):
            assert mine.maxrate == round(base.maxrate * factor, -3)
            assert mine.bufsize == 2 * mine.maxrate


def test_explicit_rungs_keep_their_bitrate_whatever_the_codec() -> None:
    rungs = plan_ladder(640, 360, 30, [LadderRung(height=360, bitrate=900_000)], codec="av1")
    assert [r.maxrate for r in rungs] == [900_000]
