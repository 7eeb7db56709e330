"""The chart's MinIO `bucket` script, run with the real mc against a real MinIO.

The script is taken from the rendered StatefulSet (only MinIO's address and
the final `sleep infinity` are changed), run with the generated credentials,
and then the scoped users it made are tried as a worker and the API would
use them, and as an attacker holding them would.
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.chart.helm import documents, find, template_text
from tests.fixtures.util import require, s3_access_denied

pytestmark = pytest.mark.integration

SOURCE_BUCKET = "nas-recordings"
OTHER_BUCKET = "private-stuff"


def _decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def _bucket_script(
    minio: Any, tmp: Path, path: str = ""
) -> tuple[str, dict[str, str], dict[str, str]]:
    """The rendered bucket script pointed at ``minio``, its environment and the credentials.

    ``path`` goes before mc's directory on PATH (a wrapper mc for fault tests).
    """
    values = {"worker": {"fetch": {"s3Buckets": [SOURCE_BUCKET]}}}
    docs = documents(template_text(values, tmp=tmp).stdout)
    sts = find(docs, "StatefulSet", "-minio")["spec"]["template"]["spec"]
    bucket = next(c for c in sts["containers"] if c["name"] == "bucket")
    script = bucket["args"][0]
    assert script.rstrip().endswith("exec sleep infinity")
    script = script.replace("http://127.0.0.1:9000", minio.url)
    script = script.rstrip().removesuffix("exec sleep infinity") + "exit 0\n"
    script = script.replace("/tmp/bucket", str(tmp / "bucket"))
    creds = _decoded(find(docs, "Secret", "-minio"))
    env = {
        **os.environ,
        "MC_CONFIG_DIR": str(tmp / "mc"),
        "MINIO_ROOT_USER": minio.access_key,
        "MINIO_ROOT_PASSWORD": minio.secret_key,
        "WORKER_USER": creds["worker-user"],
        "WORKER_PASSWORD": creds["worker-password"],
        "API_USER": creds["api-user"],
        "API_PASSWORD": creds["api-password"],
        "PATH": f"{path}{Path(require('mc')).parent}:{os.environ['PATH']}",
    }
    return script, env, creds


@pytest.fixture(scope="module")
def users(minio: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Run the rendered bucket script against ``minio``; return the scoped credentials."""
    script, env, creds = _bucket_script(minio, tmp_path_factory.mktemp("minio-users"))
    for _ in range(2):  # a restart runs it again over what exists: it must stay idempotent
        run = subprocess.run(
            ["/bin/sh", "-ec", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stdout + run.stderr
    root = minio.client()
    for name in (SOURCE_BUCKET, OTHER_BUCKET):
        if not root.bucket_exists(name):
            root.make_bucket(name)
        root.put_object(name, "film.mp4", io.BytesIO(b"source"), 6)
    root.put_object(minio.bucket, "private/notes.txt", io.BytesIO(b"secret"), 6)
    root.put_object(minio.bucket, "videos/v1/poster.jpg", io.BytesIO(b"jpeg"), 4)
    root.put_object(minio.bucket, "logs/v1/ffmpeg.log", io.BytesIO(b"log"), 3)
    return creds


def _client(minio: Any, user: str, password: str) -> Any:
    from minio import Minio

    return Minio(minio.endpoint, access_key=user, secret_key=password, secure=False)


def test_the_worker_user_writes_and_deletes_under_videos_and_logs_only(
    minio: Any, users: dict[str, str]
) -> None:
    worker = _client(minio, users["worker-user"], users["worker-password"])
    b = minio.bucket
    worker.put_object(b, "videos/v2/g1/720p/0.m4s", io.BytesIO(b"seg"), 3)
    worker.put_object(b, "logs/v2/ffmpeg.log", io.BytesIO(b"log"), 3)
    assert worker.get_object(b, "logs/v1/ffmpeg.log").read() == b"log"
    assert [o.object_name for o in worker.list_objects(b, prefix="videos/v2/", recursive=True)]
    worker.remove_object(b, "videos/v2/g1/720p/0.m4s")
    assert worker.bucket_exists(b)  # the store's ping
    assert s3_access_denied(lambda: worker.get_object(b, "private/notes.txt"))
    assert s3_access_denied(lambda: worker.put_object(b, "private/evil", io.BytesIO(b"x"), 1))
    assert s3_access_denied(lambda: worker.remove_object(b, "private/notes.txt"))
    assert s3_access_denied(lambda: worker.remove_bucket(b))
    assert s3_access_denied(lambda: worker.make_bucket("worker-made"))
    assert s3_access_denied(lambda: worker.set_bucket_policy(b, "{}"))


def test_the_worker_user_reads_the_allowed_source_buckets_and_nothing_else(
    minio: Any, users: dict[str, str]
) -> None:
    worker = _client(minio, users["worker-user"], users["worker-password"])
    assert worker.get_object(SOURCE_BUCKET, "film.mp4").read() == b"source"
    assert s3_access_denied(lambda: worker.put_object(SOURCE_BUCKET, "x", io.BytesIO(b"x"), 1))
    assert s3_access_denied(lambda: worker.remove_object(SOURCE_BUCKET, "film.mp4"))
    assert s3_access_denied(lambda: worker.get_object(OTHER_BUCKET, "film.mp4"))


def test_the_api_user_only_reads_videos(minio: Any, users: dict[str, str]) -> None:
    api = _client(minio, users["api-user"], users["api-password"])
    b = minio.bucket
    assert api.get_object(b, "videos/v1/poster.jpg").read() == b"jpeg"
    assert api.bucket_exists(b)  # /readyz pings the store
    assert s3_access_denied(lambda: api.put_object(b, "videos/v1/poster.jpg", io.BytesIO(b"x"), 1))
    assert s3_access_denied(lambda: api.remove_object(b, "videos/v1/poster.jpg"))
    assert s3_access_denied(lambda: api.get_object(b, "logs/v1/ffmpeg.log"))
    assert s3_access_denied(lambda: api.get_object(b, "private/notes.txt"))
    assert s3_access_denied(lambda: api.get_object(SOURCE_BUCKET, "film.mp4"))
    assert s3_access_denied(lambda: api.remove_bucket(b))


def test_only_videos_are_anonymously_readable(minio: Any, users: dict[str, str]) -> None:
    import urllib.error
    import urllib.request

    def status(key: str) -> int:
        try:
            with urllib.request.urlopen(f"{minio.url}/{minio.bucket}/{key}", timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert status("videos/v1/poster.jpg") == 200
    assert status("logs/v1/ffmpeg.log") == 403
    assert status("private/notes.txt") == 403


def test_an_mc_call_that_hangs_is_cut_off_and_the_setup_still_finishes(
    minio: Any, users: dict[str, str], tmp_path: Path
) -> None:
    """mc has no timeout: an admin call once hung for good and left MinIO unready."""
    wrapper = tmp_path / "wrapper"
    wrapper.mkdir()
    hung = tmp_path / "hung"
    (wrapper / "mc").write_text(
        "#!/bin/sh\n"
        f'if [ "$2 $3" = "user info" ] && [ ! -e {hung} ]; then\n'
        f"  touch {hung}; trap '' TERM; exec sleep 600\n"  # as mc: a TERM does not stop it
        "fi\n"
        f'exec {require("mc")} "$@"\n'
    )
    (wrapper / "mc").chmod(0o755)
    script, env, creds = _bucket_script(minio, tmp_path, path=f"{wrapper}:")
    assert "sleep 20;" in script
    script = script.replace("sleep 20;", "sleep 2;")  # the per-call limit, shortened
    run = subprocess.run(
        ["/bin/sh", "-ec", script], env=env, capture_output=True, text=True, timeout=90
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert hung.exists()  # the hang did happen
    assert "again in" in run.stderr  # the cut-off call failed the round: it ran again
    assert (tmp_path / "bucket" / "ready").exists()
    for who in ("worker", "api"):
        assert f"user {creds[f'{who}-user']} has policy kubevod-{who}" in run.stdout
