"""Helpers of the local-mode tests: the real ``kubevod`` command, run as a new
user would (``kubevod serve`` as a child process on a temporary data folder and
a free port, ``kubevod add``/``list``/``show`` as separate processes)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.media import make_video
from tests.fixtures.util import TESTENV_BIN, ServerProcess, free_port, require

KUBEVOD = str(Path(sys.executable).with_name("kubevod"))


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of every ``kubevod`` process the tests start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBEVOD_")}
    env["PATH"] = f"{TESTENV_BIN}:{env.get('PATH', '')}"
    env["KUBEVOD_X264_PRESET"] = "ultrafast"  # the worker's fastest preset keeps tests quick
    env["HOME"] = env.get("HOME", "/tmp")
    env.update(extra)
    return env


def kubevod(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one ``kubevod`` command to completion."""
    return subprocess.run(
        [KUBEVOD, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or cli_env(),
        check=False,
    )


def clip(path: Path, seconds: float = 3, **kwargs: Any) -> Path:
    """A small test video (320x180 testsrc2 + sine)."""
    require("ffmpeg")
    kwargs.setdefault("width", 320)
    kwargs.setdefault("height", 180)
    return make_video(path, seconds=seconds, **kwargs)


class LocalServer:
    """``kubevod serve --data DATA --port PORT [extra]`` as a child process."""

    def __init__(self, data: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [KUBEVOD, "serve", "--data", str(data), "--port", str(self.port), *extra]
        self.process = ServerProcess(
            "kubevod serve", argv, data.parent / f"serve-{self.port}.log", env=env or cli_env()
        )

    @property
    def pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid

    def start(self, timeout: float = 30) -> LocalServer:
        self.process.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.process.check_alive()
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"kubevod serve not up after {timeout} s:\n{self.process.log_tail()}")

    def stop(self) -> None:
        self.process.stop(timeout=30)

    def log(self) -> str:
        return self.process.log_tail(200)

    def video(self, video_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/api/videos/{video_id}", timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def video_offline(self, video_id: str) -> dict[str, Any]:
        """``kubevod show ID --json`` on the data folder (for when the server is down)."""
        done = kubevod("show", video_id, "--data", str(self.data), "--json")
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def videos(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/videos", params={"limit": 100}, timeout=10)
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def wait_for(
        self, video_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        video: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self.process.check_alive()
            video = self.video(video_id)
            if done(video):
                return video
            time.sleep(0.1)
        raise TimeoutError(f"video {video_id} not done after {timeout} s: {video}")


@contextlib.contextmanager
def nas_server(data: Path) -> Iterator[LocalServer]:
    """``kubevod serve`` on ``data`` with loopback allowed by the fetch guard, as a NAS on the
    home network would be: the tests' web servers are on loopback."""
    server = LocalServer(data, env=cli_env(KUBEVOD_FETCH_ALLOW="127.0.0.1/32")).start()
    try:
        yield server
    finally:
        server.stop()


def library(data: Path) -> list[dict[str, Any]]:
    """``kubevod list --json`` of a data folder (through its server if one runs)."""
    done = kubevod("list", "--json", "--data", str(data))
    assert done.returncode == 0, done.stderr
    items: list[dict[str, Any]] = json.loads(done.stdout)["items"]
    return items


def download_everything(base: str, video_id: str) -> int:
    """GET the master playlist, every media playlist, init segment and segment; returns bytes."""
    import m3u8

    total = 0
    with httpx.Client(base_url=base, timeout=10) as http:
        master_url = f"/v/{video_id}/master.m3u8"
        master = http.get(master_url)
        assert master.status_code == 200, master.text
        playlist = m3u8.loads(master.text, uri=base + master_url)
        uris = [p.absolute_uri for p in playlist.playlists]
        uris += [m.absolute_uri for m in playlist.media if m.uri]
        assert playlist.playlists, master.text
        for uri in uris:
            media = http.get(uri)
            assert media.status_code == 200, uri
            parsed = m3u8.loads(media.text, uri=uri)
            assert parsed.is_endlist, uri
            targets: Sequence[str] = [s.absolute_uri for s in parsed.segments]
            maps = {s.init_section.absolute_uri for s in parsed.segments if s.init_section}
            for target in [*maps, *targets]:
                got = http.get(target)
                assert got.status_code == 200 and got.content, target
                total += len(got.content)
    return total
