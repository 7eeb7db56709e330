"""The probe local mode's add-time check leaves for the transcode: taken once, and only
while the file is unchanged (kubevod.worker.probe.remember / probe)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kubevod.worker import probe as worker_probe
from kubevod.worker.probe import SourceInfo, file_identity, parse_probe, probe, remember

#: Running this would fail: a probe that returns did not run ffprobe.
NO_FFPROBE = "/nonexistent/ffprobe"


def _info(path: Path) -> SourceInfo:
    data = {
        "format": {"duration": "12.5", "format_name": "mov,mp4"},
        "streams": [{"codec_type": "video", "index": 0, "width": 640, "height": 360}],
    }
    return parse_probe(data, str(path))


@pytest.fixture(autouse=True)
def _forget() -> None:
    worker_probe._remembered.clear()


def test_a_remembered_probe_is_taken_once_without_running_ffprobe(tmp_path: Path) -> None:
    source = tmp_path / "a.mp4"
    source.write_bytes(b"x" * 1000)
    remember(file_identity(source), _info(source))

    assert probe(source, ffprobe=NO_FFPROBE).duration == 12.5
    with pytest.raises(FileNotFoundError):  # taken already: ffprobe runs again
        probe(source, ffprobe=NO_FFPROBE)


def test_a_changed_file_is_probed_again(tmp_path: Path) -> None:
    source = tmp_path / "a.mp4"
    source.write_bytes(b"x" * 1000)
    remember(file_identity(source), _info(source))
    source.write_bytes(b"y" * 1000)  # same size, new bytes: the change time moves
    os.utime(source, ns=(1, 1))

    with pytest.raises(FileNotFoundError):
        probe(source, ffprobe=NO_FFPROBE)


def test_another_path_to_the_same_file_is_probed_again(tmp_path: Path) -> None:
    source = tmp_path / "a.mp4"
    source.write_bytes(b"x" * 1000)
    (tmp_path / "b.mp4").hardlink_to(source)
    remember(file_identity(source), _info(source))

    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "b.mp4", ffprobe=NO_FFPROBE)


def test_remembered_probes_expire_and_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "a.mp4"
    source.write_bytes(b"x" * 1000)
    monkeypatch.setattr(worker_probe, "REMEMBER_SECONDS", -1.0)
    remember(file_identity(source), _info(source))
    with pytest.raises(FileNotFoundError):
        probe(source, ffprobe=NO_FFPROBE)

    monkeypatch.setattr(worker_probe, "REMEMBER_SECONDS", 600.0)
    for n in range(worker_probe.REMEMBER_MAX + 5):
        remember(("other", n), _info(source))
    assert len(worker_probe._remembered) == worker_probe.REMEMBER_MAX
    assert ("other", 0) not in worker_probe._remembered  # the oldest went first


def test_an_empty_file_is_refused_before_anything_remembered(tmp_path: Path) -> None:
    source = tmp_path / "a.mp4"
    source.write_bytes(b"")
    remember(file_identity(source), _info(source))

    with pytest.raises(Exception, match="empty"):
        probe(source, ffprobe=NO_FFPROBE)
