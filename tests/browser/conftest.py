"""Fixtures of the real-browser tests: the real API (uvicorn in a thread) over a FileStore and a
SqliteCatalog, serving videos the real worker made.

- ``ui_backends``: the store and catalog, in one temporary folder for the session.
- ``ui_server``: the API and web UI on a free loopback port, for the session.
- ``ready_video``: an 8 s, 2-rung clip transcoded once per session (1 s segments).
- ``serve_api``: start another API server on the same backends (one a test may stop).
- ``transcode_in_background``: run the pipeline in a thread on a source read at its real
  speed (``ffmpeg -re``), like a camera or a slow disk, so the transcode takes as long as
  the clip.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kubevod.backends import open_catalog, open_store
from kubevod.catalog.base import Catalog
from kubevod.jobs import LadderRung, TranscodeJob
from kubevod.models import Video, VideoState
from kubevod.store.base import ObjectStore
from tests.fixtures.jobs import scheduled
from tests.fixtures.media import make_video
from tests.fixtures.util import require, serve_app

#: Two rungs far apart in bit rate, so "which rung is playing" is easy to tell under throttling.
LADDER = [LadderRung(height=360, bitrate=1_200_000), LadderRung(height=180, bitrate=160_000)]


@dataclass
class Backends:
    root: Path
    store: ObjectStore
    catalog: Catalog


@dataclass
class ApiServer:
    """A running API server; ``stop()`` makes its port refuse connections."""

    url: str
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Transcode:
    """A pipeline run in a background thread."""

    video_id: str
    thread: threading.Thread
    cancel: threading.Event
    error: list[BaseException] = field(default_factory=list)

    def wait(self, timeout: float = 120) -> None:
        self.thread.join(timeout=timeout)
        assert not self.thread.is_alive(), "transcode did not finish in time"
        if self.error:
            raise self.error[0]


def realtime_ffmpeg(folder: Path) -> str:
    """An ``ffmpeg`` that reads its input at native frame rate (``-re``): the real binary
    with one flag added, so a 12 s clip takes about 12 s to transcode."""
    wrapper = folder / "ffmpeg-realtime"
    wrapper.write_text(f'#!/bin/sh\nexec "{require("ffmpeg")}" -re "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def start_api(backends: Backends, *, chunks: Any = None, **settings: Any) -> ApiServer:
    """The real FastAPI app under uvicorn, in a daemon thread on a free port; ``chunks``: a
    ``ChunkScheduler`` (local mode's pool) that encodes on-demand segments when asked for."""
    from kubevod.api.app import create_app
    from kubevod.api.settings import ApiSettings

    app = create_app(
        ApiSettings(data_dir=backends.root, **settings),
        store=backends.store,
        catalog=backends.catalog,
        chunks=chunks,
    )
    served = serve_app(app)
    return ApiServer(url=served.url, server=served.server, thread=served.thread)


def new_video(catalog: Catalog, source: Path, title: str) -> Video:
    return catalog.create(Video(title=title, source=str(source), tags=["test"]))


def worker_settings(ffmpeg: str | None = None) -> Any:
    from kubevod.worker.settings import WorkerSettings

    return WorkerSettings(
        ffmpeg=ffmpeg or require("ffmpeg"), ffprobe=require("ffprobe"), x264_preset="ultrafast"
    )


def run_pipeline(
    video: Video,
    *,
    store: ObjectStore,
    catalog: Catalog,
    scratch: Path,
    cancel: threading.Event | None = None,
    ffmpeg: str | None = None,
) -> Video:
    """The real transcoder on ``video``'s source: 1 s segments, the two-rung ladder."""
    from kubevod.worker.pipeline import run

    job = TranscodeJob(video_id=video.id, source=video.source, segment_seconds=1.0, ladder=LADDER)
    result: Video = run(
        scheduled(catalog, job),
        store=store,
        catalog=catalog,
        scratch=scratch,
        cancel=cancel or threading.Event(),
        settings=worker_settings(ffmpeg),
    )
    return result


@pytest.fixture(scope="session")
def ui_backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    root = tmp_path_factory.mktemp("ui-data")
    store = open_store((root / "media").as_uri())
    catalog = open_catalog(f"sqlite://{root / 'catalog.db'}")
    yield Backends(root=root, store=store, catalog=catalog)
    catalog.close()


@pytest.fixture(scope="session")
def ui_server(ui_backends: Backends) -> Iterator[ApiServer]:
    server = start_api(ui_backends)
    yield server
    server.stop()


#: English subtitles of the session's clip (muxed as a mov_text track, exported as WebVTT).
SUBTITLES_SRT = """1
00:00:00,000 --> 00:00:04,000
Hello from the captions

2
00:00:04,000 --> 00:00:08,000
Second caption line
"""


@pytest.fixture(scope="session")
def ready_video(ui_backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Video:
    """An 8 s 640x360 clip with sound and English subtitles, transcoded by the real worker
    into 360p + 180p."""
    work = tmp_path_factory.mktemp("ready-video")
    srt = work / "subs.srt"
    srt.write_text(SUBTITLES_SRT)
    source = make_video(
        work / "clip.mp4",
        seconds=8,
        width=640,
        height=360,
        fps=30,
        extra_input_args=("-i", str(srt)),
        extra_output_args=(
            *("-map", "0:v", "-map", "1:a", "-map", "2:s"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
            *("-c:a", "aac", "-ac", "2", "-c:s", "mov_text", "-metadata:s:s:0", "language=eng"),
        ),
    )
    video = new_video(ui_backends.catalog, source, "Test pattern")
    run_pipeline(
        video, store=ui_backends.store, catalog=ui_backends.catalog, scratch=work / "scratch"
    )
    done = ui_backends.catalog.get(video.id)
    assert done.state == VideoState.READY, done.message
    return done


@pytest.fixture
def serve_api(ui_backends: Backends) -> Iterator[Callable[..., ApiServer]]:
    """Start extra API servers on the session's backends (``ApiSettings`` fields as keyword
    arguments); stopped after the test."""
    started: list[ApiServer] = []

    def start(**settings: Any) -> ApiServer:
        server = start_api(ui_backends, **settings)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def transcode_in_background(
    ui_backends: Backends, tmp_path: Path
) -> Iterator[Callable[..., Transcode]]:
    """Start the real pipeline on a new clip in a thread; cancelled and joined afterwards."""
    runs: list[Transcode] = []

    def start(*, seconds: float, title: str = "Growing") -> Transcode:
        source = make_video(tmp_path / f"src-{len(runs)}.mp4", seconds=seconds, fps=30)
        video = new_video(ui_backends.catalog, source, title)
        ffmpeg = realtime_ffmpeg(tmp_path)
        cancel = threading.Event()
        run = Transcode(video_id=video.id, thread=threading.Thread(), cancel=cancel)

        def target() -> None:
            try:
                run_pipeline(
                    video,
                    store=ui_backends.store,
                    catalog=ui_backends.catalog,
                    scratch=tmp_path / f"scratch-{video.id}",
                    cancel=cancel,
                    ffmpeg=ffmpeg,
                )
            except BaseException as exc:
                run.error.append(exc)

        run.thread = threading.Thread(target=target, name=f"transcode-{video.id}", daemon=True)
        run.thread.start()
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.cancel.set()
        run.thread.join(timeout=30)


@pytest.fixture(autouse=True)
def no_script_errors(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Fail a test whose page threw an uncaught JavaScript error."""
    errors: list[str] = []
    if "page" in request.fixturenames:
        request.getfixturevalue("page").on("pageerror", lambda exc: errors.append(str(exc)))
    yield errors
    assert errors == [], f"uncaught errors in the page: {errors}"
