"""Worker telemetry helpers: stage spans timed into a histogram, uploads timed per kind.

``stage("encode")`` is the ``worker.encode`` span plus a sample of
``kubevod_worker_stage_duration_seconds{stage="encode"}`` when the stage ends
well; ``timed_put`` uploads one file and records its bytes and throughput
(``kubevod_worker_uploaded_bytes_total``, ``…_upload_throughput_…{kind}``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opentelemetry.trace import Span

from kubevod.metrics import worker_metrics
from kubevod.store.base import ObjectInfo, ObjectStore
from kubevod.telemetry import span


@contextlib.contextmanager
def stage(name: str, **attrs: Any) -> Iterator[Span]:
    """A ``worker.<name>`` span, and its wall time in the stage histogram."""
    started = time.perf_counter()
    with span(f"worker.{name}", **attrs) as current:
        yield current
    worker_metrics().stage_duration.labels(name).observe(time.perf_counter() - started)


def timed_put(
    store: ObjectStore, key: str, path: Path, *, kind: str, content_type: str,
    cache_control: str | None,
) -> ObjectInfo:  # fmt: skip
    """``store.put_file``, with its size and throughput recorded under ``kind``."""
    started = time.perf_counter()
    stored = store.put_file(key, path, content_type=content_type, cache_control=cache_control)
    worker_metrics().observe_upload(stored.size, time.perf_counter() - started, kind=kind)
    return stored
