"""The operator-worker contract (kubevod.contract): a Job built by the operator's builder is
read back by the worker's own parsers, and the two sides agree on exit codes and labels."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from kubevod.operator.job_manifest import build_job
from kubevod.operator.resource import Asset, VideoAssetSpec
from kubevod.operator.settings import GpuSettings, WorkerJobSettings
from kubevod.worker import main as worker_main
from kubevod.worker.settings import WorkerSettings

from kubevod import contract
from kubevod.jobs import TranscodeJob

ROOT = Path(__file__).resolve().parents[2]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _job(**worker: Any) -> dict[str, Any]:
    asset = Asset(
        namespace="media",
        name="big-buck-bunny",
        uid="0b7f4a51-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
        generation=3,
        spec=VideoAssetSpec.model_validate(
            {
                "source": {"url": "https://media.example/bbb.mp4"},
                "title": "Big Buck Bunny",
                "segmentSeconds": 6,
                "codec": "hevc",
            }
        ),
    )
    return build_job(
        asset,
        video_id=asset.video_id,
        worker=WorkerJobSettings(**worker),
        gpu=GpuSettings(),
        traceparent=TRACEPARENT,
    )


def _container(job: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = job["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == contract.CONTAINER)


def _pod_env(job: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    """The environment the kubelet would give the worker (Secret references resolved)."""
    env: dict[str, str] = {}
    for item in _container(job)["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "secretKeyRef" in item.get("valueFrom", {}):
            env[item["name"]] = secrets[item["name"]]
    return env


def test_the_worker_parses_the_job_the_operator_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    job = _job(
        fetch_allow=["10.87.0.2/32", "nas.lan"], fetch_deny=["10.42.0.0/16"],
        fetch_deadline_seconds=42.5, s3_source_buckets=["inbox", "archive"],
    )  # fmt: skip
    secrets = {contract.CATALOG_URL: "mongodb://w:pw@mongo:27017/kubevod",
               contract.STORE_URL: "s3://w:pw@minio:9000/kubevod"}  # fmt: skip
    env = _pod_env(job, secrets)
    # The secrets travel by reference only, under the names the worker reads.
    refs = {e["name"] for e in _container(job)["env"] if "valueFrom" in e}
    assert {contract.CATALOG_URL, contract.STORE_URL} <= refs
    assert worker_main.CATALOG_ENV == contract.CATALOG_URL
    assert worker_main.STORE_ENV == contract.STORE_URL
    # The job itself, read by the worker's parser.
    parsed = TranscodeJob.from_env(env)
    assert (parsed.source, parsed.generation, parsed.segment_seconds, parsed.codec) == (
        "https://media.example/bbb.mp4", 3, 6.0, "hevc",
    )  # fmt: skip
    assert parsed.video_id == job["metadata"]["labels"][contract.LABEL_VIDEO_ID]
    assert env[contract.TRACEPARENT] == TRACEPARENT
    # The fetch guard's settings, read by the worker's settings class.
    for name in list(os.environ):
        if name.startswith("KUBEVOD_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = WorkerSettings()
    assert settings.fetch_allow == ["10.87.0.2/32", "nas.lan"]
    assert settings.fetch_deny == ["10.42.0.0/16"]
    assert settings.fetch_deadline == 42.5
    assert settings.s3_source_buckets == ["inbox", "archive"]
    assert settings.max_source_bytes > 0
    assert "nas.lan" in settings.fetch_policy().allow_hosts


def test_every_permanent_exit_fails_the_job_without_retry() -> None:
    rules = _job()["spec"]["podFailurePolicy"]["rules"]
    fail = next(r for r in rules if r["action"] == "FailJob")
    assert fail["onExitCodes"]["containerName"] == contract.CONTAINER
    assert sorted(fail["onExitCodes"]["values"]) == sorted(contract.EXIT_PERMANENT)
    assert contract.EXIT_RETRY not in fail["onExitCodes"]["values"]


def test_the_worker_exits_with_the_contract_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    # No job at all is a permanent fault of the Job; no catalog URL may pass on retry.
    assert worker_main.main([], env={}) == contract.EXIT_BAD_SOURCE
    job_env = TranscodeJob(video_id="v1", source="/nowhere.mp4").to_env()
    assert worker_main.main([], env=job_env) == contract.EXIT_RETRY


@pytest.mark.parametrize("index", ["2", "-1", "one", "1.0"])
def test_a_pod_index_outside_its_job_is_a_permanent_fault(
    index: str, capsys: pytest.CaptureFixture[str]
) -> None:
    job_env = TranscodeJob(video_id="v1", source="/nowhere.mp4", pods=2).to_env()
    code = worker_main.main([], env={**job_env, contract.POD_INDEX: index})
    assert code == contract.EXIT_BAD_SOURCE and code in contract.EXIT_PERMANENT
    assert f"{contract.POD_INDEX} is not a pod of 2" in capsys.readouterr().err
    # A pod of the Job goes on (here to the missing catalog, which may pass on retry).
    assert worker_main.main([], env={**job_env, contract.POD_INDEX: "1"}) == contract.EXIT_RETRY


def test_the_charts_policies_select_the_pods_the_operator_labels() -> None:
    labels = _job()["spec"]["template"]["metadata"]["labels"]
    text = (ROOT / "charts/kubevod/templates/networkpolicy.yaml").read_text()
    line = next(ln for ln in text.splitlines() if "$workerLabels := dict" in ln)
    words = [w.strip('"') for w in line.split("dict", 1)[1].split("}}")[0].split()]
    chart = dict(zip(words[::2], words[1::2], strict=True))
    assert chart == {k: labels[k] for k in chart}
    assert chart[contract.LABEL_NAME] == contract.WORKER_NAME
    assert chart[contract.LABEL_COMPONENT] == contract.WORKER_COMPONENT


def test_a_malformed_fetch_setting_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.FETCH_DENY, "nas.lan")
    with pytest.raises(ValueError, match="is not a CIDR"):
        WorkerSettings()
