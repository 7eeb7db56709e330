"""kopf registrations: thin handlers that read, decide, apply, record.

- create / resume / spec update → ``admit``: validate, start the generation in
  the catalog, take a queue slot and create the generation's Job (or wait in
  Queued).
- a timer on every VideoAsset that is not settled → ``reconcile``: start it when
  its turn comes, mirror Job and catalog progress into status, re-admit when
  a generation was missed (so every path is level-triggered and idempotent).
- delete → ``cleanup``: Jobs, media and catalog entry, with bounded retries.

What a handler may keep lives in kopf's ``memo`` (``OperatorState``: settings,
backends, the queue ledger), never in module globals; each handler call is one
``Call`` (the VideoAsset, its status as read, the patch, the state). The
decisions are pure functions (``next_step``, ``metadata_only``, ``cleanup_step``,
``unschedulable_too_long``), and every error a handler meets is mapped onto
kopf in one place, ``outcomes`` (with the table in ``kubevod.operator.errors``).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import kopf
from kubernetes import client
from kubevod.operator import errors, kube, limits, naming, validation
from kubevod.operator import status as st
from kubevod.operator.catalog_entry import build_entry
from kubevod.operator.cleanup import abandon_message
from kubevod.operator.errors import OverLimit, Rejected, Unschedulable
from kubevod.operator.job_manifest import build_chunk_workers, build_job
from kubevod.operator.queue import Key, Ledger, QueueItem
from kubevod.operator.resource import TERMINAL, Asset, Phase
from kubevod.operator.settings import OperatorSettings, load_settings

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

#: The custom resource every handler watches.
RESOURCE = (naming.GROUP, naming.VERSION, naming.PLURAL)
#: kopf takes a timer's interval when this module is imported, before any handler runs;
#: everything else reads the settings from ``memo.state``.
_POLL_SECONDS = load_settings().timing.poll_seconds
#: How often a Ready on-demand video's chunks are mirrored into its status (s).
_ON_DEMAND_POLL_SECONDS = max(_POLL_SECONDS, 10.0)
log = get_logger(__name__)


@dataclass
class OperatorState:
    """Everything the handlers share, kept in kopf's ``memo`` (``memo.state``)."""

    settings: OperatorSettings
    catalog: Catalog
    store: ObjectStore
    api: client.ApiClient
    ledger: Ledger = field(default_factory=Ledger)

    @property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle(self.catalog, self.store)


#: Posts one Kubernetes Event about an object (``kopf.event``; a recorder in unit tests).
Poster = Callable[..., None]


@dataclass
class Call:
    """One handler call: the VideoAsset, its status as read, the patch to apply, the state."""

    asset: Asset
    body: kopf.Body
    old: Mapping[str, Any]
    patch: kopf.Patch
    state: OperatorState
    assets: Mapping[Key, Any] = field(default_factory=dict)  # kopf index: QueueItem stores
    jobs: Mapping[Key, Any] = field(default_factory=dict)  # kopf index: JobView stores
    post: Poster = kopf.event

    @classmethod
    def of(
        cls, body: kopf.Body, status: Mapping[str, Any], patch: kopf.Patch, memo: kopf.Memo,
        kwargs: Mapping[str, Any],
    ) -> Call:  # fmt: skip
        # A snapshot: kopf's status is a live view that a concurrent patch changes.
        return cls(
            asset=Asset.from_body(body), body=body, old=copy.deepcopy(dict(status)),
            patch=patch, state=memo.state,
            assets=kwargs.get("assets", {}), jobs=kwargs.get("jobs", {}),
        )  # fmt: skip

    @property
    def settings(self) -> OperatorSettings:
        return self.state.settings

    @property
    def log(self) -> ContextLogger:
        """A logger whose lines carry the video id, namespace and name."""
        a = self.asset
        return get_logger(
            "kubevod.operator", video_id=a.video_id, namespace=a.namespace, name=a.name
        )

    def event(self, type_: str, reason: str, message: str) -> None:
        self.post(self.body, type=type_, reason=reason, message=message)

    def record(self, new: dict[str, Any]) -> None:
        """Write ``new`` as the whole status and post an Event per transition."""
        for key in self.old:
            if key not in new and key in _OWNED:
                self.patch.status[key] = None
        for key, value in new.items():
            self.patch.status[key] = value
        for event in st.transitions(self.old, new):
            self.event(event.type, event.reason, event.message)

    def job(self, name: str) -> st.JobView | None:
        found = self.jobs.get((self.asset.namespace, name))
        return next(iter(found), None) if found is not None else None


_OWNED = frozenset(
    {
        "phase", "progress", "playable", "duration", "videoId", "jobName", "attempts",
        "message", "observedGeneration", "specHash", "accelerator", "renditions", "source",
        "playback", "conditions",
    }
)  # fmt: skip


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _traceparent() -> str:
    """The current span's W3C traceparent, or a fresh one when tracing is off."""
    found = inject_traceparent().get(contract.TRACEPARENT)
    return found or f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def _span_attributes(asset: Asset) -> dict[str, Any]:
    """What every operator span says about its VideoAsset."""
    return {
        "kubevod.video.id": asset.video_id,
        "k8s.namespace.name": asset.namespace,
        "kubevod.videoasset.name": asset.name,
        "kubevod.generation": asset.generation,
    }


# --------------------------------------------------------------------------- the one mapping


@contextmanager
def outcomes(call: Call) -> Iterator[None]:
    """Map every error a handler meets onto kopf, by ``errors.OUTCOMES``.

    - permanent (a bad spec, over a cap, refused by Kubernetes, unschedulable):
      status phase Failed with the row's reason and the error's message, then
      ``kopf.PermanentError`` (kopf applies the patch and stops retrying);
    - temporary (a backend or the API server unavailable): the status message
      says when it retries, then ``kopf.TemporaryError`` with the settings' delay.

    An error the table does not know propagates (kopf logs and retries it).
    """
    try:
        yield
    except (kopf.PermanentError, kopf.TemporaryError):
        raise
    except Exception as exc:
        found = errors.outcome(exc)
        if found is None:
            raise
        metrics = operator_metrics()
        if found.kind == "temporary":
            metrics.handler_errors.labels("temporary").inc()
            delay = call.settings.timing.retry_seconds
            call.patch.status["message"] = f"retrying in {delay:g} s: {exc}"
            raise kopf.TemporaryError(str(exc), delay=delay) from exc
        metrics.handler_errors.labels("permanent").inc()
        text = str(exc)
        failed = st.invalid(call.asset, call.old, text, now=_now(), reason=found.reason)
        call.record(failed)
        call.log.warning("%s: %s", found.reason, text)
        raise kopf.PermanentError(text) from None


# --------------------------------------------------------------------------- pure decisions

Step = Literal["wait", "readmit", "start", "mirror"]


def next_step(asset: Asset, status: Mapping[str, Any]) -> Step:
    """What the timer does with a VideoAsset.

    The timer's ``when`` filter skips settled objects, but kopf hands the
    handler a live body: a handler's patch can land between the filter and this
    call, so a settled generation is checked again here and left alone.
    """
    if not status.get("phase"):
        return "wait"  # the create handler has not run yet
    if status.get("observedGeneration") != asset.generation:
        return "readmit"
    if status.get("phase") in {p.value for p in TERMINAL}:
        return "wait"  # settled (Ready, or Failed with its reason): nothing to mirror
    if status.get("phase") == Phase.QUEUED:
        return "start"
    return "mirror"


def metadata_only(asset: Asset, status: Mapping[str, Any]) -> bool:
    """A spec change that needs no new transcode (the media fingerprint is unchanged).

    Decided from status, not from the event's diff, so the timer can settle a
    generation the same way when its own stale write raced the update handler.
    """
    return bool(status.get("phase")) and status.get("specHash") == asset.spec.fingerprint()


def admission_problems(asset: Asset, settings: OperatorSettings) -> None:
    """Raise InvalidSpec / OverLimit for a spec the operator will not run."""
    validation.check(asset.spec)
    over = limits.problems(
        asset.spec, asset.namespace, settings.limits.for_namespace(asset.namespace)
    )
    if over:
        raise OverLimit(over)


def unschedulable_too_long(
    view: st.JobView, video: Video | None, pending: st.PodScheduling | None, limit: float,
    now: str,
) -> bool:  # fmt: skip
    """Whether the Job's pod has waited for a node longer than ``limit`` seconds."""
    if not needs_pod_check(view, video):
        return False
    return pending is not None and pending.seconds(now) >= limit


def needs_pod_check(view: st.JobView, video: Video | None) -> bool:
    """Whether the Job has not begun (active, no progress): only then can its pod be
    waiting for a node, and only then does it cost a pod listing."""
    return not view.finished and bool(view.active) and (video is None or video.progress <= 0)


CleanupStep = Literal["done", "retry", "give_up"]


def cleanup_step(
    *, error: Unavailable | None, live_pods: list[str], retry: int, max_retries: int
) -> CleanupStep:
    """After a purge attempt: finished, try again later, or release the object anyway."""
    if error is not None:
        return "retry" if retry < max_retries else "give_up"
    if live_pods and retry < max_retries:
        return "retry"  # a pod may still upload: purge once more when it has ended
    return "done"


# --------------------------------------------------------------------------- startup


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """kopf's own settings, and the state shared by handlers (``memo.state``)."""
    ours = load_settings()
    settings.persistence.finalizer = naming.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=naming.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=naming.GROUP)
    settings.posting.level = logging.WARNING  # our own Events say what happened
    settings.posting.reporting_component = contract.MANAGED_BY
    settings.peering.lifetime = ours.peering.lifetime_seconds
    settings.peering.stealth = True
    # Named namespaces need no cluster-wide look for namespaces and CRDs, so the
    # chart's namespaced mode (a Role, no cluster-scoped rights) starts at once.
    settings.scanning.disabled = bool(ours.namespaces)
    memo.state = OperatorState(
        settings=ours,
        catalog=open_catalog(ours.catalog_url),
        store=open_store(ours.store_url),
        api=kube.connect(),
    )


@kopf.on.startup()
def chunk_workers(memo: kopf.Memo, **_: Any) -> None:
    """Keep the warm chunk workers as the settings say (``build_chunk_workers``): they encode
    the chunks viewers of on-demand videos wait for."""
    state: OperatorState = memo.state
    worker = state.settings.worker
    namespace = worker.chunk_worker_namespace
    if not namespace:
        return
    for attempt in range(3):
        try:
            if worker.chunk_workers == 0:
                kube.delete_deployment(state.api, namespace, worker.chunk_worker_name)
                return
            owner = kube.owner_reference(state.api, namespace, worker.chunk_worker_owner)
            manifest = build_chunk_workers(
                worker, namespace=namespace, owner=owner, labels=worker.chunk_worker_labels
            )
            kube.apply_deployment(state.api, manifest)
            break
        except Unavailable as exc:
            if attempt < 2:
                time.sleep(2)
                continue
            # Transcoding goes on without them; on-demand videos play what was registered.
            log.error("chunk workers not applied (on-demand chunks wait): %s", exc)
            return
    log.info("%d chunk workers in %s/%s", worker.chunk_workers, namespace, worker.chunk_worker_name)


@kopf.on.cleanup()
def close(memo: kopf.Memo, **_: Any) -> None:
    state: OperatorState | None = memo.get("state")
    if state is not None:
        state.catalog.close()


# --------------------------------------------------------------------------- indexes


@kopf.index(*RESOURCE)
def assets(body: kopf.Body, **_: Any) -> dict[Key, QueueItem]:
    """Every VideoAsset as the queue sees it."""
    item = QueueItem.from_body(body)
    return {item.key: item}


@kopf.index("batch", "v1", "jobs", labels={contract.LABEL_MANAGED_BY: contract.MANAGED_BY})
def jobs(body: kopf.Body, **_: Any) -> dict[Key, st.JobView]:
    """Every Job the operator made, with its state."""
    view = st.JobView.from_body(body)
    return {(view.namespace, view.name): view}


# --------------------------------------------------------------------------- admission


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
def admit(
    body: kopf.Body, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any
) -> None:
    """A new object, or one the operator finds at start: admit its generation once."""
    call = Call.of(body, status, patch, memo, kwargs)
    if status.get("observedGeneration") == call.asset.generation and status.get("phase"):
        return  # admitted before a restart: the timer carries on
    # The root of the video's trace: the Job's TRACEPARENT hangs under it.
    attributes = _span_attributes(call.asset)
    with span("operator.admit", attributes=attributes, tracer_name=__name__), outcomes(call):
        _admit(call)


@kopf.on.update(*RESOURCE, field="spec")
def respec(
    body: kopf.Body, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any
) -> None:
    """A spec change (a new generation)."""
    call = Call.of(body, status, patch, memo, kwargs)
    attributes = _span_attributes(call.asset)
    with span("operator.admit", attributes=attributes, tracer_name=__name__), outcomes(call):
        _new_generation(call)


def _new_generation(call: Call) -> None:
    """Metadata only → catalog update; else supersede and admit."""
    asset = call.asset
    if metadata_only(asset, call.old):
        spec = asset.spec
        with contextlib.suppress(NotFound):  # the entry comes back with the next transcode
            call.state.lifecycle.update_metadata(
                asset.video_id, title=spec.title or asset.name, description=spec.description,
                tags=list(spec.tags),
            )  # fmt: skip
        call.patch.status["observedGeneration"] = asset.generation
        return
    _admit(call)


def _admit(call: Call) -> None:
    asset, state = call.asset, call.state
    admission_problems(asset, call.settings)
    superseded = kube.delete_jobs(
        state.api, asset.namespace, asset.uid, except_generation=asset.generation
    )
    state.lifecycle.start_generation(build_entry(asset))
    if superseded:
        message = f"spec generation {asset.generation} supersedes Job(s) {', '.join(superseded)}"
        call.event("Normal", "Superseded", message)
    _try_start(call)


def _try_start(call: Call) -> None:
    """Create the generation's Job when the queue allows; else (stay) Queued."""
    asset, state = call.asset, call.state
    me = QueueItem.from_body(call.body)
    everyone = [item for store in call.assets.values() for item in store if item.key != me.key]
    indexed = {key: not view.finished for key, store in call.jobs.items() for view in store}
    limit = call.settings.queue.max_concurrent
    decision = state.ledger.try_claim(me, everyone, indexed, limit)
    if not decision.start:
        new = st.queued(
            asset, call.old, ahead=decision.ahead, running=decision.running, limit=limit,
            now=_now(),
        )  # fmt: skip
        call.record(new)
        return
    attributes = {**_span_attributes(asset), "k8s.job.name": asset.job_name}
    with span("operator.start_transcode", attributes=attributes, tracer_name=__name__):
        manifest = build_job(
            asset, video_id=asset.video_id, worker=call.settings.worker, gpu=call.settings.gpu,
            traceparent=_traceparent(),
        )  # fmt: skip
        try:
            kube.create_job(state.api, manifest)
        except Rejected as exc:
            state.ledger.release(me.job_key)
            raise Rejected(
                exc.status,
                f"Kubernetes refused Job {asset.job_name} ({exc.status}): {exc.message}",
            ) from None
        except BaseException:
            state.ledger.release(me.job_key)
            raise
    call.log.info("started Job %s (generation %d)", asset.job_name, asset.generation)
    view = st.JobView(namespace=asset.namespace, name=asset.job_name, generation=asset.generation)
    new = st.from_job(asset, call.old, view, None, public_url=call.settings.public_url, now=_now())
    new["message"] = f"started Job {asset.job_name}"
    call.record(new)


# --------------------------------------------------------------------------- the loop


def _unsettled(body: kopf.Body, status: kopf.Status, **_: Any) -> bool:
    phase = status.get("phase")
    generation = body.get("metadata", {}).get("generation")
    if body.get("metadata", {}).get("deletionTimestamp"):
        return False
    return (
        phase not in {p.value for p in TERMINAL} or status.get("observedGeneration") != generation
    )


def _partial(body: kopf.Body, status: kopf.Status, **_: Any) -> bool:
    """A Ready on-demand video with chunks still to encode (by the chunk workers)."""
    chunks = status.get("chunks") or {}
    return (
        status.get("phase") == Phase.READY.value
        and int(chunks.get("done") or 0) < int(chunks.get("total") or 0)
        and not body.get("metadata", {}).get("deletionTimestamp")
    )


@kopf.timer(*RESOURCE, interval=_ON_DEMAND_POLL_SECONDS, when=_partial)
def chunk_progress(
    body: kopf.Body, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any
) -> None:
    """Mirror the chunks the chunk workers encode into a Ready on-demand video's status."""
    call = Call.of(body, status, patch, memo, kwargs)
    with outcomes(call):
        try:
            video = call.state.catalog.get(call.asset.video_id)
        except NotFound:
            return
        if video.generation != call.asset.generation:
            return
        call.record(st.on_demand_progress(call.old, video, public_url=call.settings.public_url))


@kopf.timer(*RESOURCE, interval=_POLL_SECONDS, when=_unsettled)
def reconcile(
    body: kopf.Body, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any
) -> None:
    """Start a queued object when its turn comes; mirror a running one into status."""
    call = Call.of(body, status, patch, memo, kwargs)
    with outcomes(call):
        _reconcile(call)


def _reconcile(call: Call) -> None:
    asset, state = call.asset, call.state
    step = next_step(asset, call.old)
    if step == "wait":
        return
    if step == "readmit":
        _new_generation(call)
        return
    if step == "start":
        _try_start(call)
        return
    job_name = str(call.old.get("jobName") or asset.job_name)
    view = call.job(job_name)
    try:
        video: Video | None = state.catalog.get(asset.video_id)
    except NotFound:
        video = None
    if view is None:
        if state.ledger.holds((asset.namespace, job_name)):
            return  # created a moment ago: the watch has not delivered it yet
        view = st.vanished_job(asset, job_name, video)
    _fail_if_unschedulable(call, view, video)
    new = st.from_job(asset, call.old, view, video, public_url=call.settings.public_url, now=_now())
    call.record(new)
    _observe(call, new, view, video)


def _observe(call: Call, new: Mapping[str, Any], job: st.JobView, video: Video | None) -> None:
    """Metrics: a finished transcode's duration and speed; VideoAssets by phase."""
    metrics = operator_metrics()
    phase = new.get("phase")
    if phase != call.old.get("phase") and phase in {p.value for p in TERMINAL}:
        wall = job.wall_seconds()
        if wall is not None:
            media = video.duration if video is not None else None
            outcome = "ready" if phase == Phase.READY else "failed"
            metrics.observe_transcode(wall, media, outcome=outcome)
    # The index still holds this object's previous phase (the patch is not applied yet),
    # and a settled object gets no further tick: count it with its new phase.
    key = (call.asset.namespace, call.asset.name)
    counts: dict[str, int] = {str(phase): 1} if phase else {}
    for store in call.assets.values():
        for item in store:
            if item.key != key:
                counts[item.phase] = counts.get(item.phase, 0) + 1
    metrics.set_phases(counts)


def _fail_if_unschedulable(call: Call, view: st.JobView, video: Video | None) -> None:
    """Fail the generation when its pod stays unschedulable too long (raises Unschedulable).

    The Job is deleted, so its queue slot goes to the next VideoAsset.
    """
    if not needs_pod_check(view, video):
        return
    asset, api = call.asset, call.state.api
    try:
        pending = kube.unschedulable(api, asset.namespace, view.name)
    except Unavailable:
        return  # best effort: the next tick looks again, the transcode is unaffected
    limit = call.settings.timing.unschedulable_seconds
    if not unschedulable_too_long(view, video, pending, limit, _now()):
        return
    assert pending is not None
    kube.delete_jobs(api, asset.namespace, asset.uid)
    raise Unschedulable(
        f"the transcode pod {pending.pod} could not be scheduled for {limit:g} s, so Job "
        f"{view.name} was deleted: {pending.message}"
    )


# --------------------------------------------------------------------------- deletion


@kopf.on.delete(*RESOURCE)
def cleanup(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    """Remove the Jobs, the media and the catalog entry; never block deletion forever."""
    call = Call(
        asset=Asset.from_body(body), body=body, old={}, patch=kopf.Patch(), state=memo.state
    )
    with span("operator.cleanup", attributes=_span_attributes(call.asset), tracer_name=__name__):
        _cleanup(call, retry)


def _cleanup(call: Call, retry: int) -> None:
    asset, state = call.asset, call.state
    tries = call.settings.cleanup
    try:
        kube.delete_jobs(state.api, asset.namespace, asset.uid)
    except Unavailable as exc:
        raise kopf.TemporaryError(str(exc), delay=tries.retry_seconds) from exc
    if asset.spec.retain_on_delete:
        call.event("Normal", "Retained", f"kept media and catalog entry {asset.video_id}")
        return
    error: Unavailable | None = None
    running: list[str] = []
    purged = 0
    try:
        purged = state.lifecycle.purge(asset.video_id).objects
        # A worker killed between an upload and its (refused) record leaves that object:
        # purge again once no pod of the VideoAsset's Jobs can write any more.
        running = kube.live_pods(state.api, asset.namespace, asset.uid)
    except Unavailable as exc:
        error = exc
    step = cleanup_step(error=error, live_pods=running, retry=retry, max_retries=tries.max_retries)
    if step == "retry":
        reason = str(error) if error else f"purging again when pod(s) {', '.join(running)} end"
        raise kopf.TemporaryError(reason, delay=tries.retry_seconds)
    if step == "give_up" and error is not None:
        message = abandon_message(asset.video_id, error, retry + 1)
        call.log.warning(message)
        call.event("Warning", "CleanupAbandoned", message)
        return
    call.log.info("deleted %d objects and the catalog entry", purged)
