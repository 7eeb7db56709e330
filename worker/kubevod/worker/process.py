"""Run one ffmpeg: progress read on a thread, stderr to a log file, stop on request.

A thin shell around ``subprocess.Popen``: the argv comes from the pure builders
in ``kubevod.worker.ffmpeg``, the progress lines go through
``kubevod.worker.progress``. Stopping is SIGTERM, then SIGKILL after a grace
period; ffmpeg gets its own process group so nothing it spawns outlives it.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from kubevod.worker.progress import ProgressParser, ProgressUpdate

LOG_TAIL_LINES = 30
#: glibc malloc tuning for ffmpeg: keep freed frame and segment buffers for reuse instead
#: of handing them back to the kernel and faulting fresh zeroed pages in again (that
#: zeroing was ~7% of the CPU of a 1080p ladder; bench/transcode.py measures it).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "268435456", "MALLOC_TRIM_THRESHOLD_": "1073741824"}


#: What ffmpeg and ffprobe may see of the worker's environment. Everything else stays
#: behind, above all KUBEVOD_STORE_URL and KUBEVOD_CATALOG_URL (credentials): a decoder
#: bug exploited by a hostile file must find no secret to take (docs/security.md).
ENV_KEEP = frozenset(
    {"PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "TZ", "TMPDIR", "HOME",
     "LD_LIBRARY_PATH", "LIBVA_DRIVER_NAME", "LIBVA_DRIVERS_PATH", "LIBVA_MESSAGING_LEVEL",
     "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "SSL_CERT_FILE"}
)  # fmt: skip
#: Hardware runtimes read these (device selection, driver capabilities; never secrets).
ENV_KEEP_PREFIXES = ("NVIDIA_", "ONEVPL_", "MFX_", "INTEL_MEDIA_")


def ffmpeg_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment ffmpeg and ffprobe run with (pure given ``base``).

    Only ``ENV_KEEP`` and ``ENV_KEEP_PREFIXES`` of ``base`` (default: ours), plus
    ``MALLOC_ENV`` unless already set.
    """
    source = os.environ if base is None else base
    env = {
        key: value
        for key, value in source.items()
        if key in ENV_KEEP or key.startswith(ENV_KEEP_PREFIXES) or key in MALLOC_ENV
    }
    for key, value in MALLOC_ENV.items():
        env.setdefault(key, value)
    return env


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> float:
    """CPUs this process may use: its affinity, capped by a cgroup CPU quota (a pod's limit).

    ``os.cpu_count()`` is the node's count; in a pod limited to 2 CPUs on a 32-core node,
    encoders sized for 32 would mostly wait on each other.
    """
    cpus = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    quota: float | None = None
    with contextlib.suppress(OSError, ValueError):  # cgroup v2: "max 100000" or "200000 100000"
        limit, period = (cgroup / "cpu.max").read_text().split()[:2]
        if limit != "max":
            quota = int(limit) / int(period)
    if quota is None:
        with contextlib.suppress(OSError, ValueError):  # cgroup v1: -1 for no limit
            limit_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
            period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
            if limit_us > 0 and period_us > 0:
                quota = limit_us / period_us
    return max(0.1, min(cpus, quota)) if quota else cpus


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: SIGKILL ffmpeg when the worker dies (a SIGKILLed pod leaves no orphan encoding)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class FfmpegProcess:
    """One running ffmpeg."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        log_path: Path,
        duration: float,
        on_update: Callable[[ProgressUpdate], None] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log = log_path.open("wb")
        self._parser = ProgressParser(duration)
        self._on_update = on_update
        self.last: ProgressUpdate | None = None
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=ffmpeg_env(),
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        # Run the reader in a copy of the caller's context: its catalog writes and
        # progress events stay inside the caller's span (worker.encode).
        context = contextvars.copy_context()
        self._reader = threading.Thread(
            target=context.run, args=(self._read,), name="ffmpeg-progress", daemon=True
        )
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            update = self._parser.feed(raw.decode("utf-8", "replace"))
            if update is None:
                continue
            self.last = update
            if self._on_update is not None:
                # A progress sink failing (catalog briefly down) must not stop the encode.
                with contextlib.suppress(Exception):
                    self._on_update(update)

    def poll(self) -> int | None:
        """The exit status, or None while running."""
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for exit, then for the progress reader to drain."""
        code = self.proc.wait(timeout)
        self._reader.join(5)
        self._log.close()
        return code

    def stop(self, grace: float = 3.0) -> None:
        """Terminate ffmpeg (SIGTERM to its group), then kill it after ``grace`` seconds."""
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait()
        self._reader.join(5)
        self._log.close()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of ffmpeg's log (for the failure message and debugging)."""
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])
