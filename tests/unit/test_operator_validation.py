"""Validation beyond the CRD schema (pure): each problem names its field."""

from __future__ import annotations

from typing import Any

import pytest
from kubevod.operator.errors import InvalidSpec
from kubevod.operator.resource import VideoAssetSpec
from kubevod.operator.validation import check, problems


def spec(**kw: Any) -> VideoAssetSpec:
    return VideoAssetSpec.model_validate({"source": {"url": "https://example.org/a.mp4"}, **kw})


@pytest.mark.parametrize(
    "good",
    [
        {},
        {"source": {"url": "http://nas.local:8080/v.mkv"}},
        {"source": {"s3": {"bucket": "incoming", "key": "a/b.mp4"}}},
        {"source": {"pvc": {"claimName": "nas", "path": "films/a.mkv"}}},
        {"ladder": {"profile": "default"}},
        {
            "ladder": {
                "rungs": [
                    {"height": 1080, "bitrate": 5_000_000},
                    {"height": 360, "bitrate": 800_000},
                ]
            }
        },
        {"segmentSeconds": 2},
    ],
)
def test_sane_specs_pass(good: dict[str, Any]) -> None:
    check(spec(**good))


@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        ({"source": {"url": "ftp://x/a.mp4"}}, "spec.source.url", "scheme 'ftp'"),
        ({"source": {"url": "file:///etc/passwd"}}, "spec.source.url", "scheme 'file'"),
        ({"source": {"url": "https://user:pw@x/a.mp4"}}, "spec.source.url", "credentials"),
        ({"source": {"url": "https:///a.mp4"}}, "spec.source.url", "no host"),
        ({"source": {}}, "spec.source", "exactly one"),
        (
            {"source": {"url": "https://x/a", "s3": {"bucket": "abc", "key": "k"}}},
            "spec.source",
            "exactly one",
        ),
        (
            {"source": {"s3": {"bucket": "A_B", "key": "k"}}},
            "spec.source.s3.bucket",
            "not a valid bucket",
        ),
        ({"source": {"s3": {"bucket": "abc", "key": "/k"}}}, "spec.source.s3.key", "non-empty"),
        (
            {"source": {"pvc": {"claimName": "n", "path": "../../etc/shadow"}}},
            "spec.source.pvc.path",
            "'..'",
        ),
        (
            {"source": {"pvc": {"claimName": "n", "path": "films/"}}},
            "spec.source.pvc.path",
            "name a file",
        ),
        ({"ladder": {"profile": "tiny"}}, "spec.ladder.profile", "unknown profile"),
        (
            {"ladder": {"profile": "default", "rungs": [{"height": 360, "bitrate": 800_000}]}},
            "spec.ladder",
            "not both",
        ),
        (
            {
                "ladder": {
                    "rungs": [
                        {"height": 360, "bitrate": 800_000},
                        {"height": 360, "bitrate": 900_000},
                    ]
                }
            },
            "spec.ladder.rungs",
            "same height",
        ),
        (
            {
                "ladder": {
                    "rungs": [
                        {"height": 1080, "bitrate": 500_000},
                        {"height": 360, "bitrate": 800_000},
                    ]
                }
            },
            "spec.ladder.rungs",
            "1080p has a bitrate",
        ),
        ({"segmentSeconds": 0.5}, "spec.segmentSeconds", "outside 1..30"),
    ],
)
def test_each_problem_names_its_field(bad: dict[str, Any], field: str, words: str) -> None:
    found = problems(spec(**bad))
    assert any(p.startswith(f"{field}:") and words in p for p in found), found
    with pytest.raises(InvalidSpec) as err:
        check(spec(**bad))
    assert field in str(err.value)
