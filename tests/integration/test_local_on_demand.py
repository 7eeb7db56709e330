"""The switches of on-demand transcoding in local mode, as a user flips them:
``kubevod add --on-demand`` (through a running server and on the data folder
directly), ``kubevod serve --on-demand`` and the watch folder, which registers
files on demand unless told otherwise. What is checked is the policy of the
transcode each one submits and of the video the library lists."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubevod.backends import open_catalog, open_store
from kubevod.jobs import TranscodeJob
from kubevod.local.ingest import LocalIngestor
from kubevod.models import TranscodePolicy
from tests.fixtures.jobs import RecordingRunner
from tests.fixtures.util import serve_app
from tests.integration.local_mode import LocalServer, cli_env, clip, kubevod

pytestmark = pytest.mark.integration


def _added(*args: str) -> dict[str, Any]:
    done = kubevod("add", *args, "--json")
    assert done.returncode == 0, done.stderr
    video: dict[str, Any] = json.loads(done.stdout)
    return video


# -- kubevod add --------------------------------------------------------------------------


def test_add_on_demand_without_a_server_submits_an_on_demand_transcode(tmp_path: Path) -> None:
    """No server: ``add`` transcodes in this process; the pool gets an on-demand job."""
    source = clip(tmp_path / "film.mp4", seconds=1)
    data = tmp_path / "data"
    jobs = tmp_path / "jobs.jsonl"
    # The real CLI, ingestor and pool; only the transcode itself is a stand-in that
    # records its job and says the video is ready.
    script = (
        "import sys, types\n"
        "from kubevod.models import VideoState\n"
        "def run(job, *, catalog, **_):\n"
        f"    with open({str(jobs)!r}, 'a') as out:\n"
        "        out.write(job.model_dump_json() + '\\n')\n"
        "    return catalog.update(job.video_id, state=VideoState.READY, playable=True)\n"
        "stub = types.ModuleType('kubevod.worker.pipeline')\n"
        "stub.run = run\n"
        "sys.modules['kubevod.worker.pipeline'] = stub\n"
        "from kubevod.cli import app\n"
        f"app(['add', {str(source)!r}, '--on-demand', '--data', {str(data)!r}, '--json'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        env=cli_env(), check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    video = json.loads(done.stdout)
    (job,) = [TranscodeJob.model_validate_json(line) for line in jobs.read_text().splitlines()]
    assert (job.video_id, job.policy) == (video["id"], TranscodePolicy.ON_DEMAND)
    assert (video["state"], video["policy"]) == ("ready", "onDemand")
    assert "On demand: the rest is encoded when it is watched." in done.stderr
    shown = kubevod("show", video["id"], "--data", str(data))
    assert shown.returncode == 0, shown.stderr
    assert any(line.split() == ["policy", "onDemand"] for line in shown.stdout.splitlines())


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, RecordingRunner]]:
    """The real app under uvicorn on loopback, with the local ingestor (default: eager)
    and a runner that records what it is given."""
    from kubevod.api.app import create_app
    from kubevod.api.settings import ApiSettings

    catalog = open_catalog(f"sqlite://{tmp_path / 'catalog.db'}")
    store = open_store((tmp_path / "media").as_uri())
    runner = RecordingRunner()
    ffprobe = shutil.which("ffprobe", path=cli_env()["PATH"])
    ingestor = LocalIngestor(catalog=catalog, store=store, runner=runner, ffprobe=ffprobe)
    app = create_app(
        ApiSettings(data_dir=tmp_path), store=store, catalog=catalog, ingestor=ingestor
    )
    served = serve_app(app)
    try:
        yield served.url, runner
    finally:
        served.stop()
        catalog.close()


def test_add_on_demand_through_a_server_sends_the_policy_and_plain_add_leaves_it_to_the_server(
    api: tuple[str, RecordingRunner], tmp_path: Path
) -> None:
    url, runner = api
    film = clip(tmp_path / "film.mp4", seconds=1)
    other = clip(tmp_path / "other.mp4", seconds=2)

    asked = _added(str(film), "--on-demand", "--server", url, "--no-wait")
    plain = _added(str(other), "--server", url, "--no-wait")

    assert [(job.video_id, job.policy) for job in runner.jobs] == [
        (asked["id"], TranscodePolicy.ON_DEMAND),
        (plain["id"], TranscodePolicy.EAGER),  # the server's default
    ]
    assert (asked["policy"], plain["policy"]) == ("onDemand", "eager")


# -- kubevod serve ------------------------------------------------------------------------


def _watched(server: LocalServer, path: Path, timeout: float = 30) -> dict[str, Any]:
    """The video the watch folder made of ``path``, once it is listed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [v for v in server.videos() if v["source"] == str(path)]
        if found:
            return found[0]
        time.sleep(0.2)
    raise TimeoutError(f"{path.name} was not added by the watch folder:\n{server.log()}")


@pytest.mark.slow
def test_serve_adds_eagerly_and_watches_on_demand_by_default(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    film = clip(tmp_path / "film.mp4", seconds=1)
    asked = clip(tmp_path / "asked.mp4", seconds=2)
    env = cli_env(KUBEVOD_WATCH_INTERVAL="0.2")
    server = LocalServer(tmp_path / "data", "--watch", str(inbox), env=env).start()
    try:
        plain = _added(str(film), "--server", server.url, "--no-wait")
        on_demand = _added(str(asked), "--on-demand", "--server", server.url, "--no-wait")
        shutil.copy(clip(tmp_path / "nas-film.mp4", seconds=3), inbox / "nas-film.mp4")
        watched = _watched(server, inbox / "nas-film.mp4")
    finally:
        server.stop()

    assert (plain["policy"], on_demand["policy"], watched["policy"]) == (
        "eager",
        "onDemand",
        "onDemand",
    )


@pytest.mark.slow
def test_serve_on_demand_makes_it_the_default_and_the_watch_policy_is_its_own(
    tmp_path: Path,
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    film = clip(tmp_path / "film.mp4", seconds=1)
    asked = clip(tmp_path / "asked.mp4", seconds=2)
    env = cli_env(KUBEVOD_WATCH_INTERVAL="0.2", KUBEVOD_WATCH_POLICY="eager")
    server = LocalServer(tmp_path / "data", "--on-demand", "--watch", str(inbox), env=env)
    server.start()
    try:
        plain = _added(str(film), "--server", server.url, "--no-wait")
        eager = _added(str(asked), "--eager", "--server", server.url, "--no-wait")
        shutil.copy(clip(tmp_path / "nas-film.mp4", seconds=3), inbox / "nas-film.mp4")
        watched = _watched(server, inbox / "nas-film.mp4")
        log = server.log()
    finally:
        server.stop()

    assert (plain["policy"], eager["policy"], watched["policy"]) == ("onDemand", "eager", "eager")
    assert "encoded as they are watched" in log
