"""What the tests on the real cluster share: the installed release, a media server
on the node's own address (the "NAS on the home network"), VideoAssets and
waiting for their status."""

from __future__ import annotations

import base64
import json
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from tests.cluster import addons, images, layout, release
from tests.cluster.cluster import Cluster
from tests.integration.operator_support import wait_for

NS = release.NAMESPACE
MEDIA_SERVER = "media-server"
#: The bucket the s3-source test reads from (chart value worker.fetch.s3Buckets).
SOURCE_BUCKET = "sources"
#: The media server listens on the node's address (hostNetwork), outside the
#: cluster's Pod and Service ranges, which the fetch guard refuses.
MEDIA_PORT = 18080
#: Chart values of the fetch guard: the "NAS" (the node's address) allowed, the
#: test cluster's own Pod and Service ranges denied.
FETCH_VALUES = release.FETCH_VALUES


def secret_value(cluster: Cluster, name: str, key: str, namespace: str = NS) -> str:
    data = cluster.get_json("secret", "-n", namespace, name)["data"]
    return base64.b64decode(data[key]).decode()


def project_image(component: str) -> str:
    values = images.helm_overrides()
    return f"{values[f'{component}.image.repository']}:{values[f'{component}.image.tag']}"


def media_server(clip_seconds: int = 16, long_seconds: int = 48) -> list[dict[str, Any]]:
    """A Deployment serving a clip it makes with ffmpeg, on the node's address.

    It runs the worker image (which has ffmpeg); the clip is made by ffmpeg's
    own generators, so no media file travels into the cluster. With
    ``hostNetwork`` it answers on ``NODE_IP:MEDIA_PORT``, an address outside
    the Pod and Service ranges, as a NAS on the home network would; the Service
    is only for the tests' own forwarder (its ClusterIP is in the denied range).
    """
    labels = {"app": MEDIA_SERVER}

    def make(name: str, seconds: int) -> str:
        return (
            f"ffmpeg -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30:duration={seconds} "
            f"-f lavfi -i sine=frequency=440:sample_rate=48000:duration={seconds} "
            "-c:v libx264 -preset ultrafast -g 60 -pix_fmt yuv420p -c:a aac -shortest "
            f"{name}"
        )

    # clip.mp4 for most tests; long.mp4 for a transcode that can be interrupted.
    script = (
        f"cd /srv && {make('clip.mp4', clip_seconds)} && {make('long.mp4', long_seconds)} "
        f"&& exec python3 -m http.server {MEDIA_PORT} --bind {layout.NODE_IP}"
    )
    return [
        addons.deployment(
            MEDIA_SERVER,
            labels,
            {
                "automountServiceAccountToken": False,
                "hostNetwork": True,
                "containers": [
                    {
                        "name": "http",
                        "image": project_image("worker"),
                        "imagePullPolicy": "Never",
                        "command": ["/bin/sh", "-ec", script],
                        "ports": [{"containerPort": MEDIA_PORT, "name": "http"}],
                        "readinessProbe": {
                            "httpGet": {"path": "/clip.mp4", "port": "http"},
                            "periodSeconds": 1,
                        },
                        "volumeMounts": [{"name": "srv", "mountPath": "/srv"}],
                    }
                ],
                "volumes": [{"name": "srv", "emptyDir": {}}],
            },
            namespace=None,
        ),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": MEDIA_SERVER},
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": 80, "targetPort": MEDIA_PORT}],
            },
        },
    ]


def media_url(path: str = "clip.mp4") -> str:
    """The clip's URL as a VideoAsset names it: the node's address, allowed by FETCH_VALUES."""
    return f"http://{layout.NODE_IP}:{MEDIA_PORT}/{path}"


def in_cluster_media_url(path: str = "clip.mp4", namespace: str = NS) -> str:
    """The same clip by its Service name: inside the Service range, which the guard denies."""
    return f"http://{MEDIA_SERVER}.{namespace}.svc.cluster.local/{path}"


def clip_bytes(cluster: Cluster, path: str = "clip.mp4") -> bytes:
    """A file the media server made, fetched through the tests' forwarder."""
    port = cluster.forward_service(NS, MEDIA_SERVER, 80)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=30) as r:
        data: bytes = r.read()
    return data


def minio_client(cluster: Cluster, user_key: str, password_key: str) -> Any:
    """A MinIO client through the tests' forwarder, as one of the release's users."""
    from minio import Minio

    port = cluster.forward_service(NS, release.component("minio"), 9000)
    secret = release.component("minio")
    return Minio(
        f"127.0.0.1:{port}",
        access_key=secret_value(cluster, secret, user_key),
        secret_key=secret_value(cluster, secret, password_key),
        secure=False,
    )


def video_asset(name: str, source: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubevod.io/v1alpha1",
        "kind": "VideoAsset",
        "metadata": {"name": name},
        "spec": {"title": name.replace("-", " ").title(), "source": source, **spec},
    }


@dataclass
class Watch:
    """The (phase, progress) pairs a VideoAsset's status went through."""

    seen: list[tuple[str, int]] = field(default_factory=list)

    def record(self, status: dict[str, Any]) -> None:
        pair = (str(status.get("phase", "")), int(status.get("progress") or 0))
        if not self.seen or self.seen[-1] != pair:
            self.seen.append(pair)


def status(cluster: Cluster, name: str, namespace: str = NS) -> dict[str, Any]:
    r = cluster.kubectl("get", "videoasset", "-n", namespace, name, "-o", "json", check=False)
    if r.returncode != 0:
        return {}
    body: dict[str, Any] = json.loads(r.stdout)
    return body.get("status") or {}


def wait_phase(
    cluster: Cluster,
    name: str,
    phases: tuple[str, ...],
    timeout: float,
    watch: Watch | None = None,
    namespace: str = NS,
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        st = status(cluster, name, namespace)
        if watch is not None and st:
            watch.record(st)
        if st.get("phase") == "Failed" and "Failed" not in phases:
            raise AssertionError(f"{name} failed: {st.get('message')} {st.get('conditions')}")
        return st if st.get("phase") in phases else None

    return wait_for(f"{name} in phase {phases}", probe, timeout, every=0.3)


def video_id(st: dict[str, Any]) -> str:
    """The catalog id, as status shows it; it is also in the playback URLs."""
    vid: str = st["videoId"]
    assert f"/v/{vid}/master.m3u8" in st["playback"]["hls"]
    return vid
