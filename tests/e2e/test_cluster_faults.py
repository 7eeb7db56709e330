"""Faults on the real cluster: nothing lost, nothing duplicated, status says what happened."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest

from tests.cluster import release
from tests.e2e import support
from tests.e2e.conftest import Release
from tests.e2e.support import NS, video_asset, wait_for, wait_phase

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]


def _pods(kubevod: Release, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubevod.cluster.get_json("pods", "-n", NS, "-l", selector)[
        "items"
    ]
    return items


def _component(name: str) -> str:
    return f"app.kubernetes.io/component={name},app.kubernetes.io/instance={release.RELEASE}"


def _segments(kubevod: Release, vid: str) -> dict[str, list[str]]:
    """Each media playlist's segment URIs (the catalog's view of the video)."""
    _, _, master = kubevod.get(f"/v/{vid}/master.m3u8")
    out = {}
    for line in master.decode().splitlines():
        uris = re.findall(r'URI="([^"]+\.m3u8)"', line) if line.startswith("#") else [line]
        for uri in uris:
            if uri.endswith(".m3u8"):
                _, _, playlist = kubevod.get(f"/v/{vid}/{uri}")
                out[uri] = [s for s in playlist.decode().splitlines() if s.endswith(".m4s")]
    return out


def test_a_videoasset_deleted_mid_encode_leaves_no_object_and_no_row(kubevod: Release) -> None:
    """The worker is still uploading when the operator purges; its next write is refused
    and it deletes what it uploaded, and the operator purges again once its pod is gone."""
    cluster = kubevod.cluster
    cluster.apply([video_asset("cut-short", {"url": support.media_url("long.mp4")})], namespace=NS)
    st = wait_phase(cluster, "cut-short", ("Transcoding",), timeout=120)
    job, vid = st["jobName"], st["videoId"]
    wait_for(
        "a worker that has uploaded segments",
        lambda: (support.status(cluster, "cut-short").get("progress") or 0) > 5,
        120,
    )
    assert support.status(cluster, "cut-short")["phase"] == "Transcoding"
    cluster.kubectl("delete", "videoasset", "-n", NS, "cut-short", "--timeout=180s", timeout=200)
    wait_for("the Job's pods gone", lambda: not _pods(kubevod, f"job-name={job}"), 90)
    root = support.minio_client(cluster, "root-user", "root-password")
    left = [
        o.object_name
        for prefix in (f"videos/{vid}/", f"logs/{vid}/")
        for o in root.list_objects("kubevod", prefix=prefix, recursive=True)
    ]
    assert left == []
    assert kubevod.get(f"/api/videos/{vid}")[0] == 404


def test_a_worker_pod_deleted_mid_encode_is_replaced_and_every_segment_is_there_once(
    kubevod: Release,
) -> None:
    cluster = kubevod.cluster
    cluster.apply(
        [video_asset("interrupted", {"url": support.media_url("long.mp4")})], namespace=NS
    )
    st = wait_phase(cluster, "interrupted", ("Transcoding",), timeout=120)
    job = st["jobName"]
    first = wait_for(
        "a running worker pod that has uploaded segments",
        lambda: (p := _pods(kubevod, f"job-name={job}"))
        and p[0]["status"].get("phase") == "Running"
        and (support.status(cluster, "interrupted").get("progress") or 0) > 5
        and p[0],
        120,
    )
    cluster.kubectl("delete", "pod", "-n", NS, first["metadata"]["name"], "--wait=false")
    st = wait_phase(cluster, "interrupted", ("Ready",), timeout=300)
    # The deleted pod is gone; the Job's next pod finished the video.
    pods = _pods(kubevod, f"job-name={job}")
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"], pods
    assert pods[0]["metadata"]["name"] != first["metadata"]["name"]
    assert cluster.get_json("job", "-n", NS, job)["status"].get("succeeded") == 1
    vid = support.video_id(st)
    playlists = _segments(kubevod, vid)
    assert playlists
    counts = {len(v) for v in playlists.values()}
    assert len(counts) == 1, {k: len(v) for k, v in playlists.items()}
    for uri, segs in playlists.items():
        assert len(segs) == len(set(segs)), f"{uri} lists a segment twice"
    # Every listed segment is in the store once (and served).
    for segs in playlists.values():
        for seg in segs[:3] + segs[-2:]:
            code, _, body = kubevod.get(seg if seg.startswith("/") else f"/v/{vid}/{seg}")
            assert code == 200 and body


def test_an_operator_killed_mid_reconcile_comes_back_and_makes_no_second_job(
    kubevod: Release,
) -> None:
    cluster = kubevod.cluster
    operator = _pods(kubevod, _component("operator"))[0]["metadata"]["name"]
    cluster.apply([video_asset("during-restart", {"url": support.media_url()})], namespace=NS)
    cluster.kubectl("delete", "pod", "-n", NS, operator, "--grace-period=0", "--force")
    cluster.kubectl(
        "-n", NS, "rollout", "status", f"deploy/{release.component('operator')}", "--timeout=120s"
    )
    st = wait_phase(cluster, "during-restart", ("Ready",), timeout=300)
    uid = cluster.get_json("videoasset", "-n", NS, "during-restart")["metadata"]["uid"]
    jobs = cluster.get_json("jobs", "-n", NS, "-l", f"kubevod.io/asset-uid={uid}")["items"]
    assert [j["metadata"]["name"] for j in jobs] == [st["jobName"]]


def test_cached_segments_keep_playing_while_minio_restarts(
    kubevod: Release, ready_video: dict[str, Any]
) -> None:
    cluster = kubevod.cluster
    vid = support.video_id(ready_video["status"])
    segs = next(iter(_segments(kubevod, vid).values()))
    cached, uncached = segs[0], segs[-1]
    url = lambda s: s if s.startswith("/") else f"/v/{vid}/{s}"  # noqa: E731
    assert kubevod.get(url(cached))[0] == 200
    cluster.kubectl("scale", "statefulset", "-n", NS, release.component("minio"), "--replicas=0")
    wait_for("MinIO gone", lambda: not _pods(kubevod, _component("minio")), 60)
    try:
        code, _, body = kubevod.get(url(cached))
        assert code == 200 and body, "a cached segment is served while MinIO is down"
        started = time.monotonic()
        code, _, _ = kubevod.get(url(uncached), timeout=30)
        assert code >= 500 and time.monotonic() - started < 15, (code, "fails fast")
    finally:
        cluster.kubectl(
            "scale", "statefulset", "-n", NS, release.component("minio"), "--replicas=1"
        )
    cluster.kubectl(
        "-n", NS, "rollout", "status", f"statefulset/{release.component('minio')}", "--timeout=120s"
    )
    wait_for(
        "the uncached segment once MinIO is back", lambda: kubevod.get(url(uncached))[0] == 200, 60
    )


def test_the_api_turns_unready_while_mongodb_restarts_and_recovers(kubevod: Release) -> None:
    cluster = kubevod.cluster
    codes: list[tuple[float, int, int]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            # Stamped when sent: an answer to a request sent before the recovery was
            # seen (it may take seconds) belongs to the outage, not to what follows.
            sent = time.monotonic()
            ready = kubevod.get("/readyz", timeout=10)[0]
            listing = kubevod.get("/api/videos", timeout=10)[0]
            codes.append((sent, ready, listing))
            time.sleep(0.25)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        time.sleep(1)
        cluster.kubectl("delete", "pod", "-n", NS, f"{release.component('mongodb')}-0")
        wait_for("the API unready", lambda: any(r != 200 for _, r, _ in codes), 60)
        cluster.kubectl(
            "-n",
            NS,
            "rollout",
            "status",
            f"statefulset/{release.component('mongodb')}",
            "--timeout=180s",
        )
        # Recovered: every API pod is Ready again (not merely the one /readyz reached),
        # and the last few polls, spread over the replicas, all answered 200.
        wait_for(
            "every API pod ready again",
            lambda: len(codes) >= 4
            and all(r == 200 and c == 200 for _, r, c in codes[-4:])
            and _api_replicas(kubevod)
            == kubevod.cluster.get_json("deploy", "-n", NS, release.component("api"))["spec"][
                "replicas"
            ],
            120,
        )
        recovered = time.monotonic()
        time.sleep(5)
    finally:
        stop.set()
        poller.join(15)
    after = [(r, c) for t, r, c in codes if t > recovered]
    assert after and all(r == 200 and c == 200 for r, c in after), after
    before = [c for t, r, c in codes if t < recovered and r == 200 and c >= 500]
    assert len(before) <= 3, "5xx only around the moment readiness flipped"


def _api_replicas(kubevod: Release) -> int:
    deploy = kubevod.cluster.get_json("deploy", "-n", NS, release.component("api"))
    return int(deploy["status"].get("readyReplicas") or 0)


def test_the_hpa_scales_the_api_under_load_and_back_without_a_failed_request(
    kubevod: Release,
) -> None:
    """metrics-server + the HPA, real load through the cache Service, zero failures."""
    from tests.fixtures.util import require

    wrk = require("wrk")
    kubevod.cluster.wait_metrics()
    assert _api_replicas(kubevod) == 1, "the release starts with one API replica"
    failures: list[str] = []
    stop = threading.Event()

    def steady() -> None:  # a viewer's browser polling the library the whole time
        while not stop.is_set():
            code = kubevod.get("/api/videos", timeout=10)[0]
            if code != 200:
                failures.append(f"steady GET /api/videos -> {code}")
            time.sleep(0.25)  # light: the HPA must be able to scale back in under it

    viewer = threading.Thread(target=steady, daemon=True)
    viewer.start()
    import subprocess

    try:
        load = subprocess.Popen(
            [wrk, "-t2", "-c24", "-d150s", f"{kubevod.cache_url}/api/videos"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        peak = wait_for(
            "the HPA scaling the API out",
            lambda: (n := _api_replicas(kubevod)) >= 3 and n,
            150,
            every=2,
        )
        load.terminate()
        out, _ = load.communicate(timeout=30)
        assert "Non-2xx" not in out and "Socket errors" not in out, out
        wait_for(
            "the HPA scaling back in",
            lambda: _api_replicas(kubevod) == 1,
            300,
            every=3,
        )
    finally:
        stop.set()
        viewer.join(15)
        if load.poll() is None:
            load.kill()
    assert peak >= 3
    assert not failures, failures[:10]
