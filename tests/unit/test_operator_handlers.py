"""The operator's handler decisions, without an API server.

The handlers are called as kopf calls them, with kopf's own ``Body``, ``Patch``
and ``Memo`` objects and the real SQLite catalog and file store behind
``memo.state``; kopf's Event poster is replaced by a recorder (posting needs a
running operator). The pure decisions are tested as tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kopf
import pytest
from kubevod.operator import handlers
from kubevod.operator.catalog_entry import build_entry
from kubevod.operator.errors import InvalidSpec, OverLimit, Rejected, Unschedulable
from kubevod.operator.handlers import Call, OperatorState
from kubevod.operator.resource import Asset
from kubevod.operator.settings import OperatorSettings
from kubevod.operator.status import JobView, PodScheduling

from kubevod.catalog.sqlite import SqliteCatalog
from kubevod.errors import Unavailable
from kubevod.lifecycle import Lifecycle
from kubevod.models import Video
from kubevod.store.file import FileStore

SPEC = {"source": {"url": "https://media.example/a.mp4"}, "title": "A film"}


def body(*, generation: int = 1, spec: dict[str, Any] | None = None, **status: Any) -> kopf.Body:
    return kopf.Body(
        {
            "apiVersion": "kubevod.io/v1alpha1",
            "kind": "VideoAsset",
            "metadata": {
                "name": "a-film", "namespace": "media", "uid": "u-1", "generation": generation,
                "creationTimestamp": "2026-12-01T10:00:00Z",
            },
            "spec": spec or SPEC,
            "status": status,
        }
    )  # fmt: skip


@pytest.fixture
def state(tmp_path: Path) -> OperatorState:
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    # No API server: a decision that reached for one would fail on this.
    return OperatorState(
        settings=OperatorSettings(), catalog=catalog, store=FileStore(tmp_path / "media"),
        api=None,  # type: ignore[arg-type]
    )  # fmt: skip


class Events(list[tuple[str, str, str]]):
    def __call__(self, _obj: Any, *, type: str, reason: str, message: str) -> None:
        self.append((type, reason, message))


def call_for(b: kopf.Body, state: OperatorState) -> tuple[Call, Events]:
    events = Events()
    call = Call(
        asset=Asset.from_body(b), body=b, old=b.status, patch=kopf.Patch(), state=state,
        post=events,
    )  # fmt: skip
    return call, events


# --------------------------------------------------------------------------- the mapping


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (InvalidSpec(["spec.source.url: scheme 'ftp' is not supported"]), "InvalidSpec"),
        (OverLimit(["spec.priority: 500 is over the namespace's cap of 100"]), "OverLimit"),
        (Rejected(403, "exceeded quota: jobs"), "Rejected"),
        (Unschedulable("0/1 nodes are available: 1 Insufficient nvidia.com/gpu"), "Unschedulable"),
    ],
)
def test_a_permanent_error_ends_failed_with_its_reason(
    state: OperatorState, error: Exception, reason: str
) -> None:
    call, events = call_for(body(phase="Queued", observedGeneration=1), state)
    with pytest.raises(kopf.PermanentError, match=str(error)[:20]), handlers.outcomes(call):
        raise error
    status = call.patch.status
    assert status["phase"] == "Failed" and status["message"] == str(error)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert any(e[0] == "Warning" for e in events), events


def test_an_unavailable_backend_is_temporary_with_the_settings_delay(
    state: OperatorState,
) -> None:
    call, events = call_for(body(phase="Transcoding", observedGeneration=1), state)
    with pytest.raises(kopf.TemporaryError) as raised, handlers.outcomes(call):
        raise Unavailable("catalog mongodb://mongo:27017 unavailable: AutoReconnect")
    assert raised.value.delay == state.settings.timing.retry_seconds
    assert call.patch.status["message"].startswith("retrying in ")
    assert "phase" not in call.patch.status and events == []


def test_an_error_the_table_does_not_know_propagates(state: OperatorState) -> None:
    call, _ = call_for(body(), state)
    with pytest.raises(ZeroDivisionError), handlers.outcomes(call):
        _ = 1 / 0
    assert dict(call.patch) == {}


# --------------------------------------------------------------------------- the handlers


def test_a_metadata_only_change_edits_the_entry_and_starts_no_transcode(
    state: OperatorState,
) -> None:
    first = Asset.from_body(body())
    Lifecycle(state.catalog, state.store).start_generation(build_entry(first))
    changed = {**SPEC, "title": "A better title", "tags": ["drama"]}
    b = body(
        generation=2, spec=changed, phase="Ready", observedGeneration=1,
        specHash=first.spec.fingerprint(),
    )  # fmt: skip
    patch = kopf.Patch()
    handlers.respec(body=b, status=b.status, patch=patch, memo=kopf.Memo(state=state))
    assert patch.status == {"observedGeneration": 2}
    video = state.catalog.get(first.video_id)
    assert (video.title, video.tags, video.generation) == ("A better title", ["drama"], 1)


def test_a_spec_over_the_namespace_cap_fails_before_any_job_or_entry(
    state: OperatorState, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = body(spec={**SPEC, "priority": 1000})
    patch = kopf.Patch()
    monkeypatch.setattr(handlers, "Call", _RecordingCall)
    with pytest.raises(kopf.PermanentError, match="priority"):
        handlers.admit(body=b, status=b.status, patch=patch, memo=kopf.Memo(state=state))
    assert patch.status["phase"] == "Failed"
    assert state.catalog.list().total == 0  # nothing written, no API server reached


class _RecordingCall(Call):
    """A Call whose Events go to a list (kopf's poster needs a running operator)."""

    @classmethod
    def of(cls, *args: Any, **kwargs: Any) -> Call:
        call = Call.of(*args, **kwargs)
        call.post = Events()
        return call


def test_the_timer_waits_for_the_create_handler(state: OperatorState) -> None:
    b = body()
    patch = kopf.Patch()
    handlers.reconcile(body=b, status=b.status, patch=patch, memo=kopf.Memo(state=state))
    assert dict(patch) == {}


def test_a_timer_call_that_finds_the_generation_failed_keeps_its_reason(
    state: OperatorState,
) -> None:
    # The create handler's Failed/Rejected patch lands between the timer's
    # ``when`` filter and the call (kopf's body is live). With no Job to find,
    # mirroring would report JobLost over the API server's own words.
    asset = Asset.from_body(body())
    b = body(
        phase="Failed", observedGeneration=1, specHash=asset.spec.fingerprint(),
        conditions=[{"type": "Ready", "status": "False", "reason": "Rejected"}],
    )  # fmt: skip
    patch = kopf.Patch()
    handlers.reconcile(body=b, status=b.status, patch=patch, memo=kopf.Memo(state=state))
    assert dict(patch) == {}


# --------------------------------------------------------------------------- pure decisions


@pytest.mark.parametrize(
    ("status", "generation", "step"),
    [
        ({}, 1, "wait"),
        ({"phase": "Queued", "observedGeneration": 1}, 2, "readmit"),
        ({"phase": "Queued", "observedGeneration": 1}, 1, "start"),
        ({"phase": "Transcoding", "observedGeneration": 1}, 1, "mirror"),
        # Settled: a patch that landed after the timer's filter is not mirrored over.
        ({"phase": "Failed", "observedGeneration": 3}, 3, "wait"),
        ({"phase": "Ready", "observedGeneration": 3}, 3, "wait"),
        ({"phase": "Failed", "observedGeneration": 2}, 3, "readmit"),
    ],
)
def test_next_step(status: dict[str, Any], generation: int, step: str) -> None:
    asset = Asset.from_body(body(generation=generation))
    assert handlers.next_step(asset, status) == step


def test_metadata_only_needs_an_admitted_generation_with_the_same_fingerprint() -> None:
    asset = Asset.from_body(body())
    same = asset.spec.fingerprint()
    assert handlers.metadata_only(asset, {"phase": "Ready", "specHash": same})
    assert not handlers.metadata_only(asset, {"phase": "Ready", "specHash": "other"})
    assert not handlers.metadata_only(asset, {"specHash": same})  # never admitted


@pytest.mark.parametrize(
    ("error", "pods", "retry", "step"),
    [
        (None, [], 0, "done"),
        (None, ["a-film-g1-x"], 0, "retry"),
        (None, ["a-film-g1-x"], 5, "done"),  # pods that never end do not block deletion
        (Unavailable("store down"), [], 4, "retry"),
        (Unavailable("store down"), [], 5, "give_up"),
    ],
)
def test_cleanup_step(error: Unavailable | None, pods: list[str], retry: int, step: str) -> None:
    assert handlers.cleanup_step(error=error, live_pods=pods, retry=retry, max_retries=5) == step


def test_unschedulable_too_long_only_for_a_job_that_has_not_begun() -> None:
    view = JobView(namespace="media", name="a-film-g1", generation=1, active=1)
    pending = PodScheduling(pod="p", since="2026-12-01T10:00:00Z", message="no GPU")
    later = "2026-12-01T10:16:00Z"
    assert handlers.unschedulable_too_long(view, None, pending, 900, later)
    assert not handlers.unschedulable_too_long(view, None, pending, 900, "2026-12-01T10:05:00Z")
    begun = Video(id="a", progress=3.0)
    assert not handlers.unschedulable_too_long(view, begun, pending, 900, later)
    assert not handlers.unschedulable_too_long(view, None, None, 900, later)
