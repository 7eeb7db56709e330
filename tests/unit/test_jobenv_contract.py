"""The Job env contract: every name the operator writes (kubevod.jobenv) is one the worker reads."""

from __future__ import annotations

import pytest
from kubevod.worker.settings import WorkerSettings

from kubevod import jobenv


def test_the_worker_reads_every_name_the_operator_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(jobenv.FETCH_ALLOW, "10.87.0.2/32,nas.lan")
    monkeypatch.setenv(jobenv.FETCH_DENY, "10.42.0.0/16,10.43.0.0/16")
    monkeypatch.setenv(jobenv.FETCH_DEADLINE, "42.5")
    monkeypatch.setenv(jobenv.MAX_SOURCE_BYTES, "1048576")
    monkeypatch.setenv(jobenv.S3_SOURCE_BUCKETS, "inbox,archive")
    settings = WorkerSettings()
    assert settings.fetch_allow == ["10.87.0.2/32", "nas.lan"]
    assert settings.fetch_deny == ["10.42.0.0/16", "10.43.0.0/16"]
    assert settings.fetch_deadline == 42.5
    assert settings.max_source_bytes == 1048576
    assert settings.s3_source_buckets == ["inbox", "archive"]
    policy = settings.fetch_policy()
    assert "nas.lan" in policy.allow_hosts and len(policy.deny_networks) == 2


def test_a_malformed_fetch_setting_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(jobenv.FETCH_DENY, "nas.lan")
    with pytest.raises(ValueError, match="is not a CIDR"):
        WorkerSettings()
