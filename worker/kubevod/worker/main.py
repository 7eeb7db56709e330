"""``kubevod-worker``: run one transcode in a Kubernetes Job (or by hand);
``kubevod-worker chunks``: a warm worker encoding the chunks viewers of on-demand
videos wait for, until SIGTERM (``kubevod.worker.chunkd``).

Reads the job, the catalog's and the store's URLs and a W3C traceparent from
the environment (names and exit codes: ``kubevod.contract``). Prints a
progress line now and then. SIGTERM (pod deletion) stops ffmpeg cleanly.

Exit codes: 0 done, 2 the source is bad and 3 the video was deleted or moved
past this job (permanent: do not retry), 1 anything that may pass on retry
(store or catalog down, ffmpeg killed...), 130 cancelled.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from kubevod.worker.errors import Cancelled, one_line
from kubevod.worker.pipeline import run
from kubevod.worker.settings import WorkerSettings

from kubevod import contract
from kubevod.backends import open_catalog, open_store, redact_url
from kubevod.errors import InvalidInput, SourceError, Superseded
from kubevod.jobs import TranscodeJob
from kubevod.logs import get_logger, register_secret, setup_logging
from kubevod.metrics import start_metrics_server
from kubevod.telemetry import (
    TRACEPARENT_ENV,
    TRACESTATE_ENV,
    attach_traceparent,
    detach,
    instrument_pymongo,
    setup_telemetry,
    shutdown,
)

CATALOG_ENV, STORE_ENV, METRICS_PORT_ENV = (
    contract.CATALOG_URL, contract.STORE_URL, contract.METRICS_PORT,
)  # fmt: skip


class _Printer:
    """Prints ``progress 42.0%`` at most every few seconds (and every 10 points)."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self._at = 0.0
        self._shown = -100.0

    def __call__(self, percent: float) -> None:
        now = time.monotonic()
        if percent >= 100 or now - self._at >= self.every or percent - self._shown >= 10:
            self._at, self._shown = now, percent
            print(f"progress {percent:.1f}%", flush=True)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run the job described by the environment; returns the exit code."""
    env = os.environ if env is None else env
    args = list(sys.argv[1:] if argv is None else argv)
    setup_logging(service="kubevod-worker")
    setup_telemetry("kubevod-worker", component="worker")
    instrument_pymongo()  # before open_catalog creates the MongoClient: catalog writes traced
    if args == ["chunks"]:
        return chunks(env)
    if args:
        print(f"error: unknown arguments {' '.join(args)!r} (none, or 'chunks')", file=sys.stderr)
        return contract.EXIT_BAD_SOURCE
    log = get_logger(__name__)
    try:
        job = TranscodeJob.from_env(env)
    except (ValueError, TypeError) as exc:
        print(f"error: bad job: {one_line(str(exc))}", file=sys.stderr)
        return contract.EXIT_BAD_SOURCE
    try:
        pod = int(env.get(contract.POD_INDEX) or 0)
    except ValueError:
        pod = -1
    if not 0 <= pod < job.pods:
        print(f"error: {contract.POD_INDEX} is not a pod of {job.pods}", file=sys.stderr)
        return contract.EXIT_BAD_SOURCE
    missing = _backends(env)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return contract.EXIT_RETRY
    _metrics(env, log)
    cancel = _stop_on_signals(log, "stopping the transcode")
    token = attach_traceparent(env.get(TRACEPARENT_ENV), env.get(TRACESTATE_ENV))
    opened = _open(env)
    if isinstance(opened, str):
        print(f"error: {opened}", file=sys.stderr)
        return contract.EXIT_RETRY
    store, catalog = opened
    log.info("job %s from %s", job.video_id, redact_url(job.source))
    try:
        video = run(
            job, store=store, catalog=catalog, cancel=cancel, on_progress=_Printer(),
            settings=WorkerSettings(), pod=pod,
        )  # fmt: skip
        print(
            f"{video.state.value} {video.id}: {len(video.renditions)} renditions, "
            f"{video.duration:.1f} s"
        )
        return contract.EXIT_OK
    except SourceError as exc:
        print(f"failed: {one_line(str(exc))}", file=sys.stderr)
        return contract.EXIT_BAD_SOURCE
    except Superseded as exc:
        print(f"stopped: {one_line(str(exc))}", file=sys.stderr)
        return contract.EXIT_SUPERSEDED
    except Cancelled:
        print("cancelled", file=sys.stderr)
        return contract.EXIT_CANCELLED
    except Exception as exc:
        log.exception("transcode failed")
        print(f"error (will retry): {one_line(str(exc))}", file=sys.stderr)
        return contract.EXIT_RETRY
    finally:
        catalog.close()
        detach(token)
        shutdown()


def _backends(env: Mapping[str, str]) -> str | None:
    """Why the catalog and store URLs cannot be used, or None; their passwords are
    registered as secrets (never logged, even by a library at DEBUG)."""
    missing = [name for name in (CATALOG_ENV, STORE_ENV) if not env.get(name)]
    if missing:
        return f"{', '.join(missing)} not set"
    for name in (CATALOG_ENV, STORE_ENV):
        register_secret(urlsplit(env[name]).password)
    return None


def _metrics(env: Mapping[str, str], log: Any) -> None:
    """The Prometheus endpoint when asked for; optional, so a bad port only warns."""
    if env.get(METRICS_PORT_ENV):
        try:
            start_metrics_server(int(env[METRICS_PORT_ENV]))
        except (ValueError, OSError) as exc:
            log.warning("no metrics server on %r: %s", env[METRICS_PORT_ENV], exc)


def _stop_on_signals(log: Any, what: str) -> threading.Event:
    """An event SIGTERM (pod deletion) and SIGINT set."""
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.warning("signal %d: %s", signum, what)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    return stop


def _open(env: Mapping[str, str]) -> tuple[Any, Any] | str:
    """The store and catalog named by the environment, or why not."""
    try:
        return open_store(env[STORE_ENV]), open_catalog(env[CATALOG_ENV])
    except InvalidInput as exc:
        return one_line(str(exc))


def chunks(env: Mapping[str, str]) -> int:
    """The warm chunk worker: encodes wanted chunks until SIGTERM; returns the exit code."""
    from kubevod.worker.chunkd import ChunkWorker

    log = get_logger(__name__)
    problem = _backends(env)
    opened = problem or _open(env)
    if isinstance(opened, str):
        print(f"error: {opened}", file=sys.stderr)
        return contract.EXIT_RETRY
    store, catalog = opened
    _metrics(env, log)
    stop = _stop_on_signals(log, "stopping")
    settings = WorkerSettings()
    scratch = settings.scratch_dir or Path(tempfile.gettempdir()) / "kubevod-chunks"
    holder = env.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    try:
        ChunkWorker(
            catalog=catalog, store=store, holder=holder, settings=settings, scratch=scratch,
            stop=stop,
        ).serve()  # fmt: skip
    finally:
        catalog.close()
        shutdown()
    return contract.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
