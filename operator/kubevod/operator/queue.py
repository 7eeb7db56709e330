"""The transcode queue: at most N Jobs at once, the rest wait in order (pure core).

Who may start is a pure function of what the operator's in-memory indexes
hold: every VideoAsset (priority, creation time, whether it still needs a Job)
and every Job it manages (running or finished). ``Ledger`` adds the Jobs this
process has just created but whose watch events have not arrived yet, so two
handlers deciding at the same moment never both take the last slot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubevod.operator import naming
from kubevod.operator.resource import TERMINAL, Phase

Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class QueueItem:
    """One VideoAsset as the queue sees it."""

    namespace: str
    name: str
    job_name: str  # the Job its current generation needs
    priority: int = 0
    created: str = ""  # RFC 3339; sorts chronologically as text
    done: bool = False  # terminal for its current generation, or being deleted
    phase: str = ""  # status.phase as last seen (for the Jobs-by-phase metric)

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    @property
    def job_key(self) -> Key:
        return (self.namespace, self.job_name)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> QueueItem:
        """Read a VideoAsset object."""
        meta = body.get("metadata", {})
        spec = body.get("spec") or {}
        status = body.get("status") or {}
        generation = int(meta.get("generation", 1))
        current = status.get("observedGeneration") == generation
        terminal = current and status.get("phase") in {p.value for p in TERMINAL}
        # A metadata-only spec change keeps the Job of the generation that made the media.
        job = status.get("jobName") if current else None
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta["name"]),
            job_name=str(job or naming.job_name(str(meta["name"]), str(meta["uid"]), generation)),
            priority=int(spec.get("priority") or 0),
            created=str(meta.get("creationTimestamp", "")),
            done=terminal or bool(meta.get("deletionTimestamp")),
            phase=str(status.get("phase") or "Pending"),
        )


@dataclass(frozen=True)
class Decision:
    start: bool
    ahead: int  # waiting entries ranked before this one
    running: int


def order(entries: Iterable[QueueItem]) -> list[QueueItem]:
    """Waiting order: higher priority first, then older, then by name (stable ties)."""
    return sorted(entries, key=lambda e: (-e.priority, e.created, e.namespace, e.name))


def decide(
    candidate: QueueItem, entries: Iterable[QueueItem], jobs: Mapping[Key, bool], limit: int
) -> Decision:
    """May ``candidate`` create its Job now?

    Args:
        candidate: the VideoAsset asking.
        entries: every VideoAsset the operator knows (the candidate may be absent
            when the index has not caught up yet).
        jobs: every Job that exists → whether it is still running.
        limit: the most Jobs running at once.

    Returns:
        ``start`` when a slot is free for it: slots are handed to waiting
        entries in ``order``, so a later or lower-priority object never
        overtakes an earlier one.
    """
    running = sum(1 for active in jobs.values() if active)
    waiting = {e.key: e for e in entries if not e.done and e.job_key not in jobs}
    waiting[candidate.key] = candidate
    ranked = order(waiting.values())
    ahead = next(i for i, e in enumerate(ranked) if e.key == candidate.key)
    return Decision(start=ahead < limit - running, ahead=ahead, running=running)


class Ledger:
    """Jobs this process created that its Job index may not show yet (thread-safe).

    A claim ends when the index shows the Job, or after ``ttl`` seconds: a Job
    deleted before its first watch event never shows up, and must not hold a
    slot forever.
    """

    def __init__(self, ttl: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._claimed: dict[Key, float] = {}
        self._ttl = ttl
        self._clock = clock

    def _expire(self, indexed: Iterable[Key] = ()) -> None:
        for key in indexed:
            self._claimed.pop(key, None)
        oldest = self._clock() - self._ttl
        for key in [k for k, at in self._claimed.items() if at < oldest]:
            del self._claimed[key]

    def try_claim(
        self,
        candidate: QueueItem,
        entries: Iterable[QueueItem],
        indexed: Mapping[Key, bool],
        limit: int,
    ) -> Decision:
        """Decide atomically; when it may start, hold its slot until the index shows the Job."""
        with self._lock:
            self._expire(indexed.keys())
            jobs = dict(indexed)
            for key in self._claimed:
                jobs[key] = True
            decision = decide(candidate, entries, jobs, limit)
            if decision.start:
                self._claimed[candidate.job_key] = self._clock()
            return decision

    def holds(self, job: Key) -> bool:
        """True while a Job this process created has not shown up in the index yet."""
        with self._lock:
            self._expire()
            return job in self._claimed

    def release(self, job: Key) -> None:
        """Give a claimed slot back (the Job could not be created)."""
        with self._lock:
            self._claimed.pop(job, None)


def phase_of(body: Mapping[str, Any]) -> Phase | None:
    """``status.phase`` as a Phase, None when unset or unknown."""
    value = (body.get("status") or {}).get("phase")
    try:
        return Phase(value) if value else None
    except ValueError:
        return None
