"""Issue 13 on the real cluster: write access, scoped credentials, accounts, tenant limits,
the fetch guard's cluster ranges.

All against the session's release (no extra helm install): the chart's nginx
in front of the API, the chart's MinIO with the users its bucket container
made, the API server's RBAC, the operator's caps and the real scheduler.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.cluster import release
from tests.e2e import support
from tests.e2e.conftest import Release
from tests.e2e.support import NS, video_asset, wait_phase
from tests.fixtures.util import s3_access_denied

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]


def _call(
    kubevod: Release, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(kubevod.cache_url + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _title(kubevod: Release, vid: str) -> str:
    code, _, body = kubevod.get(f"/api/videos/{vid}")
    assert code == 200, body
    return str(json.loads(body)["title"])


def test_writes_through_the_cache_need_the_api_token(
    kubevod: Release, ready_video: dict[str, Any]
) -> None:
    cluster = kubevod.cluster
    vid = support.video_id(ready_video["status"])
    token = support.secret_value(cluster, release.component("api-token"), "token")
    before = _title(kubevod, vid)
    patch = {"title": "Defaced"}
    assert _call(kubevod, "PATCH", f"/api/videos/{vid}", None, patch)[0] == 401
    assert _call(kubevod, "PATCH", f"/api/videos/{vid}", token[::-1], patch)[0] == 403
    assert _call(kubevod, "DELETE", f"/api/videos/{vid}")[0] == 401
    assert _call(kubevod, "DELETE", f"/api/videos/{vid}", "guess")[0] == 403
    # Nothing changed: still listed, same title, media still served.
    assert _title(kubevod, vid) == before
    assert kubevod.get(f"/v/{vid}/master.m3u8")[0] == 200
    # With the token the write goes through (and is undone).
    code, body = _call(kubevod, "PATCH", f"/api/videos/{vid}", token, {"title": "Renamed"})
    assert code == 200, body
    assert _title(kubevod, vid) == "Renamed"
    assert _call(kubevod, "PATCH", f"/api/videos/{vid}", token, {"title": before})[0] == 200


def test_the_scoped_minio_users_of_the_release_can_do_only_their_part(
    kubevod: Release, ready_video: dict[str, Any]
) -> None:
    cluster = kubevod.cluster
    root = support.minio_client(cluster, "root-user", "root-password")
    worker = support.minio_client(cluster, "worker-user", "worker-password")
    api = support.minio_client(cluster, "api-user", "api-password")
    bucket = "kubevod"
    root.put_object(bucket, "private/notes.txt", io.BytesIO(b"secret"), 6)
    vid = support.video_id(ready_video["status"])
    segment = next(
        o.object_name
        for o in root.list_objects(bucket, prefix=f"videos/{vid}/", recursive=True)
        if o.object_name.endswith(".m4s")
    )
    # The worker user: videos/ and logs/ only; never the bucket itself.
    worker.put_object(bucket, "logs/probe/x.log", io.BytesIO(b"log"), 3)
    assert worker.get_object(bucket, "logs/probe/x.log").read() == b"log"
    worker.remove_object(bucket, "logs/probe/x.log")
    assert worker.get_object(bucket, segment).read()
    assert s3_access_denied(lambda: worker.get_object(bucket, "private/notes.txt"))
    assert s3_access_denied(lambda: worker.put_object(bucket, "private/x", io.BytesIO(b"x"), 1))
    assert s3_access_denied(lambda: worker.remove_bucket(bucket))
    assert s3_access_denied(lambda: worker.set_bucket_policy(bucket, "{}"))
    # The API user: reads videos/, writes nothing.
    assert api.get_object(bucket, segment).read()
    assert s3_access_denied(
        lambda: api.put_object(bucket, f"videos/{vid}/evil", io.BytesIO(b"x"), 1)
    )
    assert s3_access_denied(lambda: api.remove_object(bucket, segment))
    assert s3_access_denied(lambda: api.get_object(bucket, "private/notes.txt"))
    assert root.stat_object(bucket, segment).size > 0  # nothing was removed
    # The URLs the operator, Jobs and API get name those users, never root.
    urls = {
        k: support.secret_value(cluster, release.component("connections"), k)
        for k in ("store-url", "api-store-url")
    }
    assert urls["store-url"].startswith("s3://kubevod-worker:")
    assert urls["api-store-url"].startswith("s3://kubevod-api:")


def test_an_s3_source_is_read_from_an_allowed_bucket_with_the_worker_user(
    kubevod: Release,
) -> None:
    cluster = kubevod.cluster
    root = support.minio_client(cluster, "root-user", "root-password")
    if not root.bucket_exists(support.SOURCE_BUCKET):
        root.make_bucket(support.SOURCE_BUCKET)
    data = support.clip_bytes(cluster)
    root.put_object(support.SOURCE_BUCKET, "s3-clip.mp4", io.BytesIO(data), len(data))
    source = {"s3": {"bucket": support.SOURCE_BUCKET, "key": "s3-clip.mp4"}}
    cluster.apply([video_asset("from-s3", source)], namespace=NS)
    st = wait_phase(cluster, "from-s3", ("Ready",), timeout=240)
    assert st["duration"] == pytest.approx(16, abs=0.5)


#: What an account with no rights still may do: ask what it may do, and discovery.
_SELF_REVIEWS = {
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
    "selfsubjectreviews.authentication.k8s.io",
}


def _rules(cluster: Any, sa: str) -> set[str]:
    """``kubectl auth can-i --list`` of a ServiceAccount: 'resource verbs' per granted rule."""
    out = cluster.kubectl(
        "auth", "can-i", "--list", "-n", NS, f"--as=system:serviceaccount:{NS}:{sa}"
    ).stdout
    granted = set()
    for line in out.splitlines()[1:]:
        parts = line.split()
        if not parts or parts[0].startswith("["):
            continue  # non-resource URLs (discovery, /healthz...): the Resources column is empty
        if parts[0] in _SELF_REVIEWS:
            continue
        granted.add(f"{parts[0]} {parts[-1]}")
    return granted


def test_every_service_account_holds_only_what_its_part_needs(kubevod: Release) -> None:
    cluster = kubevod.cluster
    operator = release.component("operator")
    nobody = {release.component(c) for c in ("worker", "api", "cache", "minio", "mongodb")}
    # Every pod of the release runs as one of these accounts, none as `default`.
    pods = cluster.get_json("pods", "-n", NS, "-l", f"app.kubernetes.io/instance={release.RELEASE}")
    accounts = {p["spec"].get("serviceAccountName", "default") for p in pods["items"]}
    assert accounts and accounts <= nobody | {operator}, accounts
    for sa in sorted(nobody):
        assert _rules(cluster, sa) == set(), sa
    for check in (("get", "secrets"), ("list", "pods"), ("create", "jobs.batch"),
                  ("list", "videoassets.kubevod.io"), ("create", "pods")):  # fmt: skip
        for sa in nobody:
            r = cluster.kubectl("auth", "can-i", *check, "-n", NS,
                                f"--as=system:serviceaccount:{NS}:{sa}", check=False)  # fmt: skip
            assert r.stdout.strip() == "no", (sa, check)

    # The operator: its Jobs, its VideoAssets, reading pods' scheduling; no Secrets, no exec.
    def can(*args: str) -> bool:
        r = cluster.kubectl("auth", "can-i", *args, f"--as=system:serviceaccount:{NS}:{operator}",
                            check=False)  # fmt: skip
        return r.stdout.strip() == "yes"

    assert can("create", "jobs.batch", "-n", NS) and can("list", "pods", "-n", NS)
    assert can("patch", "videoassets.kubevod.io/status", "-n", NS)
    for refused in (("get", "secrets", "-n", NS), ("create", "pods", "-n", NS),
                    ("create", "pods", "--subresource=exec", "-n", NS),
                    ("get", "pods", "--subresource=log", "-n", NS), ("*", "*")):  # fmt: skip
        assert not can(*refused), refused


def _ready(st: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in st["conditions"] if c["type"] == "Ready")


def test_a_spec_over_the_caps_ends_failed_naming_the_cap(kubevod: Release) -> None:
    cluster = kubevod.cluster
    spec = {"priority": 900, "resources": {"limits": {"memory": "64Gi"}}}
    cluster.apply([video_asset("greedy", {"url": support.media_url()}, **spec)], namespace=NS)
    st = wait_phase(cluster, "greedy", ("Failed",), timeout=60)
    assert _ready(st)["reason"] == "OverLimit"
    assert f"spec.priority: 900 is above the cap of 100 in namespace '{NS}'" in st["message"]
    assert "spec.resources.limits.memory: 64Gi is above the cap of 8Gi" in st["message"]
    assert not st.get("jobName")
    cluster.kubectl("delete", "videoasset", "-n", NS, "greedy", "--wait=false")


def test_a_job_kubernetes_rejects_ends_failed_with_its_message(kubevod: Release) -> None:
    cluster = kubevod.cluster
    # Within the caps, above the Jobs' default memory limit (4Gi): the API server says 422.
    spec = {"resources": {"requests": {"memory": "6Gi"}}}
    cluster.apply([video_asset("refused", {"url": support.media_url()}, **spec)], namespace=NS)
    st = wait_phase(cluster, "refused", ("Failed",), timeout=60)
    assert _ready(st)["reason"] == "Rejected"
    assert "(422)" in st["message"], st["message"]
    assert "must be less than or equal to memory limit" in st["message"], st["message"]
    jobs = cluster.get_json("jobs", "-n", NS, "-l", "app.kubernetes.io/name=kubevod-worker")
    assert not [j for j in jobs["items"] if "refused" in j["metadata"]["name"]]
    cluster.kubectl("delete", "videoasset", "-n", NS, "refused", "--wait=false")


def test_an_unschedulable_job_leaves_the_queue_with_the_schedulers_reason(
    kubevod: Release,
) -> None:
    """No Intel GPU node exists: the scheduler never places the pod (30 s in these values)."""
    cluster = kubevod.cluster
    spec = {"gpu": True, "accelerator": "vaapi"}
    cluster.apply([video_asset("no-node", {"url": support.media_url()}, **spec)], namespace=NS)
    st = wait_phase(cluster, "no-node", ("Failed",), timeout=120)
    assert _ready(st)["reason"] == "Unschedulable"
    assert "could not be scheduled for 30 s" in st["message"], st["message"]
    assert "0/1 nodes are available" in st["message"], st["message"]
    job = st["jobName"]
    r = cluster.kubectl("get", "job", "-n", NS, job, check=False)
    assert r.returncode != 0, "the Job is deleted, its queue slot free"
    cluster.kubectl("delete", "videoasset", "-n", NS, "no-node", "--wait=false")


def test_a_source_inside_the_clusters_service_range_is_refused(kubevod: Release) -> None:
    cluster = kubevod.cluster
    url = support.in_cluster_media_url()
    cluster.apply([video_asset("inside", {"url": url})], namespace=NS)
    st = wait_phase(cluster, "inside", ("Failed",), timeout=180)
    assert "refusing to fetch" in st["message"], st["message"]
    vid = st["videoId"]
    assert kubevod.get(f"/v/{vid}/master.m3u8")[0] != 200  # nothing published
    cluster.kubectl("delete", "videoasset", "-n", NS, "inside", "--wait=false")
