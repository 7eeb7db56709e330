"""The watch folder of ``kubevod serve --watch FOLDER``: new or changed video
files are added, each exactly once.

A file is picked up only when its size and mtime are the same in two
consecutive scans (so a file still being copied, written in chunks, is left
alone until the copy ends), it is not empty, it has a video extension, and it
is not hidden or a partial download (``.part``, ``.crdownload``, ``.tmp``).
The decision is a pure state machine (:class:`WatchState`) fed with
snapshots; :class:`FolderWatcher` is the thread that scans and ingests. What
was added is remembered in ``<data>/watch.json``, so a restart does not even
re-hash files it has already seen (the ingestor's content hash would
de-duplicate them anyway).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi", ".ts", ".m2ts", ".mts", ".mpg", ".mpeg"}
    | {".flv", ".wmv", ".ogv", ".3gp", ".mxf"}
)
PARTIAL_SUFFIXES = (".part", ".crdownload", ".tmp", ".partial", ".download", ".!qb")

#: (size in bytes, mtime in ns): what "unchanged" is measured by.
Signature = tuple[int, int]


def is_candidate(name: str) -> bool:
    """True when a file name looks like a finished video file (pure)."""
    lower = name.lower()
    if lower.startswith((".", "~")) or lower.endswith(PARTIAL_SUFFIXES):
        return False
    return os.path.splitext(lower)[1] in VIDEO_EXTENSIONS


@dataclass
class WatchState:
    """Which files are settling and which were already handed over (pure)."""

    #: Signature seen in the previous scan, per path.
    previous: dict[str, Signature] = field(default_factory=dict)
    #: Signature each path had when it was handed over.
    done: dict[str, Signature] = field(default_factory=dict)

    def scan(self, snapshot: Mapping[str, Signature]) -> list[str]:
        """Feed one scan; returns the paths to add now, in name order.

        A path is returned when its signature equals the previous scan's, its
        size is not 0, and it was not already handed over with that signature.
        Paths gone from the folder are forgotten from ``previous`` (but a file
        that comes back unchanged is not added again).
        """
        ready = [
            path
            for path, sig in sorted(snapshot.items())
            if sig[0] > 0 and self.previous.get(path) == sig and self.done.get(path) != sig
        ]
        self.previous = dict(snapshot)
        for path in ready:
            self.done[path] = snapshot[path]
        return ready


def snapshot(folder: Path) -> dict[str, Signature]:
    """Size and mtime of every candidate file directly in ``folder`` (and its subfolders)."""
    found: dict[str, Signature] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not is_candidate(name):
                continue
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:
                continue  # vanished between listing and stat
            found[path] = (st.st_size, st.st_mtime_ns)
    return found


def load_index(path: Path) -> dict[str, Signature]:
    """The ``done`` map saved by a previous run (empty when absent or unreadable)."""
    try:
        raw = json.loads(path.read_text())
        return {str(k): (int(v[0]), int(v[1])) for k, v in raw.items()}
    except (OSError, ValueError, TypeError, IndexError):
        return {}


def save_index(path: Path, done: Mapping[str, Signature]) -> None:
    """Write the ``done`` map atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: list(v) for k, v in sorted(done.items())}))
    tmp.replace(path)


class FolderWatcher:
    """Polls a folder on a thread and hands each settled video file to ``on_file`` once."""

    def __init__(
        self,
        folder: Path,
        on_file: Callable[[Path], None],
        *,
        interval: float = 2.0,
        index: Path | None = None,
    ) -> None:
        self.folder = folder
        self._on_file = on_file
        self._interval = interval
        self._index = index
        self._state = WatchState(done=load_index(index) if index else {})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling (the folder is created if missing)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name="kubevod-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and wait for the current scan to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def poll_once(self) -> list[str]:
        """One scan: hand over what has settled; returns the paths handed over."""
        ready = self._state.scan(snapshot(self.folder))
        self._handle(ready)
        return ready

    def _handle(self, paths: Iterable[str]) -> None:
        handed = False
        pending = list(paths)
        for n, path in enumerate(pending):
            if self._stop.is_set():  # not handed over: let the next run pick them up
                for rest in pending[n:]:
                    self._state.done.pop(rest, None)
                break
            handed = True
            try:
                self._on_file(Path(path))
            except Exception as exc:  # a bad file must not stop the watcher
                log.warning("watch folder: %s not added: %s", path, " ".join(str(exc).split()))
        if handed and self._index is not None:
            try:
                save_index(self._index, self._state.done)
            except OSError as exc:
                log.warning("watch folder: cannot save %s: %s", self._index, exc)

    def _loop(self) -> None:
        log.info("watching %s every %.1f s", self.folder, self._interval)
        while not self._stop.is_set():
            try:
                self.poll_once()
            except OSError as exc:
                log.warning("watch folder: scan failed: %s", exc)
            self._stop.wait(self._interval)
