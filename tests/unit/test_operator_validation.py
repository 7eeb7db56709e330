"""Validation beyond the CRD schema (pure): each problem names its field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubevod.operator import status as st
from kubevod.operator.errors import InvalidSpec
from kubevod.operator.resource import Asset, VideoAssetSpec
from kubevod.operator.status import JobView
from kubevod.operator.validation import check, problems

from kubevod.models import Rendition, SourceSummary, Video, VideoState


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


# --------------------------------------------------------------------------- the CRD file

CRD_PATH = Path(__file__).resolve().parents[2] / "manifests" / "crd" / "videoassets.kubevod.io.yaml"


def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_PATH.read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, child in (node.get("properties") or {}).items():
        yield f"{path}.{name}", child
        yield from walk(child, f"{path}.{name}")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")


def test_every_crd_field_has_a_description_for_kubectl_explain() -> None:
    schema = crd_schema()
    missing = [
        p for p, node in walk(schema, "") if p != ".metadata" and not node.get("description")
    ]
    assert missing == []


def test_the_spec_model_and_the_crd_name_the_same_fields() -> None:
    crd_fields = set(crd_schema()["properties"]["spec"]["properties"])
    model_fields = {f.alias or name for name, f in VideoAssetSpec.model_fields.items()}
    assert crd_fields == model_fields


def test_every_status_field_the_operator_writes_survives_pruning() -> None:
    """The API server silently drops status fields the schema does not declare."""
    status_schema = crd_schema()["properties"]["status"]["properties"]
    a = Asset(namespace="n", name="v", uid="u", generation=1, spec=spec())
    v = Video(
        id=a.video_id, state=VideoState.READY, playable=True, duration=3.0, accelerator="nvidia",
        renditions=[Rendition(name="360p", width=640, height=360, bandwidth=1, codecs="avc1")],
        source_info=SourceSummary(codec="h264", width=1, height=1, fps=1.0, bitrate=1, size=1),
        poster_key="videos/x/g1/poster.jpg",
    )  # fmt: skip
    job = JobView(namespace="n", name="j", complete=True, succeeded=1)
    written = st.from_job(a, {}, job, v, public_url="http://x", now="2026-01-01T00:00:00Z")
    assert set(written) <= set(status_schema)
    for key in ("playback", "source"):
        assert set(written[key]) <= set(status_schema[key]["properties"])
    rendition_fields = status_schema["renditions"]["items"]["properties"]
    assert set(written["renditions"][0]) <= set(rendition_fields)
    condition_fields = status_schema["conditions"]["items"]["properties"]
    assert all(set(c) <= set(condition_fields) for c in written["conditions"])
    queued = st.queued(a, {}, ahead=0, running=0, limit=1, now="2026-01-01T00:00:00Z")
    assert set(queued) <= set(status_schema)
