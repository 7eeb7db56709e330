"""Status mirroring (pure): Job + catalog entry → VideoAsset.status, Events, queue order."""

from __future__ import annotations

from typing import Any

import pytest
from kubevod.operator import status as st
from kubevod.operator.queue import Ledger, QueueItem, decide, order
from kubevod.operator.resource import Asset, VideoAssetSpec

from kubevod.models import MediaPlan, Rendition, SourceSummary, TrackKind, Video, VideoState

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:01:00Z"
BASE = "https://tv.home"


def asset(generation: int = 1, **spec: Any) -> Asset:
    return Asset(
        namespace="media",
        name="clip",
        uid="uid-1",
        generation=generation,
        spec=VideoAssetSpec.model_validate({"source": {"url": "https://x/y.mp4"}, **spec}),
    )


def job(**kw: Any) -> st.JobView:
    return st.JobView(namespace="media", name="clip-abc-g1", **kw)


def video(a: Asset, **kw: Any) -> Video:
    defaults: dict[str, Any] = {
        "id": a.video_id,
        "state": VideoState.TRANSCODING,
        "progress": 40.0,
        "playable": True,
        "duration": 12.345,
        "renditions": [
            Rendition(name="360p", width=640, height=360, bandwidth=900_000, codecs="avc1.64001e"),
            Rendition(name="audio", kind=TrackKind.AUDIO, bandwidth=128_000, codecs="mp4a.40.2"),
        ],
        "source_info": SourceSummary(codec="h264", width=640, height=360, fps=30.0),
        "poster_key": f"videos/{a.video_id}/g1/poster.jpg",
    }
    defaults.update(kw)
    return Video(**defaults)


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in status["conditions"] if c["type"] == type_)
    return found


def test_job_body_is_read_like_the_job_controller_writes_it() -> None:
    body = {
        "metadata": {
            "namespace": "media",
            "name": "j",
            "uid": "u",
            "labels": {"kubevod.io/generation": "3"},
        },
        "status": {
            "failed": 1,
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "PodFailurePolicy"},
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "PodFailurePolicy",
                    "message": "exit 2",
                },
            ],
        },
    }
    view = st.JobView.from_body(body)
    assert (view.generation, view.failed, view.failed_terminal, view.finished) == (3, 1, True, True)
    assert (view.reason, view.message) == ("PodFailurePolicy", "exit 2")
    assert not st.JobView.from_body({"metadata": {"name": "j"}}).finished


def test_transcoding_status_shows_progress_and_playback_while_encoding() -> None:
    a = asset()
    s = st.from_job(a, {}, job(active=1), video(a), public_url=BASE, now=NOW)
    assert s["phase"] == "Transcoding"
    assert s["progress"] == 40.0
    assert s["playable"] is True
    assert s["playback"]["hls"] == f"{BASE}/v/{a.video_id}/master.m3u8"
    assert s["playback"]["dash"] == f"{BASE}/v/{a.video_id}/manifest.mpd"
    assert s["playback"]["poster"] == f"{BASE}/media/{a.video_id}/g1/poster.jpg"
    assert s["duration"] == 12.35
    assert s["renditions"][0] == {
        "name": "360p",
        "kind": "video",
        "width": 640,
        "height": 360,
        "bandwidth": 900000,
        "codecs": "avc1.64001e",
    }
    assert s["renditions"][1]["kind"] == "audio" and "width" not in s["renditions"][1]
    assert s["source"] == {"codec": "h264", "width": 640, "height": 360, "fps": 30.0}
    assert (s["jobName"], s["attempts"], s["observedGeneration"]) == ("clip-abc-g1", 1, 1)
    assert cond(s, "Ready")["reason"] == "Transcoding"
    assert cond(s, "Playable")["status"] == "True"


def test_complete_job_and_ready_catalog_make_ready_at_100_percent() -> None:
    a = asset()
    v = video(a, state=VideoState.READY, progress=99.0, accelerator="software")
    s = st.from_job(a, {}, job(succeeded=1, complete=True), v, public_url=BASE, now=NOW)
    assert (s["phase"], s["progress"]) == ("Ready", 100.0)
    assert cond(s, "Ready") | {"lastTransitionTime": None} == {
        "type": "Ready",
        "status": "True",
        "reason": "Transcoded",
        "message": "transcoded: 2 renditions",
        "observedGeneration": 1,
        "lastTransitionTime": None,
    }
    assert cond(s, "HardwareAccelerated")["reason"] == "SoftwareFallback"


@pytest.mark.parametrize(
    ("job_reason", "catalog_message", "reason", "message"),
    [
        ("PodFailurePolicy", "not a video: no streams", "SourceError", "not a video: no streams"),
        (
            "BackoffLimitExceeded",
            "",
            "TranscodeFailed",
            "Job has reached the specified backoff limit",
        ),
        ("DeadlineExceeded", "", "DeadlineExceeded", "Job has reached the specified backoff limit"),
        ("SomethingNew", "", "SomethingNew", "Job has reached the specified backoff limit"),
    ],
)
def test_failed_job_gives_a_reason_a_person_understands(
    job_reason: str, catalog_message: str, reason: str, message: str
) -> None:
    a = asset()
    v = video(a, state=VideoState.FAILED, message=catalog_message, playable=False)
    j = job(
        failed=1,
        failed_terminal=True,
        reason=job_reason,
        message="Job has reached the specified backoff limit",
    )
    s = st.from_job(a, {}, j, v, public_url=BASE, now=NOW)
    assert s["phase"] == "Failed"
    assert cond(s, "Ready")["reason"] == reason
    assert s["message"] == message
    events = st.transitions({"phase": "Transcoding", "observedGeneration": 1}, s)
    assert events == [st.Event("Warning", reason, message)]


def test_complete_job_without_ready_catalog_is_not_ready() -> None:
    a = asset()
    s = st.from_job(a, {}, job(complete=True, succeeded=1), video(a), public_url=BASE, now=NOW)
    assert s["phase"] == "Failed" and cond(s, "Ready")["reason"] == "IncompleteResult"


def test_transition_times_only_move_when_a_condition_changes() -> None:
    a = asset()
    first = st.from_job(a, {}, job(active=1), video(a, playable=False), public_url=BASE, now=NOW)
    again = st.from_job(a, first, job(active=1), video(a, progress=60), public_url=BASE, now=LATER)
    assert cond(again, "Ready")["lastTransitionTime"] == NOW
    assert cond(again, "Playable")["lastTransitionTime"] == LATER


def test_events_on_each_transition_and_none_on_a_repeat() -> None:
    a = asset()
    q = st.queued(a, {}, ahead=1, running=2, limit=2, now=NOW)
    assert q["message"] == "waiting for a transcode slot (2/2 running, 1 ahead)"
    assert st.transitions({}, q) == [st.Event("Normal", "Queued", q["message"])]
    t = st.from_job(a, q, job(active=1), video(a), public_url=BASE, now=NOW)
    kinds = [(e.type, e.reason) for e in st.transitions(q, t)]
    assert kinds == [("Normal", "Transcoding"), ("Normal", "Playable")]
    assert (
        st.transitions(t, st.from_job(a, t, job(active=1), video(a), public_url=BASE, now=LATER))
        == []
    )


def test_invalid_spec_is_failed_with_its_reason() -> None:
    s = st.invalid(asset(), {}, "spec.source.url: scheme 'ftp' is not supported", now=NOW)
    assert s["phase"] == "Failed" and cond(s, "Ready")["reason"] == "InvalidSpec"
    assert st.transitions({}, s)[0].type == "Warning"


def entry(name: str, created: str, priority: int = 0, done: bool = False) -> QueueItem:
    return QueueItem(
        namespace="media",
        name=name,
        job_name=f"{name}-g1",
        priority=priority,
        created=created,
        done=done,
    )


def test_queue_order_is_priority_then_creation_then_name() -> None:
    items = [
        entry("c", "2026-01-01T00:00:02Z"),
        entry("b", "2026-01-01T00:00:01Z"),
        entry("a", "2026-01-01T00:00:01Z"),
        entry("z", "2026-01-01T00:00:09Z", priority=5),
    ]
    assert [e.name for e in order(items)] == ["z", "a", "b", "c"]


def test_only_the_first_waiting_entries_get_the_free_slots() -> None:
    items = [entry(n, f"2026-01-01T00:00:0{i}Z") for i, n in enumerate("abcde")]
    running = {("media", "x-g1"): True, ("media", "old-g1"): False}  # one running, one finished
    assert decide(items[0], items, running, limit=2).start
    assert not decide(items[1], items, running, limit=2).start
    d = decide(items[3], items, running, limit=2)
    assert (d.start, d.ahead, d.running) == (False, 3, 1)
    # an entry whose Job exists is no longer waiting
    assert decide(items[1], items, {**running, ("media", "a-g1"): True}, limit=3).start
    # done entries (ready, failed, deleting) never hold a place in line
    items[0] = entry("a", "2026-01-01T00:00:00Z", done=True)
    assert decide(items[1], items, running, limit=2).start


def test_ledger_never_hands_the_last_slot_out_twice() -> None:
    ledger = Ledger()
    items = [entry(n, f"2026-01-01T00:00:0{i}Z") for i, n in enumerate("abc")]
    assert ledger.try_claim(items[0], items, {}, limit=1).start
    # the index has not seen a-g1 yet, "a" still looks like it waits: b must not start
    assert not ledger.try_claim(items[1], items[1:], {}, limit=1).start
    # once the Job shows up finished, the slot is free again
    assert ledger.try_claim(items[1], items[1:], {("media", "a-g1"): False}, limit=1).start
    ledger.release(("media", "b-g1"))
    assert ledger.try_claim(items[1], items[1:], {("media", "a-g1"): False}, limit=1).start


def test_job_duration_comes_from_start_and_completion_times() -> None:
    body = {
        "metadata": {"name": "j"},
        "status": {
            "startTime": "2026-01-01T00:00:00Z",
            "completionTime": "2026-01-01T00:01:30Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    }
    assert st.JobView.from_body(body).wall_seconds() == 90.0
    assert st.JobView.from_body({"metadata": {"name": "j"}}).wall_seconds() is None


@pytest.mark.parametrize(
    ("state", "generation", "phase", "reason"),
    [
        (VideoState.READY, 1, "Ready", "Transcoded"),  # its TTL removed a finished Job
        (VideoState.FAILED, 1, "Failed", "JobFailed"),
        (VideoState.TRANSCODING, 1, "Failed", "JobLost"),  # deleted by hand mid-way
        (VideoState.READY, 0, "Failed", "JobLost"),  # the entry is of an older generation
    ],
)
def test_a_vanished_job_is_told_by_the_catalog(
    state: VideoState, generation: int, phase: str, reason: str
) -> None:
    a = asset()
    v = video(a, state=state, generation=max(generation, 1) if generation else 1)
    if generation == 0:
        a = asset(generation=2)
    view = st.vanished_job(a, "clip-abc-g1", v)
    s = st.from_job(a, {}, view, v, public_url=BASE, now=NOW)
    assert (s["phase"], cond(s, "Ready")["reason"]) == (phase, reason)


def test_only_media_shaping_fields_change_the_fingerprint() -> None:
    base = asset().spec.fingerprint()
    assert (
        asset(title="New", tags=["a"], priority=5, retainOnDelete=True).spec.fingerprint() == base
    )
    assert asset(description="longer text").spec.fingerprint() == base
    assert asset(segmentSeconds=2).spec.fingerprint() != base
    assert asset(codec="hevc").spec.fingerprint() != base
    assert asset(source={"url": "https://x/other.mp4"}).spec.fingerprint() != base
    s = st.queued(asset(), {}, ahead=0, running=0, limit=1, now=NOW)
    assert s["specHash"] == base


def test_a_claim_for_a_job_that_never_shows_up_expires() -> None:
    clock = [0.0]
    ledger = Ledger(ttl=60, clock=lambda: clock[0])
    items = [entry(n, f"2026-01-01T00:00:0{i}Z") for i, n in enumerate("ab")]
    assert ledger.try_claim(items[0], items, {}, limit=1).start
    assert ledger.holds(("media", "a-g1"))
    clock[0] = 61.0  # a-g1 was deleted before the index ever saw it
    assert not ledger.holds(("media", "a-g1"))
    assert ledger.try_claim(items[1], items[1:], {}, limit=1).start


def test_a_spread_transcode_shows_its_chunks_and_counts_its_pods_as_one_try() -> None:
    a = asset(transcode={"pods": 2})
    plan = MediaPlan(first=1, every=4, fps=30, duration=40, chunk_seconds=8, first_chunk_seconds=2)
    total = len(plan.chunks())
    v = video(a, plan=plan, chunks_done=[0, 2, 1], progress=100 * 3 / total)
    s = st.from_job(a, {}, job(active=2), v, public_url=BASE, now=NOW)
    assert s["chunks"] == {"done": 3, "total": total}
    assert f"(3 of {total} chunks)" in s["message"]
    assert s["attempts"] == 1
    again = st.from_job(a, s, job(active=2, failed=1), v, public_url=BASE, now=NOW)
    assert again["attempts"] == 2  # one pod failed and was started again
    plain = st.from_job(a, {}, job(active=1), video(a), public_url=BASE, now=NOW)
    assert "chunks" not in plain and "chunks)" not in plain["message"]


def test_an_on_demand_video_is_ready_with_the_share_of_its_chunks_encoded() -> None:
    a = asset(transcode={"policy": "onDemand"})
    plan = MediaPlan(first=2, every=2, fps=30, duration=40, chunk_seconds=8)
    total = len(plan.chunks())
    v = video(a, state=VideoState.READY, progress=100 / total, plan=plan, chunks_done=[0])
    s = st.from_job(a, {}, job(succeeded=1, complete=True), v, public_url=BASE, now=NOW)
    assert s["phase"] == "Ready" and s["playable"] is True
    assert s["chunks"] == {"done": 1, "total": total}
    assert s["progress"] == round(100 / total, 1)
    assert s["message"] == f"ready on demand: 1 of {total} chunks encoded, the others when watched"
    # The chunk workers encode more: the status follows, and a complete video reads as any.
    more = v.model_copy(update={"chunks_done": [0, 3, 4], "progress": 300 / total})
    s2 = st.on_demand_progress(s, more, public_url=BASE)
    assert s2["chunks"] == {"done": 3, "total": total} and s2["phase"] == "Ready"
    assert s2["message"].startswith(f"ready on demand: 3 of {total} chunks")
    done = v.model_copy(update={"chunks_done": list(range(total)), "progress": 100.0})
    s3 = st.on_demand_progress(s2, done, public_url=BASE)
    assert (s3["progress"], s3["message"]) == (100.0, "transcoded: 2 renditions")
    assert not st.transitions(s, s2)  # no Event per chunk
