"""The operator against a real kube-apiserver, MinIO and the MongoDB-wire catalog.

The test cluster is etcd + kube-apiserver only: there is no kubelet, no Job
controller and no garbage collector. The operator runs as a real
``kubevod-operator`` process authenticated as a ServiceAccount bound to
``manifests/rbac/operator-clusterrole.yaml``, so a missing permission fails
these tests. A Job's pod is simulated honestly (``Namespace.run_pod``): the
real worker runs with the Job's own environment against the real servers, and
the test then writes the Job status the Job controller would write.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubevod.operator import naming

from kubevod.backends import open_catalog, open_store
from kubevod.errors import NotFound
from tests.fixtures.media import make_video
from tests.integration.operator_support import (
    EXAMPLES,
    SA,
    Namespace,
    namespace,
    wait_for,
)
from tests.integration.operator_support.flow import install_crds

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(kube: Any) -> Any:
    """The CRDs and the operator's ClusterRole installed as the chart installs them."""
    install_crds(kube)
    return kube


@pytest.fixture(scope="module")
def source_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "clip.mp4"
    make_video(path, seconds=2, width=320, height=180, fps=24)
    return path


@pytest.fixture
def ns(cluster: Any, minio: Any, mongo_url: str) -> Iterator[Namespace]:
    with namespace(cluster, mongo_url, minio.store_url) as space:
        yield space


def upload(ns: Namespace, path: Path, key: str) -> None:
    open_store(ns.store_url).put_file(key, path, content_type="video/mp4")


def video_asset(name: str, key: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubevod.io/v1alpha1",
        "kind": "VideoAsset",
        "metadata": {"name": name},
        "spec": {"source": {"s3": {"bucket": "kubevod", "key": key}}, "title": name, **spec},
    }


def test_malformed_videoassets_are_refused_naming_the_field(cluster: Any) -> None:
    base = {"apiVersion": "kubevod.io/v1alpha1", "kind": "VideoAsset", "metadata": {"name": "bad"}}
    url = {"url": "https://example.org/a.mp4"}
    cases = [
        ({}, "spec.source: Required value"),
        ({"source": {}}, "spec.source must set exactly one of url, s3 or pvc"),
        ({"source": {**url, "s3": {"bucket": "abc", "key": "k"}}}, "exactly one of url, s3 or pvc"),
        ({"source": url, "segmentSeconds": -4}, "spec.segmentSeconds"),
        ({"source": url, "accelerator": "cuda"}, "spec.accelerator"),
        ({"source": url, "title": "x" * 1_000_000}, "spec.title"),
        ({"source": url, "gpu": True, "accelerator": "none"}, "spec.accelerator"),
        ({"source": {"url": "file:///etc/passwd"}}, "spec.source.url"),
        ({"source": url, "transcode": {"pods": 0}}, "spec.transcode.pods"),
        ({"source": url, "transcode": {"pods": 65}}, "spec.transcode.pods"),
        ({"source": url, "transcode": {"pods": "two"}}, "spec.transcode.pods"),
    ]
    for spec, words in cases:
        manifest = json.dumps({**base, "spec": spec})
        out = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=manifest, check=False)
        assert out.returncode != 0, f"accepted: {spec}"
        assert words in out.stderr, out.stderr[:500]
        assert len(out.stderr) < 2000, "the error should be readable, not an echo of the input"


def test_kubectl_explain_documents_the_source(cluster: Any) -> None:
    text = wait_for(
        "the CRD's OpenAPI to be published",
        lambda: (o := cluster.kubectl("explain", "videoasset.spec.source", check=False)).returncode
        == 0
        and o.stdout,
        30,
    )
    assert "exactly one of url, s3 or pvc" in text
    for field in ("url", "s3", "pvc"):
        assert f"\n  {field}\t" in text
    assert "PersistentVolumeClaim" in text
    columns = cluster.kubectl("get", "crd", "videoassets.kubevod.io", "-o", "json").stdout
    printed = [
        c["name"] for c in json.loads(columns)["spec"]["versions"][0]["additionalPrinterColumns"]
    ]
    assert {"Phase", "Progress", "Duration", "Age"} <= set(printed)


def test_examples_apply_to_jobs_with_the_expected_spec(ns: Namespace) -> None:
    ns.start_operator(KUBEVOD_QUEUE__MAX_CONCURRENT="10")
    ns.kubectl("apply", "-f", str(EXAMPLES))
    names = [
        "big-buck-bunny",
        "holiday-2024",
        "wedding-film",
        "concert-4k",
        "lecture-qsv",
        "phone-clip",
    ]
    jobs = wait_for("a Job per example", lambda: len(j := ns.jobs()) == len(names) and j, 60)
    by_asset = {j["metadata"]["annotations"]["kubevod.io/asset"].split("/")[1]: j for j in jobs}
    assert set(by_asset) == set(names)
    for name, job in by_asset.items():
        asset = ns.get("videoasset", name)
        assert asset is not None
        owner = job["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "VideoAsset",
            name,
            asset["metadata"]["uid"],
            True,
        )
        pod = job["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        env = {e["name"]: e for e in container["env"]}
        assert "secretKeyRef" in env["KUBEVOD_STORE_URL"]["valueFrom"]
        assert env["TRACEPARENT"]["value"].startswith("00-")
        assert asset["status"]["phase"] == "Transcoding"
        assert asset["status"]["jobName"] == job["metadata"]["name"]
    concert = by_asset["concert-4k"]["spec"]["template"]["spec"]
    assert concert["runtimeClassName"] == "nvidia"
    assert concert["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert concert["containers"][0]["resources"]["requests"] == {"cpu": "2", "memory": "2Gi"}
    assert {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,video,utility"} in concert[
        "containers"
    ][0]["env"]
    lecture = by_asset["lecture-qsv"]["spec"]["template"]["spec"]
    assert lecture["containers"][0]["resources"]["limits"]["gpu.intel.com/i915"] == "1"
    assert "runtimeClassName" not in lecture
    wedding = by_asset["wedding-film"]["spec"]["template"]["spec"]
    assert {
        "name": "source",
        "persistentVolumeClaim": {"claimName": "nas-videos", "readOnly": True},
    } in wedding["volumes"]
    plain = by_asset["big-buck-bunny"]["spec"]["template"]["spec"]
    assert (
        "nodeSelector" not in plain
        and "nvidia.com/gpu" not in plain["containers"][0]["resources"]["limits"]
    )
    listed = ns.kubectl("get", "kubevod").stdout
    assert "big-buck-bunny" in listed and "Transcoding" in listed


def test_video_becomes_ready_with_playback_urls_then_delete_removes_everything(
    ns: Namespace, source_clip: Path, tmp_path: Path
) -> None:
    upload(ns, source_clip, "sources/clip.mp4")
    ns.start_operator()
    ns.apply(video_asset("clip", "sources/clip.mp4", tags=["test"]))
    status = ns.wait_phase("clip", "Transcoding")
    ns.run_pod(status["jobName"], tmp_path / "pod")
    ready = ns.wait_phase("clip", "Ready")
    vid = ready["videoId"]
    assert ready["progress"] == 100 and ready["playable"] is True
    assert ready["playback"]["hls"] == f"http://tv.test/v/{vid}/master.m3u8"
    assert ready["playback"]["dash"] == f"http://tv.test/v/{vid}/manifest.mpd"
    assert 1.5 < ready["duration"] < 2.5
    assert any(r["kind"] == "video" and r["height"] == 180 for r in ready["renditions"])
    assert {c["type"]: c["status"] for c in ready["conditions"]}["Ready"] == "True"
    assert ready["observedGeneration"] == 1 and ready["attempts"] == 1
    reasons = {e["reason"] for e in ns.events("clip")}
    assert {"Transcoding", "Ready"} <= reasons
    printed = ns.kubectl("get", "va", "clip").stdout
    assert "Ready" in printed and "100" in printed
    metrics = ns.metrics()
    assert 'kubevod_operator_transcodes_total{outcome="ready"} 1.0' in metrics
    assert 'kubevod_operator_transcode_duration_seconds_count{outcome="ready"} 1.0' in metrics

    store, catalog = open_store(ns.store_url), open_catalog(ns.catalog_url)
    # Each attempt writes under its own g<generation>-<run>/ folder (kubevod.keys).
    assert any(store.list(f"videos/{vid}/g1-"))
    assert catalog.get(vid).title == "clip"
    ns.kubectl("delete", "videoasset", "clip", "--wait=true", "--timeout=60s")
    assert ns.jobs() == []
    assert not any(store.list(f"videos/{vid}/"))
    with pytest.raises(NotFound):
        catalog.get(vid)


@pytest.fixture
def ns_namespaced_rbac(cluster: Any, minio: Any, mongo_url: str) -> Iterator[Namespace]:
    with namespace(cluster, mongo_url, minio.store_url, namespaced_rbac=True) as space:
        yield space


def test_a_bad_source_fails_with_its_reason(ns_namespaced_rbac: Namespace, tmp_path: Path) -> None:
    """Also: the operator works with a RoleBinding only (the chart's namespaced mode)."""
    ns = ns_namespaced_rbac
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("these are my holiday notes, not a video\n" * 50)
    upload(ns, bogus, "sources/notes.mp4")
    ns.start_operator()
    ns.apply(video_asset("notes", "sources/notes.mp4"))
    status = ns.wait_phase("notes", "Transcoding")
    assert ns.run_pod(status["jobName"], tmp_path / "pod") == 2
    failed = ns.wait_phase("notes", "Failed")
    ready = next(c for c in failed["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "SourceError"
    assert failed["message"] and "exit code" not in failed["message"]  # the worker's words
    warnings = [e for e in ns.events("notes") if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["SourceError"]


def test_spec_change_supersedes_the_running_job(
    ns: Namespace, source_clip: Path, tmp_path: Path
) -> None:
    upload(ns, source_clip, "sources/clip2.mp4")
    ns.start_operator()
    ns.apply(video_asset("clip", "sources/clip2.mp4"))
    first = ns.wait_phase("clip", "Transcoding")["jobName"]
    ns.apply(video_asset("clip", "sources/clip2.mp4", title="Renamed"))  # metadata only
    time.sleep(1.5)
    assert [j["metadata"]["name"] for j in ns.jobs()] == [first]
    ns.apply(video_asset("clip", "sources/clip2.mp4", title="Renamed", segmentSeconds=2))
    second = wait_for(
        "a generation-3 Job replacing the first",
        lambda: (names := [j["metadata"]["name"] for j in ns.jobs()]) == [names[0]]
        and names[0].endswith("-g3")
        and names[0],
        30,
    )
    assert second != first
    ns.run_pod(second, tmp_path / "pod")
    ready = ns.wait_phase("clip", "Ready")
    assert ready["observedGeneration"] == 3 and ready["jobName"] == second
    assert "Superseded" in {e["reason"] for e in ns.events("clip")}
    vid = ready["videoId"]
    assert open_catalog(ns.catalog_url).get(vid).title == "Renamed"
    assert any(open_store(ns.store_url).list(f"videos/{vid}/g3-"))


def test_operator_killed_mid_way_converges_without_a_second_job(
    ns: Namespace, source_clip: Path, tmp_path: Path
) -> None:
    upload(ns, source_clip, "sources/k.mp4")
    active = ns.start_operator(KUBEVOD_PEERING__PRIORITY="100")
    standby = ns.start_operator(KUBEVOD_PEERING__PRIORITY="50")  # a second replica: must stay idle
    ns.apply(video_asset("kept", "sources/k.mp4"))
    job = ns.wait_phase("kept", "Transcoding")["jobName"]
    assert "Resuming" not in standby.log_tail(500)
    ns.kill(active)  # SIGKILL mid-way: no cleanup, its peering record just goes stale
    ns.apply(video_asset("late", "sources/k.mp4"))  # created while nobody acts
    ns.run_pod(job, tmp_path / "pod")  # the Job finishes while nobody acts
    # the standby takes over once the dead peer's record expires (lifetime 5 s)
    ns.wait_phase("kept", "Ready", timeout=60)
    late = ns.wait_phase("late", "Transcoding", timeout=30)
    ns.run_pod(late["jobName"], tmp_path / "pod2")
    ns.wait_phase("late", "Ready")
    # the killed replica restarts: the standby pauses in its favour, nothing is redone
    restarted = ns.start_operator(KUBEVOD_PEERING__PRIORITY="100")
    wait_for("the standby to pause", lambda: "Pausing operations" in standby.log_tail(500), 30)
    time.sleep(2)
    names = sorted(j["metadata"]["name"] for j in ns.jobs())
    assert len(names) == 2 and job in names
    assert restarted.alive()
    assert all(ns.status(n)["phase"] == "Ready" for n in ("kept", "late"))


def test_five_videos_with_concurrency_two(ns: Namespace, source_clip: Path, tmp_path: Path) -> None:
    upload(ns, source_clip, "sources/five.mp4")
    ns.start_operator(KUBEVOD_QUEUE__MAX_CONCURRENT="2")
    names = [f"v{i}" for i in range(5)]
    items = [video_asset(n, "sources/five.mp4") for n in names]
    ns.apply({"apiVersion": "v1", "kind": "List", "items": items})
    wait_for("two Jobs", lambda: len(ns.jobs()) == 2, 30)
    started: list[str] = []
    ran: set[str] = set()
    most = 0
    while len(ran) < 5:
        jobs = ns.jobs()
        running = [j for j in jobs if not (j.get("status") or {}).get("conditions")]
        most = max(most, len(running))
        assert len(running) <= 2, [j["metadata"]["name"] for j in running]
        todo = [j for j in running if j["metadata"]["name"] not in ran]
        if not todo:
            time.sleep(0.3)
            continue
        job = todo[0]
        started.append(job["metadata"]["annotations"]["kubevod.io/asset"].split("/")[1])
        ns.run_pod(job["metadata"]["name"], tmp_path / job["metadata"]["name"])
        ran.add(job["metadata"]["name"])
    assert most == 2
    for n in names:
        ns.wait_phase(n, "Ready", timeout=30)
    assert sorted(started[:2]) == ["v0", "v1"]  # creation order (same priority)


def test_delete_completes_with_the_store_down(
    ns: Namespace, minio: Any, source_clip: Path, tmp_path: Path
) -> None:
    upload(ns, source_clip, "sources/down.mp4")
    ns.start_operator(KUBEVOD_CLEANUP__MAX_RETRIES="2", KUBEVOD_CLEANUP__RETRY_SECONDS="0.5")
    ns.apply(video_asset("doomed", "sources/down.mp4"))
    job = ns.wait_phase("doomed", "Transcoding")["jobName"]
    minio.stop()
    try:
        started = time.monotonic()
        ns.kubectl("delete", "videoasset", "doomed", "--wait=true", "--timeout=60s")
        took = time.monotonic() - started
    finally:
        minio.start()
    assert ns.get("videoasset", "doomed") is None
    assert ns.get("job", job) is None
    abandoned = [e for e in ns.events("doomed") if e["reason"] == "CleanupAbandoned"]
    assert abandoned and "videos/" in abandoned[0]["message"]
    assert took < 45


def test_operator_identity_has_exactly_the_rights_it_needs(ns: Namespace) -> None:
    user = f"system:serviceaccount:{ns.name}:{SA}"

    def can(*args: str) -> bool:
        out = ns.kube.kubectl("auth", "can-i", *args, "-n", ns.name, as_user=user, check=False)
        return out.stdout.strip() == "yes"

    assert can("create", "jobs.batch") and can("delete", "jobs.batch")
    assert can("patch", "videoassets.kubevod.io/status")
    assert can("create", "events")
    assert not can("get", "secrets")
    assert not can("create", "pods")
    assert not can("create", "pods/exec")
    assert not can("delete", "videoassets.kubevod.io")
    assert not can("update", "jobs.batch")
    assert naming.FINALIZER == "kubevod.io/cleanup"


def test_catalog_down_at_creation_is_retried_and_said(
    ns: Namespace, mongo: Any, source_clip: Path
) -> None:
    upload(ns, source_clip, "sources/wait.mp4")
    ns.start_operator()
    mongo.stop()
    try:
        ns.apply(video_asset("patient", "sources/wait.mp4"))
        said = wait_for(
            "status to say why it waits",
            lambda: "retrying" in (m := ns.status("patient").get("message", "")) and m,
            30,
        )
        assert "catalog" in said.lower() or "mongo" in said.lower(), said
        assert ns.jobs() == []  # no Job before its catalog entry exists
    finally:
        mongo.start()
    ns.wait_phase("patient", "Transcoding", timeout=60)
    assert len(ns.jobs()) == 1
