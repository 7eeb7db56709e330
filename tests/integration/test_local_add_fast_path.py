"""``kubevod add``'s path before the transcode starts: the add-time check probes a file
once (the transcode takes its answer), de-duplication by content stays exact, and the
CLI talking to a server imports none of the server, catalog, store or worker modules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubevod.worker import probe as worker_probe

from kubevod.backends import open_catalog, open_store
from kubevod.errors import SourceError
from kubevod.jobs import IngestRequest
from kubevod.lifecycle import Lifecycle
from kubevod.local.ingest import LocalIngestor
from kubevod.local.settings import DataLayout, read_server_file
from kubevod.models import TranscodePolicy
from tests.fixtures.jobs import RecordingRunner
from tests.integration.local_mode import cli_env, clip

pytestmark = pytest.mark.integration

NO_FFPROBE = "/nonexistent/ffprobe"


@pytest.fixture
def ingest(tmp_path: Path) -> Iterator[tuple[LocalIngestor, RecordingRunner]]:
    worker_probe._remembered.clear()
    catalog = open_catalog(f"sqlite://{tmp_path / 'catalog.db'}")
    store = open_store((tmp_path / "media").as_uri())
    runner = RecordingRunner()
    ffprobe = shutil.which("ffprobe", path=cli_env()["PATH"])
    try:
        yield LocalIngestor(catalog=catalog, store=store, runner=runner, ffprobe=ffprobe), runner
    finally:
        catalog.close()


def test_the_transcode_takes_the_add_time_probe_instead_of_probing_again(
    ingest: tuple[LocalIngestor, RecordingRunner], tmp_path: Path
) -> None:
    ingestor, runner = ingest
    source = clip(tmp_path / "holiday.mp4", seconds=2)

    video = ingestor.ingest(IngestRequest(source=str(source)))

    (job,) = runner.jobs
    assert job.video_id == video.id and job.source == str(source)
    info = worker_probe.probe(Path(job.source), ffprobe=NO_FFPROBE)  # no ffprobe runs
    assert info.duration == pytest.approx(2, abs=0.2) and info.video.width == 320
    ffprobe = shutil.which("ffprobe", path=cli_env()["PATH"])
    assert ffprobe and info == worker_probe.probe(source, ffprobe=ffprobe)  # what it would say


def test_the_same_bytes_elsewhere_are_the_same_video_and_a_changed_file_a_new_one(
    ingest: tuple[LocalIngestor, RecordingRunner], tmp_path: Path
) -> None:
    ingestor, runner = ingest
    source = clip(tmp_path / "holiday.mp4", seconds=2)
    first = ingestor.ingest(IngestRequest(source=str(source)))
    copy = shutil.copy(source, tmp_path / "holiday-copy.mkv")

    assert ingestor.ingest(IngestRequest(source=str(copy))).id == first.id
    assert ingestor.ingest(IngestRequest(source=str(source))).id == first.id
    assert len(runner.jobs) == 1

    clip(source, seconds=3)  # new bytes at the same path
    changed = ingestor.ingest(IngestRequest(source=str(source)))
    assert changed.id != first.id and len(runner.jobs) == 2
    info = worker_probe.probe(source, ffprobe=NO_FFPROBE)  # the new file's probe
    assert info.duration == pytest.approx(3, abs=0.2)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("notes.mp4", b"just some text, not a video\n" * 50, "not a readable video: "),
        (
            "movie.mp4",
            b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nhttp://x/a.ts\n",
            "not a readable video: ",
        ),
        ("broken.mp4", None, "not a readable video: "),
    ],
)
def test_a_file_that_is_not_a_video_fails_at_once_and_leaves_nothing(
    ingest: tuple[LocalIngestor, RecordingRunner],
    tmp_path: Path,
    name: str,
    content: bytes | None,
    reason: str,
) -> None:
    ingestor, runner = ingest
    bad = tmp_path / name
    if content is None:  # a truncated mp4: no moov atom
        content = clip(tmp_path / "whole.mp4", seconds=2).read_bytes()[:2000]
    bad.write_bytes(content)

    with pytest.raises(SourceError) as raised:
        ingestor.ingest(IngestRequest(source=str(bad)))

    assert str(raised.value).startswith(f"{bad}: {reason}")  # the wording of before
    assert runner.jobs == [] and not worker_probe._remembered


# -- the transcode policy ------------------------------------------------------------------

EAGER, ON_DEMAND = TranscodePolicy.EAGER, TranscodePolicy.ON_DEMAND


def test_the_job_takes_the_requests_policy_else_the_servers_default(tmp_path: Path) -> None:
    catalog = open_catalog(f"sqlite://{tmp_path / 'catalog.db'}")
    store = open_store((tmp_path / "media").as_uri())
    runner = RecordingRunner()
    ffprobe = shutil.which("ffprobe", path=cli_env()["PATH"])
    ingestor = LocalIngestor(
        catalog=catalog, store=store, runner=runner, ffprobe=ffprobe, default_policy=ON_DEMAND
    )
    try:
        plain = ingestor.ingest(IngestRequest(source=str(clip(tmp_path / "a.mp4", seconds=1))))
        eager = ingestor.ingest(
            IngestRequest(source=str(clip(tmp_path / "b.mp4", seconds=2)), policy=EAGER)
        )
        jobs = [(job.video_id, job.policy) for job in runner.jobs]
        # Listed with its policy before any transcode has started.
        recorded = [catalog.get(video.id).policy for video in (plain, eager)]
    finally:
        catalog.close()

    assert jobs == [(plain.id, ON_DEMAND), (eager.id, EAGER)]
    assert recorded == [ON_DEMAND, EAGER]


def test_a_failed_video_added_again_on_demand_is_retried_on_demand(tmp_path: Path) -> None:
    catalog = open_catalog(f"sqlite://{tmp_path / 'catalog.db'}")
    store = open_store((tmp_path / "media").as_uri())
    runner = RecordingRunner()
    ffprobe = shutil.which("ffprobe", path=cli_env()["PATH"])
    ingestor = LocalIngestor(catalog=catalog, store=store, runner=runner, ffprobe=ffprobe)
    source = str(clip(tmp_path / "holiday.mp4", seconds=1))
    try:
        first = ingestor.ingest(IngestRequest(source=source))
        # Not failed: adding it again, whatever the policy, returns it as it is.
        assert ingestor.ingest(IngestRequest(source=source, policy=ON_DEMAND)).policy == EAGER
        Lifecycle(catalog, store).fail(catalog.get(first.id), "ffmpeg exited with 1")
        retried = ingestor.ingest(IngestRequest(source=source, policy=ON_DEMAND))
        stored = catalog.get(first.id)
    finally:
        catalog.close()

    assert retried.id == first.id and stored.policy == ON_DEMAND
    assert [(job.video_id, job.policy) for job in runner.jobs] == [
        (first.id, EAGER),
        (first.id, ON_DEMAND),
    ]


# -- the CLI's imports ---------------------------------------------------------------------

#: What ``kubevod add`` through a server must not import (half a second, together).
HEAVY = (
    "kubevod.local.server", "kubevod.backends", "kubevod.catalog", "kubevod.store",
    "kubevod.lifecycle", "kubevod.worker", "kubevod.api", "uvicorn", "fastapi", "pymongo",
    "minio", "opentelemetry.sdk", "httpx", "httpcore",
)  # fmt: skip

VIDEO = {"id": "0123456789ab", "title": "holiday", "state": "ready", "playable": True}


class _Api(BaseHTTPRequestHandler):
    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(202, VIDEO)

    def do_GET(self) -> None:
        self._answer(200, VIDEO)

    def log_message(self, *args: object) -> None:
        pass


def test_add_through_a_server_imports_none_of_the_server_catalog_store_or_worker(
    tmp_path: Path,
) -> None:
    api = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{api.server_address[1]}"
    data = tmp_path / "data"
    data.mkdir()
    (data / "server.json").write_text(json.dumps({"url": url, "pid": os.getpid()}))
    source = tmp_path / "holiday.mp4"
    source.write_bytes(b"not looked at by the CLI")
    modules = tmp_path / "modules.json"
    save = f"open({str(modules)!r}, 'w').write(json.dumps(sorted(sys.modules)))"
    script = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: {save})\n"
        "from kubevod.cli import app\n"
        f"app(['add', {str(source)!r}, '--data', {str(data)!r}])\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
            env=cli_env(), check=False,
        )  # fmt: skip
    finally:
        api.shutdown()
    assert done.returncode == 0, done.stderr
    assert "holiday (id 0123456789ab)" in done.stdout and "Ready" in done.stdout
    imported = json.loads(modules.read_text())
    assert [m for m in imported if m.startswith(HEAVY)] == []


def test_server_json_counts_only_while_its_server_lives(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    cases = [
        None,
        "not json",
        json.dumps({"url": "http://127.0.0.1:1"}),
        json.dumps({"url": "http://127.0.0.1:1", "pid": "x"}),
        json.dumps({"url": "http://127.0.0.1:1", "pid": int(gone.stdout)}),
        json.dumps({"url": "http://127.0.0.1:8080", "pid": os.getpid()}),
    ]
    for text in cases:
        layout.server_file.unlink(missing_ok=True)
        if text is not None:
            layout.server_file.write_text(text)
        expected = (
            {"url": "http://127.0.0.1:8080", "pid": os.getpid()}
            if text and "8080" in text
            else None
        )
        assert read_server_file(layout) == expected, text


def test_a_started_pool_learns_this_ffmpeg_before_the_first_video_is_added(
    tmp_path: Path,
) -> None:
    """The first add after ``kubevod serve`` starts must not wait for ``ffmpeg -filters``
    (and, on a machine with a GPU, its trial encode): the pool asks while idle."""
    from kubevod.worker import hwaccel
    from kubevod.worker.settings import WorkerSettings

    from kubevod.local.pool import LocalPool

    real = shutil.which("ffmpeg", path=cli_env()["PATH"])
    assert real is not None
    calls = tmp_path / "calls.log"
    ffmpeg = tmp_path / "ffmpeg"
    ffmpeg.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    ffmpeg.chmod(0o755)
    hwaccel.clear_cache()
    catalog = open_catalog(f"sqlite://{tmp_path / 'catalog.db'}")
    store = open_store((tmp_path / "media").as_uri())
    pool = LocalPool(
        store=store, catalog=catalog, scratch=tmp_path / "scratch",
        worker_settings=WorkerSettings(ffmpeg=str(ffmpeg)),
    )  # fmt: skip
    try:
        pool.start()
        deadline = time.monotonic() + 30
        while any(t.name == "kubevod-pool-prepare" for t in threading.enumerate()):
            assert time.monotonic() < deadline, "the pool is still preparing after 30 s"
            time.sleep(0.05)
        asked = calls.read_text()
        assert "-filters" in asked  # before any video was added
        assert hwaccel.scaler(str(ffmpeg)) == "zscale"  # Debian's ffmpeg has zimg
        assert calls.read_text() == asked  # answered from what the pool learnt
    finally:
        pool.shutdown(timeout=10)
        catalog.close()
        hwaccel.clear_cache()


def test_the_clients_requests_carry_the_prefix_query_body_and_token(tmp_path: Path) -> None:
    """The CLI's own small HTTP client (``kubevod.local.client.request``): what a server
    behind a path prefix receives, its answer read whole, and a server that is gone."""
    seen: list[tuple[str, str, str, bytes]] = []

    class Echo(BaseHTTPRequestHandler):
        def _echo(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            seen.append((self.command, self.path, self.headers.get("Authorization", ""), body))
            out = json.dumps({"path": self.path}).encode()
            self.send_response(404 if "missing" in self.path else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_DELETE = _echo

        def log_message(self, *args: object) -> None:
            pass

    from kubevod.errors import NotFound, Unavailable
    from kubevod.local.client import HttpError, HttpLibrary, request

    api = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{api.server_address[1]}/kubevod/"
    try:
        library = HttpLibrary(base, token="t0ken")
        assert library.list(query="a b&c", limit=5, offset=10) == {
            "path": "/kubevod/api/videos?limit=5&offset=10&q=a+b%26c"
        }
        library.add(IngestRequest(source="/films/x.mp4", title="X"))
        method, path, auth, body = seen[-1]
        assert (method, path, auth) == ("POST", "/kubevod/api/videos", "Bearer t0ken")
        assert json.loads(body)["source"] == "/films/x.mp4" and "policy" not in json.loads(body)
        with pytest.raises(NotFound):
            library.get("missing")
        library.remove("abc")
        assert seen[-1][:2] == ("DELETE", "/kubevod/api/videos/abc")
    finally:
        api.shutdown()
        api.server_close()
    with pytest.raises(Unavailable, match="cannot reach the server"):
        HttpLibrary(base, timeout=2).get("abc")  # nothing listens there now
    with pytest.raises(HttpError, match="not an http"):
        request("ftp://127.0.0.1/", "GET", "/x")
