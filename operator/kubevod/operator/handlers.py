"""kopf registrations: thin handlers that read, call the pure builders, apply, record.

- create / resume / spec update → ``admit``: validate, write the catalog entry,
  take a queue slot and create the generation's Job (or wait in Queued).
- a timer on every VideoAsset that is not settled → ``reconcile``: start it when
  its turn comes, mirror Job and catalog progress into status, re-admit when
  a generation was missed (so every path is level-triggered and idempotent).
- delete → ``cleanup``: Jobs, media and catalog entry, with bounded retries.
"""

from __future__ import annotations

import datetime
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf
from kubernetes import client
from kubevod.operator import errors, kube, limits, naming, validation
from kubevod.operator import status as st
from kubevod.operator.catalog_entry import build_entry
from kubevod.operator.cleanup import abandon_message
from kubevod.operator.errors import InvalidSpec, OverLimit, Rejected, Unschedulable
from kubevod.operator.jobs import build_job
from kubevod.operator.queue import Entry, Key, Ledger
from kubevod.operator.resource import TERMINAL, Asset, Phase
from kubevod.operator.settings import load_settings

from kubevod import contract
from kubevod.backends import open_catalog, open_store
from kubevod.catalog.base import Catalog
from kubevod.errors import NotFound, Unavailable
from kubevod.lifecycle import Lifecycle
from kubevod.logs import ContextLogger, get_logger
from kubevod.metrics import operator_metrics
from kubevod.models import Video
from kubevod.store.base import ObjectStore
from kubevod.telemetry import inject_traceparent, span

G, V, P = naming.GROUP, naming.VERSION, naming.PLURAL
SETTINGS = load_settings()
LEDGER = Ledger()


@dataclass
class Backends:
    catalog: Catalog
    store: ObjectStore
    api: client.ApiClient

    @property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle(self.catalog, self.store)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _traceparent() -> str:
    """The current span's W3C traceparent, or a fresh one when tracing is off."""
    found = inject_traceparent().get("TRACEPARENT")
    return found or f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def _log(asset: Asset) -> ContextLogger:
    """A logger whose lines carry the video id, namespace and name."""
    return get_logger(
        "kubevod.operator", video_id=asset.video_id, namespace=asset.namespace, name=asset.name
    )


def _span_attributes(asset: Asset) -> dict[str, Any]:
    """What every operator span says about its VideoAsset."""
    return {
        "kubevod.video.id": asset.video_id,
        "k8s.namespace.name": asset.namespace,
        "kubevod.videoasset.name": asset.name,
        "kubevod.generation": asset.generation,
    }


def _record(
    body: kopf.Body, old: Mapping[str, Any], new: dict[str, Any], patch: kopf.Patch
) -> None:
    """Write ``new`` as the whole status and post an Event per transition."""
    for key in old:
        if key not in new and key in _OWNED:
            patch.status[key] = None
    for key, value in new.items():
        patch.status[key] = value
    for event in st.transitions(old, new):
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


_OWNED = frozenset(
    {
        "phase",
        "progress",
        "playable",
        "duration",
        "videoId",
        "jobName",
        "attempts",
        "message",
        "observedGeneration",
        "specHash",
        "accelerator",
        "renditions",
        "source",
        "playback",
        "conditions",
    }
)


def _temporary(exc: Exception) -> kopf.TemporaryError:
    operator_metrics().handler_errors.labels("temporary").inc()
    return kopf.TemporaryError(str(exc), delay=SETTINGS.timing.retry_seconds)


def _fail(
    asset: Asset,
    body: kopf.Body,
    old: Mapping[str, Any],
    patch: kopf.Patch,
    exc: Exception,
    message: str | None = None,
) -> kopf.PermanentError:
    """Record a permanent outcome (errors.OUTCOMES) as phase Failed; the error to raise.

    kopf still applies ``patch`` when the handler raises, and stops retrying it.
    """
    outcome = errors.outcome(exc)
    assert outcome is not None and outcome.kind == "permanent", exc
    operator_metrics().handler_errors.labels("permanent").inc()
    text = message or str(exc)
    _record(body, old, st.invalid(asset, old, text, now=_now(), reason=outcome.reason), patch)
    _log(asset).warning("%s: %s", outcome.reason, text)
    return kopf.PermanentError(text)


# --------------------------------------------------------------------------- startup


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """kopf's own settings, and the catalog, store and API client shared by handlers."""
    settings.persistence.finalizer = naming.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=naming.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=naming.GROUP)
    settings.posting.level = logging.WARNING  # our own Events say what happened
    settings.posting.reporting_component = contract.MANAGED_BY
    settings.peering.lifetime = SETTINGS.peering.lifetime_seconds
    settings.peering.stealth = True
    # Named namespaces need no cluster-wide look for namespaces and CRDs, so the
    # chart's namespaced mode (a Role, no cluster-scoped rights) starts at once.
    settings.scanning.disabled = bool(SETTINGS.namespaces)
    memo.backends = Backends(
        catalog=open_catalog(SETTINGS.catalog_url),
        store=open_store(SETTINGS.store_url),
        api=kube.connect(),
    )


@kopf.on.cleanup()
def close(memo: kopf.Memo, **_: Any) -> None:
    backends: Backends | None = memo.get("backends")
    if backends is not None:
        backends.catalog.close()


# --------------------------------------------------------------------------- indexes


@kopf.index(G, V, P)
def assets(body: kopf.Body, **_: Any) -> dict[Key, Entry]:
    """Every VideoAsset as the queue sees it."""
    entry = Entry.from_body(body)
    return {entry.key: entry}


@kopf.index("batch", "v1", "jobs", labels={contract.LABEL_MANAGED_BY: contract.MANAGED_BY})
def jobs(body: kopf.Body, **_: Any) -> dict[Key, st.JobView]:
    """Every Job the operator made, with its state."""
    view = st.JobView.from_body(body)
    return {(view.namespace, view.name): view}


@dataclass(frozen=True)
class _Indexes:
    """The two in-memory indexes kopf passes to every handler by their function names."""

    assets: kopf.Index[Key, Entry]
    jobs: kopf.Index[Key, st.JobView]

    @classmethod
    def of(cls, kwargs: Mapping[str, Any]) -> _Indexes:
        return cls(assets=kwargs["assets"], jobs=kwargs["jobs"])


def _job(index: kopf.Index[Key, st.JobView], key: Key) -> st.JobView | None:
    store = index.get(key)
    return next(iter(store), None) if store is not None else None


# --------------------------------------------------------------------------- admission


@kopf.on.resume(G, V, P)
@kopf.on.create(G, V, P)
def admit(
    body: kopf.Body,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    """A new object, or one the operator finds at start: admit its generation once."""
    asset = Asset.from_body(body)
    if status.get("observedGeneration") == asset.generation and status.get("phase"):
        return  # admitted before a restart: the timer carries on
    # The root of the video's trace: the Job's TRACEPARENT hangs under it.
    with span("operator.admit", attributes=_span_attributes(asset), tracer_name=__name__):
        _admit(asset, body, status, patch, memo.backends, _Indexes.of(kwargs))


@kopf.on.update(G, V, P, field="spec")
def respec(
    body: kopf.Body,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    """A spec change (a new generation)."""
    asset = Asset.from_body(body)
    with span("operator.admit", attributes=_span_attributes(asset), tracer_name=__name__):
        _new_generation(asset, body, status, patch, memo.backends, _Indexes.of(kwargs))


def _new_generation(
    asset: Asset,
    body: kopf.Body,
    old: Mapping[str, Any],
    patch: kopf.Patch,
    backends: Backends,
    idx: _Indexes,
) -> None:
    """Metadata only (same media fingerprint) → catalog update; else supersede and admit.

    Decided from status, not from the event's diff, so the timer can settle a
    generation the same way when its own stale write raced the update handler.
    """
    if old.get("phase") and old.get("specHash") == asset.spec.fingerprint():
        spec = asset.spec
        try:
            backends.lifecycle.update_metadata(
                asset.video_id,
                title=spec.title or asset.name,
                description=spec.description,
                tags=list(spec.tags),
            )
        except NotFound:
            pass
        except Unavailable as exc:
            raise _temporary(exc) from exc
        patch.status["observedGeneration"] = asset.generation
        return
    _admit(asset, body, old, patch, backends, idx)


def _admit(
    asset: Asset,
    body: kopf.Body,
    old: Mapping[str, Any],
    patch: kopf.Patch,
    backends: Backends,
    idx: _Indexes,
) -> None:
    try:
        validation.check(asset.spec)
        over = limits.problems(
            asset.spec, asset.namespace, SETTINGS.limits.for_namespace(asset.namespace)
        )
        if over:
            raise OverLimit(over)
    except InvalidSpec as exc:
        raise _fail(asset, body, old, patch, exc) from None
    try:
        superseded = kube.delete_jobs(
            backends.api, asset.namespace, asset.uid, except_generation=asset.generation
        )
        backends.lifecycle.start_generation(build_entry(asset))
    except Unavailable as exc:
        patch.status["message"] = f"retrying in {SETTINGS.timing.retry_seconds:g} s: {exc}"
        raise _temporary(exc) from exc
    if superseded:
        message = f"spec generation {asset.generation} supersedes Job(s) {', '.join(superseded)}"
        kopf.event(body, type="Normal", reason="Superseded", message=message)
    _try_start(asset, body, old, patch, backends, idx)


def _try_start(
    asset: Asset,
    body: kopf.Body,
    old: Mapping[str, Any],
    patch: kopf.Patch,
    backends: Backends,
    idx: _Indexes,
) -> None:
    """Create the generation's Job when the queue allows; else (stay) Queued."""
    me = Entry.from_body(body)
    everyone = [e for store in idx.assets.values() for e in store if e.key != me.key]
    indexed = {key: not view.finished for key, store in idx.jobs.items() for view in store}
    decision = LEDGER.try_claim(me, everyone, indexed, SETTINGS.queue.max_concurrent)
    if not decision.start:
        new = st.queued(
            asset,
            old,
            ahead=decision.ahead,
            running=decision.running,
            limit=SETTINGS.queue.max_concurrent,
            now=_now(),
        )
        _record(body, old, new, patch)
        return
    attributes = {**_span_attributes(asset), "k8s.job.name": asset.job_name}
    with span("operator.start_transcode", attributes=attributes, tracer_name=__name__):
        manifest = build_job(
            asset,
            video_id=asset.video_id,
            worker=SETTINGS.worker,
            gpu=SETTINGS.gpu,
            traceparent=_traceparent(),
        )
        try:
            kube.create_job(backends.api, manifest)
        except Unavailable as exc:
            LEDGER.release(me.job_key)
            raise _temporary(exc) from exc
        except Rejected as exc:
            LEDGER.release(me.job_key)
            message = f"Kubernetes refused Job {asset.job_name} ({exc.status}): {exc.message}"
            raise _fail(asset, body, old, patch, exc, message) from None
        except BaseException:
            LEDGER.release(me.job_key)
            raise
    _log(asset).info("started Job %s (generation %d)", asset.job_name, asset.generation)
    view = st.JobView(namespace=asset.namespace, name=asset.job_name, generation=asset.generation)
    new = st.from_job(asset, old, view, None, public_url=SETTINGS.public_url, now=_now())
    new["message"] = f"started Job {asset.job_name}"
    _record(body, old, new, patch)


# --------------------------------------------------------------------------- the loop


def _unsettled(body: kopf.Body, status: kopf.Status, **_: Any) -> bool:
    phase = status.get("phase")
    generation = body.get("metadata", {}).get("generation")
    if body.get("metadata", {}).get("deletionTimestamp"):
        return False
    return (
        phase not in {p.value for p in TERMINAL} or status.get("observedGeneration") != generation
    )


@kopf.timer(G, V, P, interval=SETTINGS.timing.poll_seconds, when=_unsettled)
def reconcile(
    body: kopf.Body,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    """Start a queued object when its turn comes; mirror a running one into status."""
    asset = Asset.from_body(body)
    backends: Backends = memo.backends
    if not status.get("phase"):
        return  # the create handler has not run yet
    if status.get("observedGeneration") != asset.generation:
        _new_generation(asset, body, status, patch, backends, _Indexes.of(kwargs))
        return
    if status.get("phase") == Phase.QUEUED:
        _try_start(asset, body, status, patch, backends, _Indexes.of(kwargs))
        return
    job_name = str(status.get("jobName") or asset.job_name)
    view = _job(_Indexes.of(kwargs).jobs, (asset.namespace, job_name))
    try:
        video: Video | None = backends.catalog.get(asset.video_id)
    except NotFound:
        video = None
    except Unavailable:
        return  # the next tick tries again; status keeps its last known state
    if view is None:
        view = _vanished_job(asset, job_name, video)
        if view is None:
            return
    _stuck_unscheduled(asset, body, status, patch, view, video, backends.api)
    new = st.from_job(asset, status, view, video, public_url=SETTINGS.public_url, now=_now())
    _record(body, status, new, patch)
    _observe((asset.namespace, asset.name), status, new, view, video, _Indexes.of(kwargs))


def _observe(
    key: Key,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    job: st.JobView,
    video: Video | None,
    idx: _Indexes,
) -> None:
    """Metrics: a finished transcode's duration and speed; VideoAssets by phase."""
    metrics = operator_metrics()
    phase = new.get("phase")
    if phase != old.get("phase") and phase in {p.value for p in TERMINAL}:
        wall = job.wall_seconds()
        if wall is not None:
            media = video.duration if video is not None else None
            outcome = "ready" if phase == Phase.READY else "failed"
            metrics.observe_transcode(wall, media, outcome=outcome)
    # The index still holds this object's previous phase (the patch is not applied yet),
    # and a settled object gets no further tick: count it with its new phase.
    counts: dict[str, int] = {str(phase): 1} if phase else {}
    for store in idx.assets.values():
        for entry in store:
            if entry.key != key:
                counts[entry.phase] = counts.get(entry.phase, 0) + 1
    metrics.set_phases(counts)


def _stuck_unscheduled(
    asset: Asset,
    body: kopf.Body,
    status: Mapping[str, Any],
    patch: kopf.Patch,
    view: st.JobView,
    video: Video | None,
    api: client.ApiClient,
) -> None:
    """Fail the generation when its pod stays unschedulable too long (raises PermanentError).

    Only a Job that has not begun (no progress in the catalog) is looked at,
    so a running transcode costs no pod listing. The Job is deleted, so its
    queue slot goes to the next VideoAsset.
    """
    if view.finished or not view.active or (video is not None and video.progress > 0):
        return
    try:
        pending = kube.unschedulable(api, asset.namespace, view.name)
    except Unavailable:
        return  # the next tick looks again
    limit = SETTINGS.timing.unschedulable_seconds
    if pending is None or pending.seconds(_now()) < limit:
        return
    try:
        kube.delete_jobs(api, asset.namespace, asset.uid)
    except Unavailable as exc:
        raise _temporary(exc) from exc
    message = (
        f"the transcode pod {pending.pod} could not be scheduled for {limit:g} s, so Job "
        f"{view.name} was deleted: {pending.message}"
    )
    raise _fail(asset, body, status, patch, Unschedulable(message))


def _vanished_job(asset: Asset, job_name: str, video: Video | None) -> st.JobView | None:
    """The Job is not in the index: None while it was created a moment ago."""
    if LEDGER.holds((asset.namespace, job_name)):
        return None  # the watch has not delivered it yet
    return st.vanished_job(asset, job_name, video)


# --------------------------------------------------------------------------- deletion


@kopf.on.delete(G, V, P)
def cleanup(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    """Remove the Jobs, the media and the catalog entry; never block deletion forever."""
    asset = Asset.from_body(body)
    with span("operator.cleanup", attributes=_span_attributes(asset), tracer_name=__name__):
        _cleanup(asset, body, memo.backends, retry)


def _cleanup(asset: Asset, body: kopf.Body, backends: Backends, retry: int) -> None:
    try:
        kube.delete_jobs(backends.api, asset.namespace, asset.uid)
    except Unavailable as exc:
        raise _temporary(exc) from exc
    if asset.spec.retain_on_delete:
        kopf.event(
            body,
            type="Normal",
            reason="Retained",
            message=f"kept media and catalog entry {asset.video_id}",
        )
        return
    try:
        purged = backends.lifecycle.purge(asset.video_id)
        # A worker killed between an upload and its (refused) record leaves that object:
        # purge again once no pod of the VideoAsset's Jobs can write any more.
        running = kube.live_pods(backends.api, asset.namespace, asset.uid)
    except Unavailable as exc:
        if retry < SETTINGS.cleanup.max_retries:
            raise kopf.TemporaryError(str(exc), delay=SETTINGS.cleanup.retry_seconds) from exc
        message = abandon_message(asset.video_id, exc, retry + 1)
        _log(asset).warning(message)
        kopf.event(body, type="Warning", reason="CleanupAbandoned", message=message)
        return
    if running and retry < SETTINGS.cleanup.max_retries:
        raise kopf.TemporaryError(
            f"purging again when pod(s) {', '.join(running)} have ended",
            delay=SETTINGS.cleanup.retry_seconds,
        )
    _log(asset).info("deleted %d objects and the catalog entry", purged.objects)
