"""The user's path on a real one-node Kubernetes: ``helm install``, ``kubectl apply``,
a transcode Job run by the kubelet, playback through the nginx cache, deletion.

Everything runs for real: containerd and runc start the pods of the images
built from the repository's Dockerfile (and the local stand-ins for the
third-party images, tests/cluster/images), the Job controller runs the worker
pod, ffmpeg encodes inside it. The cluster has no route off this machine, so
every source is served from inside it. The GPU is the one thing mocked: the
node advertises a fake ``nvidia.com/gpu`` and the ``nvidia`` RuntimeClass is
plain runc (there is no GPU here).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

from tests.cluster import release
from tests.e2e import support
from tests.e2e.conftest import VALUES, Release
from tests.e2e.support import NS, video_asset, wait_for, wait_phase

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]


def test_every_workload_rolls_out_and_helm_test_passes(kubevod: Release) -> None:
    cluster = kubevod.cluster
    for kind in ("deployments", "statefulsets"):
        for item in cluster.get_json(kind, "-n", NS)["items"]:
            want = item["spec"].get("replicas", 1)
            assert item["status"].get("readyReplicas", 0) == want, item["metadata"]["name"]
    # The test pod is deleted once it succeeds (its hook policy), so only its phase is left.
    out = release.helm(cluster, "test", release.RELEASE, "-n", NS, timeout=300)
    assert "TEST SUITE:     kubevod-test" in out.stdout
    assert "Phase:          Succeeded" in out.stdout
    # What NOTES.txt tells a person to do first: reach the UI through the cache Service.
    code, _, body = kubevod.get("/")
    assert code == 200 and b"<html" in body.lower()


def test_applied_video_is_transcoded_by_a_job_pod_and_ends_ready(
    kubevod: Release, ready_video: dict[str, Any]
) -> None:
    cluster = kubevod.cluster
    st, seen = ready_video["status"], ready_video["seen"]
    phases = [p for p, _ in seen]
    assert "Transcoding" in phases and phases[-1] == "Ready", seen
    # Progress rose on the way (kubectl shows it moving), and ends at 100.
    progress = [p for phase, p in seen if phase == "Transcoding"]
    assert progress == sorted(progress), seen
    assert st["progress"] == 100 and st["playable"] is True
    assert {r.get("height") for r in st["renditions"]} >= {720, 480, 360, 240}
    assert st["playback"]["hls"].endswith("/master.m3u8")
    # The operator's Job ran as a real pod of the worker image, which ffmpeg ran in.
    job = cluster.get_json("job", "-n", NS, st["jobName"])
    assert job["status"].get("succeeded") == 1
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == support.project_image("worker")
    pods = cluster.get_json("pods", "-n", NS, "-l", f"job-name={st['jobName']}")["items"]
    assert pods and pods[0]["status"]["phase"] == "Succeeded"
    log = cluster.kubectl("logs", "-n", NS, pods[0]["metadata"]["name"]).stdout
    assert f"ready {support.video_id(st)}: 5 renditions" in log, log[-2000:]
    # The printer columns and the Events a person sees.
    table = cluster.kubectl("get", "videoassets", "-n", NS).stdout
    header = table.splitlines()[0].split()
    assert header[:5] == ["NAME", "PHASE", "PROGRESS", "DURATION", "AGE"], table
    assert "Ready" in table and "100" in table
    described = cluster.kubectl("describe", "videoasset", "-n", NS, "clip").stdout
    assert "Events:" in described and "<none>" not in described.split("Events:")[1][:40]


def test_segments_are_served_by_the_cache_miss_then_hit(
    kubevod: Release, ready_video: dict[str, Any]
) -> None:
    vid = support.video_id(ready_video["status"])
    code, headers, master = kubevod.get(f"/v/{vid}/master.m3u8")
    assert code == 200 and headers["content-type"].startswith("application/vnd.apple.mpegurl")
    media = next(line for line in master.decode().splitlines() if line and not line.startswith("#"))
    code, _, playlist = kubevod.get(f"/v/{vid}/{media}")
    assert code == 200 and b"#EXT-X-ENDLIST" in playlist
    base = f"/v/{vid}/{media}".rsplit("/", 1)[0]
    segment = next(
        line for line in playlist.decode().splitlines() if line.endswith(".m4s") and "#" not in line
    )
    url = segment if segment.startswith("/") else f"{base}/{segment}"
    first = kubevod.get(url)
    second = kubevod.get(url)
    assert first[0] == second[0] == 200
    assert first[1]["x-cache-status"] == "MISS" and second[1]["x-cache-status"] == "HIT"
    assert first[2] == second[2] and len(first[2]) > 1000
    assert "immutable" in second[1]["cache-control"]


@pytest.mark.browser
def test_chromium_plays_the_video_through_the_cache(
    page: Any, kubevod: Release, ready_video: dict[str, Any]
) -> None:
    from tests.browser.ui_helpers import open_player, wait_advance

    open_player(page, kubevod.cache_url, support.video_id(ready_video["status"]), 30_000)
    wait_advance(page, 1.5)


def test_gpu_video_is_scheduled_on_the_gpu_node_and_falls_back_to_software(
    kubevod: Release,
) -> None:
    """GPU mocked: the node's nvidia.com/gpu is a patched capacity, the runtime is runc."""
    cluster = kubevod.cluster
    cluster.apply(
        [video_asset("gpu-clip", {"url": support.media_url()}, gpu=True, accelerator="nvidia")],
        namespace=NS,
    )
    st = wait_phase(cluster, "gpu-clip", ("Ready",), timeout=240)
    job = cluster.get_json("job", "-n", NS, st["jobName"])
    spec = job["spec"]["template"]["spec"]
    assert spec.get("runtimeClassName") == "nvidia"
    limits = spec["containers"][0]["resources"]["limits"]
    assert limits.get("nvidia.com/gpu") in ("1", 1)
    pods = cluster.get_json("pods", "-n", NS, "-l", f"job-name={st['jobName']}")["items"]
    assert pods[0]["spec"]["nodeName"]
    conditions = {c["type"]: c for c in st.get("conditions", [])}
    accel = conditions["HardwareAccelerated"]
    assert accel["status"] == "False" and accel["reason"] == "SoftwareFallback", accel


def test_the_pvc_example_is_transcoded_from_a_hostpath_volume(kubevod: Release) -> None:
    """``kubectl apply -f manifests/examples/pvc-source.yaml`` as it is, on a NAS-like PVC."""
    cluster = kubevod.cluster
    example = yaml.safe_load((release.ROOT / "manifests/examples/pvc-source.yaml").read_text())
    claim, path = (
        example["spec"]["source"]["pvc"]["claimName"],
        example["spec"]["source"]["pvc"]["path"],
    )
    nas = cluster.layout.volumes / "nas"
    (nas / path).parent.mkdir(parents=True, exist_ok=True)
    (nas / path).write_bytes(support.clip_bytes(kubevod.cluster))
    for p in [nas, *(nas / path).parents, nas / path]:
        if p.is_relative_to(nas):
            p.chmod(0o755 if p.is_dir() else 0o644)
    cluster.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": "nas-videos"},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadOnlyMany"],
                    "storageClassName": "nas",
                    "claimRef": {"namespace": NS, "name": claim},
                    "hostPath": {"path": str(nas), "type": "Directory"},
                },
            },
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "namespace": NS},
                "spec": {
                    "accessModes": ["ReadOnlyMany"],
                    "storageClassName": "nas",
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        ]
    )
    cluster.kubectl(
        "apply", "-n", NS, "-f", str(release.ROOT / "manifests/examples/pvc-source.yaml")
    )
    name = example["metadata"]["name"]
    st = wait_phase(cluster, name, ("Ready",), timeout=240)
    assert st["duration"] == pytest.approx(16, abs=0.5)


def test_delete_removes_the_job_its_pods_the_objects_and_the_catalog_entry(
    kubevod: Release,
) -> None:
    cluster = kubevod.cluster
    cluster.apply([video_asset("short-lived", {"url": support.media_url()})], namespace=NS)
    st = wait_phase(cluster, "short-lived", ("Ready",), timeout=240)
    vid, job = support.video_id(st), st["jobName"]
    assert kubevod.get(f"/api/videos/{vid}")[0] == 200
    cluster.kubectl("delete", "videoasset", "-n", NS, "short-lived", "--timeout=120s")
    wait_for(
        "the Job and its pods gone",
        lambda: not cluster.get_json("pods", "-n", NS, "-l", f"job-name={job}")["items"]
        and cluster.kubectl("get", "job", "-n", NS, job, check=False).returncode != 0,
        60,
    )
    assert kubevod.get(f"/api/videos/{vid}")[0] == 404
    # No object is left in the store: the master playlist and media are gone.
    code, _, _ = kubevod.get(f"/v/{vid}/master.m3u8")
    assert code == 404


def test_an_on_demand_video_is_ready_at_once_and_a_warm_worker_encodes_what_a_viewer_seeks(
    kubevod: Release,
) -> None:
    """spec.transcode.policy onDemand: the Job registers the video and its first chunk; a
    request for a later segment (through the cache) is answered once a chunk worker, a pod
    of the Deployment the operator keeps, has encoded it; status follows the chunks."""
    cluster = kubevod.cluster
    workers = cluster.get_json("deployment", "-n", NS, release.component("chunks"))
    owner = workers["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Deployment", release.component("operator"))
    cluster.kubectl(
        "-n", NS, "rollout", "status", f"deploy/{release.component('chunks')}",
        "--timeout=180s", timeout=200,
    )  # fmt: skip
    asset = video_asset(
        "on-demand", {"url": support.media_url("long.mp4")}, transcode={"policy": "onDemand"}
    )
    cluster.apply([asset], namespace=NS)
    st = wait_phase(cluster, "on-demand", ("Ready",), timeout=240)
    total = st["chunks"]["total"]
    assert total >= 4 and st["chunks"]["done"] < total, st["chunks"]
    assert st["message"].startswith("ready on demand:"), st["message"]
    job = cluster.get_json("job", "-n", NS, st["jobName"])
    assert job["spec"].get("completions", 1) == 1  # one pod registers it
    vid = support.video_id(st)
    code, _, master = kubevod.get(f"/v/{vid}/master.m3u8")
    assert code == 200
    media = next(line for line in master.decode().splitlines() if line and line[0] != "#")
    code, _, playlist = kubevod.get(f"/v/{vid}/{media}")
    # The whole timeline is listed before it is encoded.
    assert code == 200 and b"#EXT-X-ENDLIST" in playlist
    segments = [line for line in playlist.decode().splitlines() if line.endswith(".m4s")]
    base = f"/v/{vid}/{media}".rsplit("/", 1)[0]
    last = segments[-1] if segments[-1].startswith("/") else f"{base}/{segments[-1]}"
    asked = time.monotonic()

    def served() -> bytes | None:
        # The API waits for the segment up to its limit, then answers 503: a player asks again.
        code, _, body = kubevod.get(last, timeout=40)
        return body if code == 200 else None

    assert len(wait_for("the sought segment", served, 180, every=1)) > 1000
    print(f"sought segment served {time.monotonic() - asked:.1f} s after the first request")
    chunk_pods = cluster.get_json("pods", "-n", NS, "-l", "kubevod.io/role=chunks")["items"]
    logs = "".join(
        cluster.kubectl("logs", "-n", NS, p["metadata"]["name"]).stdout for p in chunk_pods
    )
    # The chunk worker, not a new pod, fetched the source and encoded the chunk.
    assert "long.mp4" in logs, logs[-2000:]

    def followed() -> dict[str, Any] | None:
        now = support.status(cluster, "on-demand")
        return now if now["chunks"]["done"] > st["chunks"]["done"] else None

    later = wait_for("status.chunks to follow", followed, 60)
    assert later["phase"] == "Ready" and later["progress"] > st["progress"]
    cluster.kubectl("delete", "videoasset", "-n", NS, "on-demand", "--timeout=120s")


def test_helm_upgrade_keeps_videos_and_credentials_and_turns_tracing_on(
    kubevod: Release, ready_video: dict[str, Any]
) -> None:
    """The upgrade also turns the chart's collector on: it runs and receives spans."""
    cluster = kubevod.cluster
    secrets = {
        name: cluster.get_json("secret", "-n", NS, release.component(name))["data"]
        for name in ("minio", "mongodb")
    }
    release.install(
        cluster,
        {**VALUES, "cache.manifestTTL": "2s", "telemetry.collector.enabled": True},
        upgrade=True,
    )
    for name, data in secrets.items():
        assert cluster.get_json("secret", "-n", NS, release.component(name))["data"] == data
    vid = support.video_id(ready_video["status"])
    _, _, body = wait_for(
        "the video listed after the upgrade",
        lambda: (r := kubevod.get(f"/api/videos/{vid}"))[0] == 200 and r,
        60,
    )
    assert json.loads(body)["id"] == vid
    assert support.status(cluster, "clip")["phase"] == "Ready"
    collector = f"deploy/{release.component('otel-collector')}"

    def spans_logged() -> bool:
        kubevod.get(f"/api/videos/{vid}")
        log = cluster.kubectl("logs", "-n", NS, collector, check=False).stdout
        return "spans" in log.lower()

    wait_for("the collector logging the API's spans", spans_logged, 90, every=3)


def test_pods_cannot_reach_anything_off_the_machine(kubevod: Release) -> None:
    """A pod's attempt to reach an outside address fails at once: no route, no leak."""
    cluster = kubevod.cluster
    name = f"egress-{int(time.time())}"
    cluster.kubectl(
        "run",
        name,
        "-n",
        NS,
        "--restart=Never",
        "--image",
        support.project_image("worker"),
        "--image-pull-policy=Never",
        "--command",
        "--",
        "python3",
        "-c",
        "import socket\n"
        "for a in ('8.8.8.8', '10.1.2.3', '192.168.0.1', '169.254.169.254'):\n"
        "    s = socket.socket(); s.settimeout(3)\n"
        "    try: s.connect((a, 80)); print('CONNECTED', a)\n"
        "    except OSError as e: print('refused', a, e)\n",
    )
    wait_for(
        "the egress pod done",
        lambda: cluster.get_json("pod", "-n", NS, name)["status"].get("phase")
        in ("Succeeded", "Failed"),
        60,
    )
    out = cluster.kubectl("logs", "-n", NS, name).stdout
    cluster.kubectl("delete", "pod", "-n", NS, name, "--wait=false")
    assert out.count("refused") == 4 and "CONNECTED" not in out, out


@pytest.mark.last
def test_helm_uninstall_leaves_exactly_what_the_docs_say(kubevod: Release) -> None:
    """docs/install-k3s.md §8: PVCs, the generated Secrets and the CRDs stay; nothing runs."""
    cluster = kubevod.cluster
    cluster.kubectl("delete", "videoassets", "--all", "-n", NS, "--timeout=180s", timeout=200)
    release.helm(cluster, "uninstall", release.RELEASE, "-n", NS, "--wait", timeout=300)
    instance = f"app.kubernetes.io/instance={release.RELEASE}"
    wait_for(
        "the release's pods gone",
        lambda: not cluster.get_json("pods", "-n", NS, "-l", instance)["items"],
        120,
    )
    left = cluster.get_json(
        "all,configmaps,secrets,pvc,serviceaccounts,roles,rolebindings,networkpolicies,"
        "ingresses,poddisruptionbudgets,horizontalpodautoscalers",
        "-n",
        NS,
        "-l",
        instance,
    )["items"]
    kept = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in left)
    secrets = {f"Secret/{release.component(n)}" for n in ("minio", "mongodb")}
    pvcs = {k for k in kept if k.startswith("PersistentVolumeClaim/")}
    optional = {f"Secret/{release.component(n)}" for n in ("signing", "api-token")}
    assert set(kept) - pvcs <= secrets | optional, kept
    assert secrets <= set(kept), kept
    assert len(pvcs) == 2, kept
    crds = cluster.kubectl("get", "crd", "-o", "name").stdout
    assert "videoassets.kubevod.io" in crds
    cluster_wide = cluster.get_json("clusterroles,clusterrolebindings", "-l", instance)["items"]
    assert cluster_wide == []


def _probe_pods(
    kubevod: Release, probes: dict[str, tuple[str, dict[str, str], list[str]]]
) -> dict[str, dict[str, str]]:
    """Run pods (name -> namespace, labels, ``host:port`` targets) at once, each trying a TCP
    connection to its targets; what each pod got for each target."""
    cluster = kubevod.cluster
    # Each target is tried for 20 s (the policy controller programs a new pod's
    # address within seconds of its start), all at once.
    script = (
        "import socket, sys, threading, time\n"
        "seen = {}\n"
        "def probe(t):\n"
        "    h, p = t.rsplit(':', 1); end = time.monotonic() + 20; seen[t] = 'closed'\n"
        "    while time.monotonic() < end:\n"
        "        s = socket.socket(); s.settimeout(3)\n"
        "        try: s.connect((h, int(p))); seen[t] = 'open'; return\n"
        "        except OSError: time.sleep(0.5)\n"
        "        finally: s.close()\n"
        "ts = [threading.Thread(target=probe, args=(t,)) for t in sys.argv[1:]]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print('\\n'.join(f'{t} {r}' for t, r in seen.items()))\n"
    )
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "containers": [
                    {
                        "name": "probe",
                        "image": support.project_image("worker"),
                        "imagePullPolicy": "Never",
                        "command": ["python3", "-c", script, *targets],
                    }
                ],
            },
        }
        for name, (namespace, labels, targets) in probes.items()
    ]
    cluster.apply(pods)
    results: dict[str, dict[str, str]] = {}
    for name, (namespace, _, _) in probes.items():
        wait_for(
            f"{name} done",
            lambda name=name, namespace=namespace: cluster.get_json("pod", "-n", namespace, name)[
                "status"
            ].get("phase")
            in ("Succeeded", "Failed"),
            90,
        )
        out = cluster.kubectl("logs", "-n", namespace, name).stdout
        cluster.kubectl("delete", "pod", "-n", namespace, name, "--wait=false")
        results[name] = {ln.split()[0]: ln.split()[1] for ln in out.splitlines() if ln.strip()}
    return results


def test_network_policies_let_only_the_parts_that_need_it_reach_minio_mongodb_and_the_api(
    kubevod: Release,
) -> None:
    """Enforced for real (kube-router's policy controller, as k3s embeds it).

    From outside the release only the cache answers; the API (and its /media)
    answers only the cache; a pod labelled merely part-of=kubevod reaches
    nothing private; a transcode Job's pod (its labels, in another namespace:
    Jobs run in the VideoAsset's) reaches MinIO and MongoDB but not the API.
    """
    cluster = kubevod.cluster
    cluster.kubectl("create", "namespace", "outsider", check=False)
    fqdn = lambda c, port: f"{release.component(c)}.{NS}.svc.cluster.local:{port}"  # noqa: E731
    minio, mongo = fqdn("minio", 9000), fqdn("mongodb", 27017)
    cache, api = fqdn("cache", 80), fqdn("api", 8000)
    job_labels = {
        "app.kubernetes.io/name": "kubevod-worker",
        "app.kubernetes.io/component": "transcoder",
        "app.kubernetes.io/part-of": "kubevod",
    }
    got = _probe_pods(
        kubevod,
        {
            "outsider-probe": ("outsider", {"app": "probe"}, [minio, mongo, cache, api]),
            "kubevod-probe": (NS, {"app.kubernetes.io/part-of": "kubevod"}, [minio, mongo, api]),
            "job-probe": ("outsider", job_labels, [minio, mongo, api]),
        },
    )
    outside, ours, job = got["outsider-probe"], got["kubevod-probe"], got["job-probe"]
    assert outside == {minio: "closed", mongo: "closed", cache: "open", api: "closed"}, outside
    assert set(ours.values()) == {"closed"}, ours
    assert job == {minio: "open", mongo: "open", api: "closed"}, job
