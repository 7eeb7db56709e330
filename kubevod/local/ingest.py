"""``LocalIngestor``: turns ``kubevod add PATH|URL`` (and ``POST /api/videos`` in
local mode, and the watch folder) into a catalog entry plus a queued transcode.

- De-duplication by content: the sha256 of a file's bytes, or of the URL for
  a URL, so adding the same file twice (or dropping a copy of it into the
  watch folder) gives one video, not two.
- A quick check before anything is recorded: a missing, unreadable or broken
  file (ffprobe under the worker's input policy, the worker's very command, run
  while the file is hashed; the transcode in this process then takes its answer
  instead of probing again), or a URL the fetch guard
  refuses or that does not answer, fails at add time with a one-line reason
  (``SourceError``) and leaves nothing in the library. A URL is not probed
  here: ffprobe would fetch it itself, around the guard, and a server can
  answer the check differently from the download. The worker fetches it
  through the guard and holds the downloaded bytes to the input policy.
- The transcode policy: the request's, else the ingestor's default (``kubevod serve
  --on-demand``, ``KUBEVOD_DEFAULT_POLICY``; the watch folder asks for its own). A
  video added again keeps the policy it was registered with; a failed one that is
  retried takes the new request's, when it names one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kubevod.errors import SourceError
from kubevod.jobs import IngestRequest, job_for
from kubevod.models import TranscodePolicy, Video, VideoState

if TYPE_CHECKING:  # the CLI imports is_url from here: the rest is imported when used
    from kubevod.catalog.base import Catalog
    from kubevod.fetchguard import FetchPolicy
    from kubevod.jobs import Runner
    from kubevod.store.base import ObjectStore

URL_SCHEMES = ("http", "https")
#: Seconds ffprobe may take to open and read the head of a source.
PROBE_TIMEOUT = 30.0
_CHUNK = 1024 * 1024
#: Seconds ``cancel`` waits for a running transcode to stop.
CANCEL_WAIT = 15.0


def is_url(source: str) -> bool:
    """True when ``source`` looks like a URL (``scheme://``) rather than a path."""
    return "://" in source and urlsplit(source).scheme.isalpha()


def content_hash_of_file(path: Path) -> str:
    """``sha256:<hex>`` of the file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def content_hash_of_url(url: str) -> str:
    """``sha256-url:<hex>`` of the URL itself (the bytes behind it may be large or changing)."""
    return "sha256-url:" + hashlib.sha256(url.encode()).hexdigest()


def default_title(source: str) -> str:
    """A title from a path or URL: the file name without extension."""
    name = urlsplit(source).path if is_url(source) else source
    stem = Path(name).stem.strip()
    if not stem and is_url(source):
        stem = urlsplit(source).hostname or source
    return stem.replace("_", " ") or source


def probe_argv(ffprobe: str, source: str, input_args: list[str]) -> list[str]:
    """The ffprobe command of the add-time check of a local file (pure): the worker's own
    (``kubevod.worker.probe.probe_argv``), so the transcode can take its answer.

    ``input_args`` is the worker's input policy (``kubevod.worker.policy.input_args``):
    only video container demuxers, only the ``file`` protocol.
    """
    from kubevod.worker.probe import probe_argv as worker_probe_argv

    return worker_probe_argv(ffprobe, source, input_args)


def probe_reason(source: str, returncode: int, stdout: str, stderr: str) -> str | None:
    """Why ffprobe's answer makes ``source`` unusable, or None when it looks like a video (pure)."""
    if returncode != 0:
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        last = lines[-1] if lines else f"ffprobe exited with {returncode}"
        if last.startswith(source + ":"):
            last = last[len(source) + 1 :].strip()
        from kubevod.worker import policy  # the worker's input policy owns the wording

        if policy.refused_by_whitelist(last):
            return policy.NOT_A_CONTAINER
        verb = "cannot fetch" if is_url(source) else "not a readable video"
        return f"{verb}: {last}"
    try:
        info = json.loads(stdout or "{}")
    except json.JSONDecodeError:
        return "not a readable video: ffprobe gave no answer"
    kinds = [s.get("codec_type") for s in info.get("streams", [])]
    if "video" not in kinds:
        return "no video stream" + (" (audio only)" if "audio" in kinds else "")
    return None


class LocalIngestor:
    """The ``Ingestor`` of local mode: checks, de-duplicates, records and queues."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ObjectStore,
        runner: Runner,
        ffprobe: str | None = None,
        fetch_policy: FetchPolicy | None = None,
        default_policy: TranscodePolicy = TranscodePolicy.EAGER,
    ) -> None:
        from kubevod.lifecycle import Lifecycle

        self._catalog = catalog
        self._lifecycle = Lifecycle(catalog, store)
        self._runner = runner
        self._ffprobe = ffprobe
        self._fetch_policy = fetch_policy
        self.default_policy = default_policy
        # One add at a time, so two adds of the same file race to one entry.
        self._lock = threading.Lock()

    def ingest(self, request: IngestRequest) -> Video:
        """Register the video (or return the existing one with the same content) and queue it.

        Raises:
            SourceError: the source is missing, unreadable, not a video, or unreachable.
        """
        source, content_hash, checked = self._identify(request.source)
        with self._lock:
            existing = self._catalog.find_by_hash(content_hash)
            if existing is not None and existing.state != VideoState.FAILED:
                return existing
            if checked is None:
                self._check_url(source)
            else:
                checked.result()  # raises the check's SourceError
            if existing is not None:  # failed before: try again with the same id
                video = self._lifecycle.requeue(existing, "", source=source, policy=request.policy)
            else:
                video = self._lifecycle.register(
                    Video(
                        title=request.title or default_title(source),
                        tags=list(request.tags),
                        source=source,
                        content_hash=content_hash,
                        state=VideoState.QUEUED,
                        policy=request.policy or self.default_policy,
                    )
                )
        self._runner.submit(job_for(video).model_copy(update={"policy": video.policy}))
        return video

    def cancel(self, video_id: str) -> None:
        """Stop any transcode of this video and wait (briefly) for it to end.

        The API deletes the video's objects right after this; waiting keeps a
        transcode that is just uploading a segment from leaving files behind.
        """
        from kubevod.local.pool import LocalPool

        self._runner.cancel(video_id)
        if isinstance(self._runner, LocalPool):
            self._runner.wait_for(video_id, timeout=CANCEL_WAIT)

    def _identify(self, raw: str) -> tuple[str, str, Future[None] | None]:
        """The source as recorded, its content hash, and for a file its check under way."""
        if is_url(raw):
            scheme = urlsplit(raw).scheme.lower()
            if scheme not in URL_SCHEMES:
                raise SourceError(f"unsupported URL scheme {scheme!r}: use http(s) or a file path")
            return raw, content_hash_of_url(raw), None
        path = Path(raw).expanduser().absolute()
        if not path.exists():
            raise SourceError(f"{path}: no such file")
        if not path.is_file():
            raise SourceError(f"{path}: not a regular file")
        try:
            if path.stat().st_size == 0:
                raise SourceError(f"{path}: empty file (0 bytes)")
            # ffprobe runs while this thread hashes (hashlib lets go of the GIL).
            checked = self._check_file_soon(path)
            return str(path), content_hash_of_file(path), checked
        except PermissionError:
            raise SourceError(f"{path}: permission denied") from None
        except OSError as exc:
            raise SourceError(f"{path}: cannot read ({exc.strerror or exc})") from None

    def _check_file_soon(self, path: Path) -> Future[None]:
        """``_check_file`` on its own thread; the future holds its SourceError, if any."""
        future: Future[None] = Future()

        def check() -> None:
            try:
                self._check_file(path)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(None)

        threading.Thread(target=check, name="kubevod-add-check", daemon=True).start()
        return future

    def _check_file(self, path: Path) -> None:
        """ffprobe under the worker's input policy; a usable answer is kept for the worker."""
        from kubevod.worker import policy  # local mode runs the worker's code in-process
        from kubevod.worker import probe as worker_probe
        from kubevod.worker.process import ffmpeg_env

        source = str(path)
        ffprobe = self._ffprobe or shutil.which("ffprobe")
        if ffprobe is None:
            raise SourceError("ffprobe is not installed (run scripts/testenv debian)")
        try:
            identity = worker_probe.file_identity(path)
            done = subprocess.run(
                probe_argv(ffprobe, source, policy.input_args()),
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT,
                check=False,
                env=ffmpeg_env(),
            )
        except subprocess.TimeoutExpired:
            raise SourceError(f"{source}: timed out reading the source") from None
        except OSError as exc:
            raise SourceError(f"{source}: cannot read ({exc.strerror or exc})") from None
        reason = probe_reason(source, done.returncode, done.stdout, done.stderr)
        if reason is not None:
            raise SourceError(f"{source}: {reason}")
        try:
            info = worker_probe.parse_probe(json.loads(done.stdout), source)
        except (SourceError, ValueError):
            return  # the worker probes again and fails with its own reason, as before
        if worker_probe.file_identity(path) == identity:  # unchanged while it was probed
            worker_probe.remember(identity, info)

    def _check_url(self, url: str) -> None:
        """The fetch guard's verdict on every hop, and a 2xx answer (the body is not read)."""
        from kubevod.backends import public_source
        from kubevod.fetchguard import FetchLimits, GuardedFetch

        policy = self._fetch_policy
        if policy is None:
            from kubevod.worker.settings import WorkerSettings

            policy = WorkerSettings().fetch_policy()
        limits = FetchLimits(timeout=PROBE_TIMEOUT, deadline=PROBE_TIMEOUT)
        try:
            GuardedFetch(policy, limits).preflight(url)
        except SourceError as exc:
            raise SourceError(f"{public_source(url)}: {exc}") from None
