"""The transcode pipeline on real backends: FileStore + SQLite, MinIO + the MongoDB-wire server.

Each run encodes a small clip with the real ffmpeg (ultrafast preset) and the
results are read back from the store with ffprobe (tests/integration/worker_media.py).
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubevod.worker.errors import Cancelled, TranscodeFailed
from kubevod.worker.pipeline import run
from kubevod.worker.settings import WorkerSettings
from kubevod.worker.thumbs import make_poster

from kubevod.backends import open_catalog, open_store
from kubevod.catalog.base import Catalog
from kubevod.catalog.sqlite import SqliteCatalog
from kubevod.errors import NotFound, SourceError
from kubevod.jobs import TranscodeJob
from kubevod.lifecycle import Lifecycle, queued_entry
from kubevod.models import VideoState, new_video_id
from kubevod.store.base import ObjectStore
from kubevod.store.file import FileStore
from tests.fixtures.jobs import scheduled
from tests.fixtures.media import make_video
from tests.fixtures.util import ROOT
from tests.integration.worker_media import check_playlists, check_ready_video, fast_settings

pytestmark = pytest.mark.integration


@dataclass
class Backends:
    store: ObjectStore
    catalog: Catalog
    store_url: str
    catalog_url: str


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """640x360 (two rungs: 360p, 240p), 5 s, with audio."""
    return make_video(tmp_path_factory.mktemp("src") / "clip.mp4", seconds=5)


@pytest.fixture
def local_backends(tmp_path: Path) -> Iterator[Backends]:
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    yield Backends(
        FileStore(tmp_path / "media"), catalog, f"file://{tmp_path}/media",
        f"sqlite:///{tmp_path}/catalog.db",
    )  # fmt: skip
    catalog.close()


def psnr(a: Path, b: Path) -> float:
    """Average PSNR (dB) of two same-sized images; inf when identical."""
    done = subprocess.run(
        [fast_settings().ffmpeg, "-hide_banner", "-i", str(a), "-i", str(b),
         "-filter_complex", "[0:v][1:v]psnr", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"PSNR .*average:([0-9.]+|inf)", done.stderr)
    assert found, done.stderr[-500:]
    return float(found.group(1))


@pytest.fixture(params=["file+sqlite", "minio+mongo"])
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backends]:
    if request.param == "file+sqlite":
        yield request.getfixturevalue("local_backends")
        return
    minio = request.getfixturevalue("minio")
    mongo_url = request.getfixturevalue("mongo_url")
    catalog = open_catalog(mongo_url)
    yield Backends(open_store(minio.store_url), catalog, minio.store_url, mongo_url)
    catalog.close()


def test_the_default_first_segment_is_half_a_second_in_every_rung_and_the_audio(
    local_backends: Backends, clip: Path, tmp_path: Path
) -> None:
    """The settings' default first segment (0.5 s: ffmpeg hands it over sooner, so a video
    is playable sooner) in every video rung; the audio joins on the same boundaries."""
    default = WorkerSettings.model_fields["first_segment_seconds"].default
    assert default == 0.5
    job = TranscodeJob(video_id=new_video_id(), source=str(clip), segment_seconds=2)
    video = run(
        scheduled(local_backends.catalog, job), store=local_backends.store,
        catalog=local_backends.catalog, scratch=tmp_path / "scratch",
        settings=fast_settings(first_segment_seconds=default),
    )  # fmt: skip
    starts = check_ready_video(
        video, local_backends.catalog, local_backends.store, tmp_path / "dl",
        segment_seconds=2, first=default,
    )  # fmt: skip
    assert starts["360p"] == pytest.approx([0.0, 0.5, 2.5, 4.5], abs=0.002)
    assert starts["audio"] == pytest.approx([0.0, 0.5, 2.5, 4.5], abs=0.03)


def test_ladder_is_complete_aligned_and_playable(
    backends: Backends, clip: Path, tmp_path: Path
) -> None:
    job = TranscodeJob(video_id=new_video_id(), source=str(clip), segment_seconds=2, title="Clip")
    seen: list[float] = []
    video = run(
        scheduled(backends.catalog, job), store=backends.store, catalog=backends.catalog,
        scratch=tmp_path / "scratch", on_progress=seen.append, settings=fast_settings(),
    )  # fmt: skip
    assert video == backends.catalog.get(job.video_id)
    assert video.title == "Clip" and video.accelerator == "software"
    assert [r.name for r in video.renditions] == ["360p", "240p", "audio"]
    assert [(r.width, r.height) for r in video.renditions[:2]] == [(640, 360), (426, 240)]
    assert video.duration == pytest.approx(5.0, abs=0.05)
    assert video.prefix.startswith(f"videos/{job.video_id}/g1-")
    starts = check_ready_video(
        video, backends.catalog, backends.store, tmp_path / "dl", segment_seconds=2
    )
    assert starts["360p"] == pytest.approx([0.0, 1.0, 3.0], abs=0.002)
    check_playlists(video, backends.catalog)
    assert seen == sorted(seen) and seen[-1] == 100.0
    # poster and trickplay (sprite sheets + WebVTT index)
    assert video.poster_key and backends.store.get(video.poster_key)[:2] == b"\xff\xd8"
    # ... the poster is the frame at 10% (0.5 s), as a seek into the source gives it
    poster = tmp_path / "poster.jpg"
    poster.write_bytes(backends.store.get(video.poster_key))
    seeked = make_poster(
        clip, tmp_path / "seeked.jpg", duration=5.0, width=640, height=360,
        ffmpeg=fast_settings().ffmpeg,
    )  # fmt: skip
    assert seeked is not None and psnr(poster, seeked) > 40
    assert video.trickplay is not None and video.trickplay.sheets == 1
    vtt = backends.store.get(video.trickplay.vtt_key).decode()
    assert vtt.startswith("WEBVTT") and vtt.count("0.jpg#xywh=") == 5
    assert backends.store.get(f"{video.media_prefix()}/trickplay/0.jpg")[:2] == b"\xff\xd8"
    assert not (tmp_path / "scratch").exists() or not any((tmp_path / "scratch").iterdir())


class RecordingCatalog(SqliteCatalog):
    """The real SQLite catalog, noting catalog and store contents when ``playable`` flips."""

    store: ObjectStore
    snapshot: dict[str, Any] | None = None

    def update(self, video_id: str, *, fence: Any = None, **fields: Any) -> Any:
        if fields.get("playable") is True and self.snapshot is None:
            video = self.get(video_id)
            names = [r.name for r in fields["renditions"]]
            firsts = {n: self.segments(video_id, n)[:1] for n in names}
            self.snapshot = {
                "state": video.state,
                "names": names,
                "first_segments": {n: [s.key for s in segs] for n, segs in firsts.items()},
                "in_store": all(self.store.stat(s[0].key).size > 0 for s in firsts.values() if s),
                "at": time.monotonic(),
            }
        return super().update(video_id, fence=fence, **fields)


def test_playable_while_encoding_with_the_first_segment_of_every_rendition(
    clip: Path, tmp_path: Path
) -> None:
    catalog = RecordingCatalog(tmp_path / "c.db")
    catalog.store = FileStore(tmp_path / "media")
    job = TranscodeJob(video_id=new_video_id(), source=str(clip), segment_seconds=2)
    started = time.monotonic()
    video = run(
        scheduled(catalog, job), store=catalog.store, catalog=catalog, settings=fast_settings()
    )
    snap = catalog.snapshot
    assert snap is not None and video.state == VideoState.READY
    assert snap["state"] == VideoState.TRANSCODING  # playable before the end
    assert snap["names"] == ["360p", "240p", "audio"]
    assert all(len(keys) == 1 for keys in snap["first_segments"].values()), snap
    assert snap["in_store"]
    # at most segment length + 2 s after the job starts (generous on a busy CI box)
    assert snap["at"] - started < 2 + 4


def newer_generation(backends: Backends, job: TranscodeJob) -> TranscodeJob:
    """The job of the next generation, moved to by the scheduler as the operator does."""
    newer = job.model_copy(update={"generation": job.generation + 1})
    Lifecycle(backends.catalog, backends.store).start_generation(queued_entry(newer))
    return newer


def test_rerun_of_the_same_job_replaces_everything_under_the_same_keys(
    local_backends: Backends, clip: Path, tmp_path: Path
) -> None:
    job = TranscodeJob(video_id=new_video_id(), source=str(clip), segment_seconds=2)
    first = run(
        scheduled(local_backends.catalog, job),
        store=local_backends.store,
        catalog=local_backends.catalog,
        settings=fast_settings(),
    )
    store = local_backends.store
    keys = sorted(o.key for o in store.list(first.media_prefix() + "/"))
    held = {key: store.get(key) for key in keys}  # what a cache may hold as immutable
    again = run(
        scheduled(local_backends.catalog, job),
        store=store,
        catalog=local_backends.catalog,
        settings=fast_settings(),
    )
    # The rerun wrote keys of its own: no key a cache holds changed meaning, and the
    # earlier attempt's objects went only once the new one was ready.
    relative = lambda video, k: k[len(video.media_prefix()) :]  # noqa: E731
    again_keys = sorted(o.key for o in store.list(again.media_prefix() + "/"))
    assert again.media_prefix() != first.media_prefix()
    assert [relative(again, k) for k in again_keys] == [relative(first, k) for k in keys]
    assert not set(again_keys) & set(held)
    assert not list(store.list(first.media_prefix() + "/"))
    check_ready_video(
        again, local_backends.catalog, local_backends.store, tmp_path, segment_seconds=2
    )
    # a new generation writes under a new prefix and drops the old one once ready
    newer = run(
        newer_generation(local_backends, job), store=local_backends.store,
        catalog=local_backends.catalog, settings=fast_settings(),
    )  # fmt: skip
    assert newer.media_prefix().startswith(f"videos/{job.video_id}/g2-")
    assert not list(local_backends.store.list(first.media_prefix() + "/"))
    check_ready_video(
        newer, local_backends.catalog, local_backends.store, tmp_path / "g2", segment_seconds=2
    )


def test_cancel_stops_ffmpeg_and_leaves_nothing_claiming_progress(
    local_backends: Backends, tmp_path: Path
) -> None:
    source = make_video(tmp_path / "long.mp4", seconds=20, width=640, height=360)
    job = TranscodeJob(video_id=new_video_id(), source=str(source))
    cancel = threading.Event()

    def cancel_when_playable() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not cancel.is_set():
            try:
                if local_backends.catalog.get(job.video_id).playable:
                    cancel.set()
            except Exception:
                pass
            time.sleep(0.02)

    watcher = threading.Thread(target=cancel_when_playable)
    watcher.start()
    with pytest.raises(Cancelled):
        run(scheduled(local_backends.catalog, job), store=local_backends.store,
            catalog=local_backends.catalog, cancel=cancel,
            settings=fast_settings(x264_preset="medium"))  # fmt: skip
    watcher.join()
    video = local_backends.catalog.get(job.video_id)
    assert video.state == VideoState.FAILED and not video.playable
    assert "cancelled" in video.message
    assert local_backends.catalog.segments(job.video_id) == []
    assert [o.key for o in local_backends.store.list(f"videos/{job.video_id}/")] == []
    leftover = subprocess.run(["pgrep", "-f", str(source)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "ffmpeg still running after cancel"


def test_a_hung_ffmpeg_is_stopped_and_the_video_fails_with_a_reason(
    local_backends: Backends, tmp_path: Path
) -> None:
    """ffmpeg frozen mid-run (SIGSTOP, as on a hung mount) ends ``failed``, not waited on forever.

    The real ffmpeg freezes itself through a small wrapper before the ladder encode starts;
    probing and the capability checks run normally.
    """
    source = make_video(tmp_path / "src.mp4", seconds=2, width=320, height=180)
    real = fast_settings().ffmpeg
    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(
        f'#!/bin/sh\ncase "$*" in *-progress*) kill -STOP $$ ;; esac\nexec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    job = TranscodeJob(video_id=new_video_id(), source=str(source))
    settings = fast_settings(ffmpeg=str(wrapper), stall_timeout=1, kill_grace=0.5)
    started = time.monotonic()
    with pytest.raises(TranscodeFailed, match="no progress for 1 s"):
        run(
            scheduled(local_backends.catalog, job),
            store=local_backends.store,
            catalog=local_backends.catalog,
            settings=settings,
        )
    assert time.monotonic() - started < 30
    video = local_backends.catalog.get(job.video_id)
    assert video.state == VideoState.FAILED and not video.playable
    assert "no progress for 1 s" in video.message
    assert local_backends.catalog.segments(job.video_id) == []
    assert [o.key for o in local_backends.store.list(f"videos/{job.video_id}/")] == []
    logs = [o.key for o in local_backends.store.list(f"logs/{job.video_id}/")]
    assert all(key.endswith("/ffmpeg.log") for key in logs)  # private, outside videos/
    leftover = subprocess.run(["pgrep", "-f", str(wrapper)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "the frozen ffmpeg was left behind"


def _worker_env(backends: Backends, job: TranscodeJob) -> dict[str, str]:
    env = dict(os.environ)
    env.update(job.to_env())
    env["KUBEVOD_CATALOG_URL"] = backends.catalog_url
    env["KUBEVOD_STORE_URL"] = backends.store_url
    env["KUBEVOD_X264_PRESET"] = "ultrafast"
    env["KUBEVOD_FFMPEG"] = fast_settings().ffmpeg
    env["KUBEVOD_FFPROBE"] = fast_settings().ffprobe
    return env


def test_worker_entry_point_survives_sigkill_and_a_rerun_completes(
    local_backends: Backends, tmp_path: Path
) -> None:
    """A Job pod killed mid-encode (SIGKILL) and started again ends with a complete result."""
    source = make_video(tmp_path / "src.mp4", seconds=12, width=640, height=360)
    job = TranscodeJob(video_id=new_video_id(), source=str(source), segment_seconds=2)
    env = _worker_env(local_backends, scheduled(local_backends.catalog, job))
    argv = [sys.executable, "-m", "kubevod.worker.main"]
    env["KUBEVOD_X264_PRESET"] = "medium"  # slow enough to be killed half-way
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if local_backends.catalog.segments(job.video_id, "240p")[1:]:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert local_backends.catalog.get(job.video_id).state == VideoState.TRANSCODING  # the crash
    time.sleep(1.0)  # the orphaned ffmpeg dies on its closed progress pipe
    env["KUBEVOD_X264_PRESET"] = "ultrafast"
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "progress" in done.stdout and f"ready {job.video_id}" in done.stdout
    video = local_backends.catalog.get(job.video_id)
    # The entry point runs on the settings' defaults: a 0.5 s first segment.
    check_ready_video(
        video, local_backends.catalog, local_backends.store, tmp_path / "dl", segment_seconds=2,
        first=0.5,
    )  # fmt: skip
    assert video.duration == pytest.approx(12.0, abs=0.05)


def test_worker_entry_point_exit_codes(local_backends: Backends, tmp_path: Path) -> None:
    bad = tmp_path / "not-a-video.mp4"
    bad.write_text("hello, I am text\n" * 100)
    job = TranscodeJob(video_id=new_video_id(), source=str(bad))
    argv = [sys.executable, "-m", "kubevod.worker.main"]
    # A Job for a video that is not in the catalog (deleted before its pod started):
    # the worker stops with the reason, creates no entry and writes no object.
    done = subprocess.run(argv, env=_worker_env(local_backends, job), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert f"video {job.video_id} is not in the catalog" in done.stderr
    with pytest.raises(NotFound):
        local_backends.catalog.get(job.video_id)
    assert list(local_backends.store.list("")) == []
    env = _worker_env(local_backends, scheduled(local_backends.catalog, job))
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    video = local_backends.catalog.get(job.video_id)
    assert video.state == VideoState.FAILED and "\n" not in video.message
    env = _worker_env(local_backends, job)
    env["KUBEVOD_STORE_URL"] = ""
    assert subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, timeout=60).returncode == 1
    env = _worker_env(local_backends, job)
    env["KUBEVOD_JOB"] = "{not json"
    assert subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, timeout=60).returncode == 2


def test_bad_source_marks_failed_and_raises_source_error(
    local_backends: Backends, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    job = TranscodeJob(video_id=new_video_id(), source=str(empty), title="Empty")
    with pytest.raises(SourceError, match="empty"):
        run(
            scheduled(local_backends.catalog, job),
            store=local_backends.store,
            catalog=local_backends.catalog,
            settings=fast_settings(),
        )
    video = local_backends.catalog.get(job.video_id)
    assert (video.state, video.title, video.playable) == (VideoState.FAILED, "Empty", False)
    assert video.message == "the source file is empty (0 bytes)"


def test_a_gpu_that_fails_mid_encode_falls_back_to_software(
    local_backends: Backends, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GPU is mocked: the trial is made to pass for VAAPI, which this machine lacks,
    so the real ffmpeg fails to open the device and the pipeline must encode in software."""
    from kubevod.worker import hwaccel

    monkeypatch.setattr(hwaccel, "choose", lambda *a, **k: hwaccel.HwChoice("vaapi", "mocked GPU"))
    prefixes: list[str] = []
    real_update = local_backends.catalog.update

    def update(video_id: str, **changes: Any) -> Any:
        if changes.get("prefix"):
            prefixes.append(changes["prefix"])
        return real_update(video_id, **changes)

    monkeypatch.setattr(local_backends.catalog, "update", update)
    job = TranscodeJob(video_id=new_video_id(), source=str(clip), accelerator="vaapi")
    video = run(
        scheduled(local_backends.catalog, job),
        store=local_backends.store,
        catalog=local_backends.catalog,
        settings=fast_settings(),
    )
    assert video.state == VideoState.READY and video.accelerator == "software"
    assert [r.name for r in video.renditions] == ["360p", "240p", "audio"]
    # The software attempt wrote keys of its own: nothing the GPU attempt may have
    # published (and a cache may hold as immutable) was rewritten.
    gpu, software = prefixes
    assert gpu != software == video.prefix
    assert not list(local_backends.store.list(gpu + "/"))


class ProgressCatalog(SqliteCatalog):
    """The real SQLite catalog, noting when each progress write happens (to check the rate)."""

    writes: list[tuple[float, float]]

    def set_progress(
        self, video_id: str, progress: float, *, speed: float | None = None, fence: Any = None
    ) -> None:
        self.writes.append((time.monotonic(), progress))
        super().set_progress(video_id, progress, speed=speed, fence=fence)


def test_progress_rises_steadily_while_encoding(tmp_path: Path) -> None:
    """The bar moves during the encode (not 0 % then 95 %), never backwards, 100 only at ready.

    Debian's ffmpeg 5.1 writes no -progress report until the end while the one command
    also makes trickplay sheets; the segments already uploaded must carry the progress.
    """
    source = make_video(tmp_path / "eight.mp4", seconds=8, width=1280, height=720)
    catalog = ProgressCatalog(tmp_path / "c.db")
    catalog.writes = []
    job = TranscodeJob(video_id=new_video_id(), source=str(source), segment_seconds=1)
    seen: list[tuple[VideoState, float]] = []
    stop = threading.Event()

    def watch() -> None:  # what `kubevod add` and the library poll
        while not stop.is_set():
            try:
                video = catalog.get(job.video_id)
                seen.append((video.state, video.progress))
            except Exception:
                pass
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        video = run(scheduled(catalog, job), store=FileStore(tmp_path / "media"), catalog=catalog,
                    settings=fast_settings(progress_interval=0.15))  # fmt: skip
    finally:
        stop.set()
        watcher.join()
        catalog.close()
    assert video.state == VideoState.READY and video.progress == 100.0
    progress = [p for _, p in seen]
    assert progress == sorted(progress), "progress went backwards"
    middle = sorted({p for s, p in seen if s == VideoState.TRANSCODING and 0 < p < 100})
    assert len(middle) >= 3, (middle, catalog.writes)
    assert len([p for p in middle if p < 95]) >= 2, "risen before the encode ended"
    assert all(p < 100 for s, p in seen if s != VideoState.READY)
    times = [t for t, _ in catalog.writes]
    assert len(times) >= 3
    # at most one write per progress_interval (0.5 s by default, 0.15 s here to sample a
    # 1-2 s encode finely); the last one (end of the encode) may come sooner
    assert all(b - a >= 0.14 for a, b in itertools.pairwise(times[:-1])), times
