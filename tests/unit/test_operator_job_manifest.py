"""The transcode Job builder (pure): a full snapshot and a table of variants."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubevod.operator import naming
from kubevod.operator.job_manifest import build_chunk_workers, build_job, gpu_vendor
from kubevod.operator.resource import Asset, VideoAssetSpec
from kubevod.operator.settings import GpuSettings, OperatorSettings, WorkerJobSettings

from kubevod import keys
from kubevod.jobs import TranscodeJob
from kubevod.models import is_valid_video_id

UID = "0b7f4a51-2c3d-4e5f-8a9b-0c1d2e3f4a5b"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def asset(spec: dict[str, Any], *, name: str = "big-buck-bunny", generation: int = 1) -> Asset:
    return Asset(
        namespace="media",
        name=name,
        uid=UID,
        generation=generation,
        spec=VideoAssetSpec.model_validate(spec),
    )


def job_for(spec: dict[str, Any], **gpu: Any) -> dict[str, Any]:
    a = asset(spec)
    return build_job(
        a,
        video_id=a.video_id,
        worker=WorkerJobSettings(),
        gpu=GpuSettings(**gpu),
        traceparent=TRACEPARENT,
    )


def pod(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def env(job: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod(job)["containers"][0]["env"]}


URL_SPEC = {"source": {"url": "https://media.example/bbb.mp4"}, "title": "Big Buck Bunny"}


def test_url_source_job_matches_snapshot() -> None:
    a = asset(URL_SPEC)
    vid = a.video_id
    job = job_for(URL_SPEC)
    labels = {
        "app.kubernetes.io/name": "kubevod-worker",
        "app.kubernetes.io/component": "transcoder",
        "app.kubernetes.io/part-of": "kubevod",
        "app.kubernetes.io/managed-by": "kubevod-operator",
        "kubevod.io/video-id": vid,
        "kubevod.io/asset-uid": UID,
        "kubevod.io/generation": "1",
    }
    annotations = {
        "kubevod.io/asset": "media/big-buck-bunny",
        "kubevod.io/traceparent": TRACEPARENT,
    }
    transcode = TranscodeJob(
        video_id=vid, source="https://media.example/bbb.mp4", title="Big Buck Bunny"
    ).model_dump_json()
    assert job == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": a.job_name,
            "namespace": "media",
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "kubevod.io/v1alpha1",
                    "kind": "VideoAsset",
                    "name": "big-buck-bunny",
                    "uid": UID,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": 21600,
            "ttlSecondsAfterFinished": 3600,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": "worker",
                            "operator": "In",
                            "values": [2, 3],
                        },
                    },
                    {
                        "action": "Ignore",
                        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                    },
                ]
            },
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": "kubevod-worker",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "worker",
                            "image": "ghcr.io/kubevod/kubevod-worker:0.1.0",
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["kubevod-worker"],
                            "env": [
                                {"name": "KUBEVOD_JOB", "value": transcode},
                                {
                                    "name": "KUBEVOD_CATALOG_URL",
                                    "valueFrom": {
                                        "secretKeyRef": {
                                            "name": "kubevod-backends",
                                            "key": "catalog-url",
                                        }
                                    },
                                },
                                {
                                    "name": "KUBEVOD_STORE_URL",
                                    "valueFrom": {
                                        "secretKeyRef": {
                                            "name": "kubevod-backends",
                                            "key": "store-url",
                                        }
                                    },
                                },
                                {"name": "TRACEPARENT", "value": TRACEPARENT},
                                {"name": "OTEL_SERVICE_NAME", "value": "kubevod-worker"},
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                },
                                {
                                    "name": "POD_NAMESPACE",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                                },
                                {
                                    "name": "NODE_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                                },
                                {"name": "TMPDIR", "value": "/scratch"},
                                {"name": "HOME", "value": "/scratch"},
                                # The fetch guard: k3s's Pod/Service ranges refused,
                                # half of the 20Gi scratch volume for the source.
                                {
                                    "name": "KUBEVOD_FETCH_DENY",
                                    "value": "10.42.0.0/16,10.43.0.0/16",
                                },
                                {"name": "KUBEVOD_FETCH_DEADLINE", "value": "3600"},
                                {"name": "KUBEVOD_MAX_SOURCE_BYTES", "value": str(10 * 1024**3)},
                            ],
                            "resources": {
                                "requests": {"cpu": "1", "memory": "1Gi"},
                                "limits": {"memory": "4Gi"},
                            },
                            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                            "workingDir": "/scratch",
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                    "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "20Gi"}}],
                },
            },
        },
    }


def test_no_credentials_travel_as_plain_env_values() -> None:
    job = job_for(URL_SPEC)
    text = json.dumps(job)
    assert "secretKeyRef" in text
    for entry in pod(job)["containers"][0]["env"]:
        if entry["name"] in ("KUBEVOD_CATALOG_URL", "KUBEVOD_STORE_URL"):
            assert "value" not in entry


def test_worker_reads_back_the_same_transcode_job() -> None:
    spec = {
        "source": {"s3": {"bucket": "incoming", "key": "films/a b.mkv"}},
        "codec": "hevc",
        "segmentSeconds": 6,
        "accelerator": "vaapi",
        "ladder": {
            "rungs": [{"height": 720, "bitrate": 3000000}, {"height": 360, "bitrate": 800000}]
        },
    }
    job = TranscodeJob.from_env({"KUBEVOD_JOB": env(job_for(spec))["KUBEVOD_JOB"]})
    assert job.source == "s3://incoming/films/a b.mkv"
    assert job.codec == "hevc"
    assert job.segment_seconds == 6
    assert job.accelerator == "vaapi"
    assert isinstance(job.ladder, list) and [r.height for r in job.ladder] == [720, 360]


def test_pvc_source_is_mounted_read_only_and_passed_as_a_path() -> None:
    job = job_for({"source": {"pvc": {"claimName": "nas-videos", "path": "holiday/2024.mov"}}})
    volumes = {v["name"]: v for v in pod(job)["volumes"]}
    assert volumes["source"]["persistentVolumeClaim"] == {
        "claimName": "nas-videos",
        "readOnly": True,
    }
    mounts = {m["name"]: m for m in pod(job)["containers"][0]["volumeMounts"]}
    assert mounts["source"] == {"name": "source", "mountPath": "/source", "readOnly": True}
    job_env = TranscodeJob.from_env({"KUBEVOD_JOB": env(job)["KUBEVOD_JOB"]})
    assert job_env.source == "/source/holiday/2024.mov"


@pytest.mark.parametrize(
    ("spec_extra", "vendor", "resource", "runtime", "selector"),
    [
        (
            {"gpu": True, "accelerator": "nvidia"},
            "nvidia",
            "nvidia.com/gpu",
            "nvidia",
            "nvidia.com/gpu.present",
        ),
        ({"gpu": True}, "nvidia", "nvidia.com/gpu", "nvidia", "nvidia.com/gpu.present"),
        (
            {"gpu": True, "accelerator": "vaapi"},
            "intel",
            "gpu.intel.com/i915",
            None,
            "intel.feature.node.kubernetes.io/gpu",
        ),
        (
            {"gpu": True, "accelerator": "qsv"},
            "intel",
            "gpu.intel.com/i915",
            None,
            "intel.feature.node.kubernetes.io/gpu",
        ),
        ({"gpu": False, "accelerator": "nvidia"}, None, None, None, None),
        ({"gpu": True, "accelerator": "none"}, None, None, None, None),
    ],
)
def test_gpu_scheduling(
    spec_extra: dict[str, Any],
    vendor: str | None,
    resource: str | None,
    runtime: str | None,
    selector: str | None,
) -> None:
    spec = {**URL_SPEC, **spec_extra}
    assert gpu_vendor(asset(spec), GpuSettings()) == vendor
    job = job_for(spec)
    p = pod(job)
    limits = p["containers"][0]["resources"]["limits"]
    gpu_keys = {k for k in limits if "gpu" in k}
    assert gpu_keys == ({resource} if resource else set())
    if resource:
        assert limits[resource] == "1"
    assert p.get("runtimeClassName") == runtime
    assert (selector in p.get("nodeSelector", {})) if selector else "nodeSelector" not in p
    has_caps = "NVIDIA_DRIVER_CAPABILITIES" in env(job)
    assert has_caps == (vendor == "nvidia")
    if vendor == "nvidia":
        assert env(job)["NVIDIA_DRIVER_CAPABILITIES"] == "compute,video,utility"
        assert p["tolerations"] == [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]


def test_intel_render_group_is_a_supplemental_group() -> None:
    job = job_for({**URL_SPEC, "gpu": True, "accelerator": "qsv"}, intel_render_group=109)
    assert pod(job)["securityContext"]["supplementalGroups"] == [109]


def test_auto_gpu_vendor_follows_the_setting() -> None:
    job = job_for({**URL_SPEC, "gpu": True}, default_vendor="intel")
    assert "gpu.intel.com/i915" in pod(job)["containers"][0]["resources"]["limits"]


def test_spec_resources_override_the_defaults() -> None:
    job = job_for(
        {**URL_SPEC, "resources": {"requests": {"cpu": "3"}, "limits": {"cpu": 4, "memory": "8Gi"}}}
    )
    res = pod(job)["containers"][0]["resources"]
    assert res == {
        "requests": {"cpu": "3", "memory": "1Gi"},
        "limits": {"memory": "8Gi", "cpu": "4"},
    }


def test_otel_endpoint_is_passed_when_set() -> None:
    a = asset(URL_SPEC)
    worker = WorkerJobSettings(otel_endpoint="http://otel:4318")
    job = build_job(
        a, video_id=a.video_id, worker=worker, gpu=GpuSettings(), traceparent=TRACEPARENT
    )
    assert env(job)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel:4318"


@pytest.mark.parametrize(
    ("name", "generation"),
    [("a", 1), ("big-buck-bunny", 7), ("x" * 253, 12345), ("my.video.v2", 3), ("UPPER", 1)],
)
def test_names_are_deterministic_valid_and_short(name: str, generation: int) -> None:
    job = naming.job_name(name, UID, generation)
    assert job == naming.job_name(name, UID, generation)
    assert len(job) <= 63 and job.endswith(f"-g{generation}")
    assert job[0].isalnum() and job == job.lower()
    assert naming.job_name(name, UID, generation + 1) != job
    assert naming.job_name(name, "another-uid", generation) != job
    vid = naming.video_id("media", name, UID)
    assert is_valid_video_id(vid) and len(vid) <= 63
    assert vid == naming.video_id("media", name, UID)
    assert vid != naming.video_id("other", name, UID)


def test_media_prefix_changes_with_generation() -> None:
    assert keys.media_prefix("v1", 1) == "videos/v1/g1"
    assert keys.media_prefix("v1", 2) == "videos/v1/g2"
    assert keys.video_root("v1") == "videos/v1/"


def test_settings_read_nested_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEVOD_QUEUE__MAX_CONCURRENT", "7")
    monkeypatch.setenv("KUBEVOD_NAMESPACES", "media, films")
    monkeypatch.setenv("KUBEVOD_WORKER__IMAGE", "registry.local/worker:dev")
    monkeypatch.setenv("KUBEVOD_GPU__NVIDIA_NODE_SELECTOR", '{"gpu": "yes"}')
    monkeypatch.setenv("KUBEVOD_PUBLIC_URL", "https://tv.home/")
    s = OperatorSettings()
    assert s.queue.max_concurrent == 7
    assert s.namespaces == ["media", "films"]
    assert s.worker.image == "registry.local/worker:dev"
    assert s.gpu.nvidia_node_selector == {"gpu": "yes"}
    assert s.public_url == "https://tv.home"


def test_fetch_settings_reach_the_worker_and_the_source_fits_the_scratch_volume() -> None:
    worker = WorkerJobSettings(
        fetch_allow=["10.87.0.2/32", "nas.home.arpa"],
        fetch_deny=["10.88.0.0/16", "10.96.0.0/16"],
        fetch_deadline_seconds=90.5,
        s3_source_buckets=["recordings", "inbox"],
        scratch_size_limit="3Gi",
    )
    a = asset(URL_SPEC)
    job = build_job(
        a, video_id=a.video_id, worker=worker, gpu=GpuSettings(), traceparent=TRACEPARENT
    )
    e = env(job)
    assert e["KUBEVOD_FETCH_ALLOW"] == "10.87.0.2/32,nas.home.arpa"
    assert e["KUBEVOD_FETCH_DENY"] == "10.88.0.0/16,10.96.0.0/16"
    assert e["KUBEVOD_FETCH_DEADLINE"] == "90.5"
    assert e["KUBEVOD_S3_SOURCE_BUCKETS"] == "recordings,inbox"
    limit = int(e["KUBEVOD_MAX_SOURCE_BYTES"])
    assert limit == 3 * 1024**3 // 2
    assert pod(job)["volumes"][0]["emptyDir"]["sizeLimit"] == "3Gi"


def test_the_worker_reads_the_fetch_settings_the_job_carries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kubevod.worker.settings import WorkerSettings as WorkerSide

    worker = WorkerJobSettings(
        fetch_allow=["10.87.0.2/32"], s3_source_buckets=["inbox"], fetch_deadline_seconds=42
    )
    a = asset(URL_SPEC)
    job = build_job(
        a, video_id=a.video_id, worker=worker, gpu=GpuSettings(), traceparent=TRACEPARENT
    )
    for name, value in env(job).items():
        if name.startswith("KUBEVOD_") and isinstance(value, str):
            monkeypatch.setenv(name, value)
    side = WorkerSide()
    assert [str(x) for x in side.fetch_allow] == ["10.87.0.2/32"]
    assert [str(x) for x in side.fetch_deny] == ["10.42.0.0/16", "10.43.0.0/16"]
    assert side.fetch_deadline == 42
    assert side.max_source_bytes == 10 * 1024**3
    assert side.s3_source_buckets == ["inbox"]


@pytest.mark.parametrize(
    ("setting", "asked", "pods"),
    [(1, None, 1), (3, None, 3), (1, 4, 4), (4, 1, 1), (2, 2, 2)],
)
def test_a_spread_transcode_is_an_indexed_job_of_that_many_pods(
    setting: int, asked: int | None, pods: int
) -> None:
    """spec.transcode.pods, else the install's worker.pods; one pod is the Job as it was."""
    spec: dict[str, Any] = {**URL_SPEC, **({"transcode": {"pods": asked}} if asked else {})}
    a = asset(spec)
    job = build_job(
        a, video_id=a.video_id, worker=WorkerJobSettings(pods=setting), gpu=GpuSettings(),
        traceparent=TRACEPARENT,
    )  # fmt: skip
    told = TranscodeJob.from_env({"KUBEVOD_JOB": env(job)["KUBEVOD_JOB"]})
    assert told.pods == pods
    if pods == 1:
        assert not {"completionMode", "completions", "parallelism"} & set(job["spec"])
    else:
        assert job["spec"]["completionMode"] == "Indexed"
        assert job["spec"]["completions"] == job["spec"]["parallelism"] == pods
    # The pod index is Kubernetes' own (JOB_COMPLETION_INDEX), never set by the operator.
    assert "JOB_COMPLETION_INDEX" not in env(job)


def test_the_pod_count_does_not_change_what_the_media_are() -> None:
    """Spreading a video over more pods is not a new transcode: the fingerprint holds."""
    plain = asset({**URL_SPEC, "transcode": {"passthrough": "auto"}}).spec.fingerprint()
    spread = asset({**URL_SPEC, "transcode": {"passthrough": "auto", "pods": 4}}).spec
    assert spread.fingerprint() == plain
    never = asset({**URL_SPEC, "transcode": {"passthrough": "never", "pods": 4}}).spec
    assert never.fingerprint() != plain


def test_the_worker_reads_the_chunk_length_a_spread_job_carries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kubevod.worker.settings import WorkerSettings

    a = asset({**URL_SPEC, "transcode": {"pods": 2}})
    job = build_job(
        a, video_id=a.video_id, worker=WorkerJobSettings(chunk_seconds=7.5), gpu=GpuSettings(),
        traceparent=TRACEPARENT,
    )  # fmt: skip
    for name, value in env(job).items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
    assert WorkerSettings().spread_chunk_seconds == 7.5
    assert "KUBEVOD_SPREAD_CHUNK_SECONDS" not in env(job_for(URL_SPEC))  # one pod: no chunks


# --- on demand and the chunk workers --------------------------------------------------


def _job_of(spec: dict[str, Any], **worker: Any) -> tuple[dict[str, Any], TranscodeJob]:
    a = asset(spec)
    job = build_job(
        a, video_id=a.video_id, worker=WorkerJobSettings(**worker), gpu=GpuSettings(),
        traceparent=TRACEPARENT,
    )  # fmt: skip
    return job, TranscodeJob.from_env({"KUBEVOD_JOB": env(job)["KUBEVOD_JOB"]})


@pytest.mark.parametrize(
    ("transcode", "install", "policy", "pods"),
    [
        (None, "eager", "eager", 1),
        (None, "onDemand", "onDemand", 1),
        ({"policy": "onDemand"}, "eager", "onDemand", 1),
        ({"policy": "eager"}, "onDemand", "eager", 1),
        # On demand is one pod's registration, whatever the spread asked for.
        ({"policy": "onDemand", "pods": 4}, "eager", "onDemand", 1),
        ({"policy": "eager", "pods": 4}, "onDemand", "eager", 4),
    ],
)
def test_the_policy_is_the_assets_else_the_installs_and_on_demand_is_one_pod(
    transcode: dict[str, Any] | None, install: str, policy: str, pods: int
) -> None:
    spec = {**URL_SPEC, **({"transcode": transcode} if transcode else {})}
    job, carried = _job_of(spec, policy=install)
    assert carried.policy == policy
    assert carried.pods == pods
    assert job["spec"].get("completions", 1) == pods


def test_a_pvc_source_is_encoded_eagerly_even_when_asked_on_demand() -> None:
    spec = {
        "source": {"pvc": {"claimName": "media", "path": "film.mkv"}},
        "transcode": {"policy": "onDemand"},
    }
    _, carried = _job_of(spec, policy="onDemand")
    assert carried.policy == "eager"


def test_the_policy_shapes_the_media_and_a_spec_without_one_keeps_its_fingerprint() -> None:
    plain = VideoAssetSpec.model_validate(URL_SPEC).fingerprint()
    on_demand = {**URL_SPEC, "transcode": {"policy": "onDemand"}}
    eager = {**URL_SPEC, "transcode": {"policy": "eager"}}
    assert VideoAssetSpec.model_validate(on_demand).fingerprint() != plain
    assert VideoAssetSpec.model_validate(eager).fingerprint() != (
        VideoAssetSpec.model_validate(on_demand).fingerprint()
    )


def _workers(**worker: Any) -> dict[str, Any]:
    settings = WorkerJobSettings(**worker)
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "op", "uid": "u-1"}
    return build_chunk_workers(
        settings, namespace="kubevod", owner=owner, labels={"app.kubernetes.io/instance": "r"}
    )


def test_chunk_workers_run_the_worker_image_as_a_jobs_pod_does() -> None:
    deployment = _workers(chunk_workers=3, chunk_worker_name="r-kubevod-chunks")
    job = job_for(URL_SPEC)
    assert deployment["kind"] == "Deployment" and deployment["apiVersion"] == "apps/v1"
    assert deployment["metadata"]["name"] == "r-kubevod-chunks"
    assert deployment["metadata"]["namespace"] == "kubevod"
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert deployment["spec"]["replicas"] == 3
    spec = deployment["spec"]["template"]["spec"]
    container, job_container = spec["containers"][0], pod(job)["containers"][0]
    assert container["command"] == [*job_container["command"], "chunks"]
    assert container["image"] == job_container["image"]
    assert container["securityContext"] == job_container["securityContext"]
    assert spec["securityContext"] == pod(job)["securityContext"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == pod(job)["serviceAccountName"]
    assert spec["volumes"] == [v for v in pod(job)["volumes"] if v["name"] == "scratch"]
    # The Job's environment less what belongs to one video and one trace.
    names = [e["name"] for e in container["env"]]
    job_names = [e["name"] for e in job_container["env"]]
    assert names == [n for n in job_names if n not in ("KUBEVOD_JOB", "TRACEPARENT")]
    secret_refs = [
        e for e in container["env"] if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    ]
    assert {e["name"] for e in secret_refs} == {"KUBEVOD_CATALOG_URL", "KUBEVOD_STORE_URL"}
    assert all("value" not in e for e in secret_refs)  # credentials only by reference


def test_chunk_workers_are_workers_to_the_network_policies_but_no_videos_job() -> None:
    deployment = _workers()
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "kubevod-worker"
    assert labels["app.kubernetes.io/component"] == "transcoder"
    assert labels["app.kubernetes.io/instance"] == "r"
    assert "kubevod.io/video-id" not in labels and "app.kubernetes.io/managed-by" not in labels
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()


def test_chunk_workers_ask_little_cpu_and_have_no_cpu_limit() -> None:
    resources = _workers()["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "100m", "memory": "256Mi"}
    assert "cpu" not in resources["limits"]
    assert resources["limits"]["memory"] == WorkerJobSettings().memory_limit
