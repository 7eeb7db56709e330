"""Smoke tests proving each server of the test environment is the real thing."""

from __future__ import annotations

import http.client
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.servers import KubeCluster, MinioServer, MongoServer
from tests.fixtures.util import free_port, require

pytestmark = pytest.mark.integration


def test_minio_put_get_and_ranged_get(minio: MinioServer) -> None:
    client = minio.client()
    payload = bytes(range(256)) * 64
    client.put_object(minio.bucket, "smoke/blob.bin", io.BytesIO(payload), len(payload))
    whole = client.get_object(minio.bucket, "smoke/blob.bin")
    assert whole.read() == payload
    part = client.get_object(minio.bucket, "smoke/blob.bin", offset=1000, length=24)
    assert part.read() == payload[1000:1024]
    stat = client.stat_object(minio.bucket, "smoke/blob.bin")
    assert stat.size == len(payload)


def test_mongo_wire_insert_find_and_index(mongo: MongoServer, mongo_url: str) -> None:
    import pymongo

    client: Any = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    try:
        coll = client.get_default_database()["smoke"]
        coll.create_index([("name", pymongo.ASCENDING)], unique=True)
        coll.insert_many([{"name": "a", "n": 1}, {"name": "b", "n": 2}])
        assert coll.find_one({"name": "b"})["n"] == 2
        assert sorted(d["name"] for d in coll.find({"n": {"$gte": 1}})) == ["a", "b"]
        with pytest.raises(pymongo.errors.DuplicateKeyError):
            coll.insert_one({"name": "a"})
    finally:
        client.close()


def test_kubectl_apply_configmap_and_read_back(kube: KubeCluster) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "smoke", "namespace": "default"},
        "data": {"greeting": "hello"},
    }
    kube.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    got = json.loads(kube.kubectl("get", "configmap", "smoke", "-o", "json").stdout)
    assert got["data"] == {"greeting": "hello"}


def test_apiserver_refuses_malformed_object_with_field_name(kube: KubeCluster) -> None:
    bad = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bad-svc", "namespace": "default"},
        "spec": {"ports": [{"port": 700000}]},
    }
    result = kube.kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert result.returncode != 0
    assert "spec.ports[0].port" in result.stderr


def test_rbac_is_enforced_for_unprivileged_identity(kube: KubeCluster) -> None:
    result = kube.kubectl("get", "secrets", "-A", as_user="nobody-in-particular", check=False)
    assert result.returncode != 0
    assert "forbidden" in result.stderr.lower()


def test_nginx_serves_a_file_with_range(nginx_factory: Any, tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    (root / "f.bin").write_bytes(b"0123456789" * 10)
    port = free_port()
    conf = f"""
events {{}}
http {{
  access_log off;
  server {{
    listen 127.0.0.1:{port};
    root {root};
  }}
}}
"""
    server = nginx_factory(conf)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/f.bin", headers={"Range": "bytes=10-19"})
    resp = conn.getresponse()
    assert resp.status == 206
    assert resp.read() == b"0123456789"
    assert resp.getheader("Content-Range") == "bytes 10-19/100"


@pytest.mark.browser
def test_chromium_renders_and_supports_h264_aac_mse(page: Any) -> None:
    page.set_content("<h1 id=t>kubevod</h1>")
    assert page.inner_text("#t") == "kubevod"
    supported = page.evaluate(
        "MediaSource.isTypeSupported('video/mp4; codecs=\"avc1.64001f,mp4a.40.2\"')"
    )
    assert supported is True


def test_ffmpeg_encodes_one_second_of_testsrc2(tmp_path: Path) -> None:
    ffmpeg, ffprobe = require("ffmpeg"), require("ffprobe")
    out = tmp_path / "one.mp4"
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            str(out),
        ],
        check=True,
        timeout=60,
    )
    probe = subprocess.run(
        [ffprobe, "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(out)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["codec_name"] == "h264"
    assert int(stream["nb_read_frames"]) == 25
