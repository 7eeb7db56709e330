"""``kubevod serve``: the API, the player and a local transcode pool in one
process, with ``FileStore`` and ``SqliteCatalog`` under the data folder.

:class:`LocalRuntime` opens the data folder (taking an exclusive lock on it, so
two servers never transcode the same library), the store, the catalog, the
pool and the ingestor; ``kubevod add --data`` uses it without HTTP when no
server runs. :func:`serve` adds uvicorn, the watch folder and
``<data>/server.json`` (url + pid, so ``kubevod add`` finds the server).

Exposure (docs/architecture.md §10): it binds loopback unless told otherwise; it answers
only to known Host names and refuses cross-origin writes (``kubevod.api.guard``);
on any other bind every write needs a token, generated at start unless given,
printed once and kept in ``<data>/api-token`` (mode 0600) while it runs.

Ctrl-C or SIGTERM: uvicorn stops accepting, then the pool cancels running
transcodes (the pipeline stops its ffmpeg) and leaves interrupted videos
``queued``; the next start resumes them from scratch.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import secrets
import shutil
import signal
import socket
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import uvicorn

from kubevod import telemetry
from kubevod.catalog.base import Catalog
from kubevod.errors import Conflict, InvalidInput
from kubevod.jobs import IngestRequest
from kubevod.local.ingest import LocalIngestor
from kubevod.local.pool import LocalPool
from kubevod.local.settings import DataLayout, LocalSettings, read_server_file
from kubevod.local.watch import FolderWatcher
from kubevod.models import TranscodePolicy
from kubevod.store.base import ObjectStore

log = logging.getLogger("kubevod.local")


def client_url(host: str, port: int) -> str:
    """The URL a browser on this machine opens for a server bound to ``host:port`` (pure)."""
    if host in _WILDCARDS:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def is_loopback_host(host: str) -> bool:
    """True when binding ``host`` exposes the server to this machine only (pure)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, extra: list[str], hostname: str) -> list[str]:
    """The Host names a server bound to ``host`` answers to (pure).

    Loopback names and addresses always (``kubevod.api.guard``); the bind address;
    on a wildcard bind every IP literal (a Host that is an address cannot come from
    DNS rebinding) and the machine's own name; then the user's ``extra`` names.
    """
    hosts = ["localhost", "127.0.0.0/8", "::1"]
    if host in _WILDCARDS:
        hosts += ["0.0.0.0/0", "::/0", hostname]
    else:
        hosts.append(host)
    return [*hosts, *extra]


def api_token(settings: LocalSettings) -> tuple[str | None, bool]:
    """The token write calls need, and whether it was generated now.

    Given (``KUBEVOD_API_TOKEN`` or the config file): that one. Else, on a bind other
    than loopback, a new random one per start; on loopback, none.
    """
    if settings.token:
        return settings.token, False
    if is_loopback_host(settings.host):
        return None, False
    return secrets.token_urlsafe(24), True


def write_token_file(layout: DataLayout, token: str | None) -> None:
    """Keep the token where ``kubevod add/list/rm`` find it (owner-only), or remove it."""
    path = layout.token_file
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    if token is None:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)


class DataLocked(Conflict):
    """Another process (a server, or a direct ``kubevod add``) is using the data folder."""


class LocalRuntime:
    """The data folder opened for transcoding: store, catalog, pool and ingestor."""

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        self.layout = settings.layout
        self._lock_file: IO[str] | None = None
        self.store: ObjectStore
        self.catalog: Catalog
        self.pool: LocalPool
        self.ingestor: LocalIngestor

    def __enter__(self) -> LocalRuntime:
        self.open()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        """Lock the data folder and open everything; raises DataLocked when in use."""
        from kubevod.backends import open_catalog, open_store

        root = self.layout.root
        root.mkdir(parents=True, exist_ok=True)
        self._lock_file = (root / ".lock").open("w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            running = read_server_file(self.layout)
            where = f" (a server runs at {running['url']}, pid {running['pid']})" if running else ""
            raise DataLocked(
                f"the data folder {root} is in use by another kubevod{where}"
            ) from None
        # Scratch of an earlier run is garbage now: we hold the lock, nothing else uses it.
        shutil.rmtree(self.layout.scratch, ignore_errors=True)
        self.layout.media.mkdir(parents=True, exist_ok=True)
        self.store = open_store(self.layout.store_url())
        self.catalog = open_catalog(self.layout.catalog_url())
        self.pool = LocalPool(
            store=self.store,
            catalog=self.catalog,
            scratch=self.layout.scratch,
            workers=self.settings.workers,
            worker_settings=worker_settings(),
            promote_after_seconds=self.settings.promote_after_seconds,
        )
        self.ingestor = LocalIngestor(
            catalog=self.catalog,
            store=self.store,
            runner=self.pool,
            default_policy=self.settings.default_policy,
        )

    def close(self, timeout: float = 20.0) -> set[str]:
        """Stop the pool, close the catalog, unlock; returns the ids left queued for next time."""
        if self._lock_file is None:
            return set()
        with _ignoring_signals():
            interrupted = self.pool.shutdown(timeout=timeout)
            self.catalog.close()
        self._lock_file.close()
        self._lock_file = None
        return interrupted


def worker_settings() -> Any:
    """The worker's own settings (from its ``KUBEVOD_*`` env), or None before it has any."""
    try:
        from kubevod.worker.settings import WorkerSettings
    except ImportError:
        return None
    return WorkerSettings()


@contextlib.contextmanager
def _ignoring_signals() -> Iterator[None]:
    """Let a shutdown finish: a second Ctrl-C must not leave videos claiming to be transcoding."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Server(uvicorn.Server):
    """uvicorn, minus its re-raising of the stop signal (we have cleanup to do after it)."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[_Server], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        handlers = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_started(self)


def bound_port(server: uvicorn.Server, fallback: int) -> int:
    """The port uvicorn actually listens on (differs from the asked one for port 0)."""
    for srv in getattr(server, "servers", []):
        for sock in getattr(srv, "sockets", []) or []:
            return int(sock.getsockname()[1])
    return fallback


def check_port(host: str, port: int) -> None:
    """Raise Conflict, with the reason, when ``host:port`` cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            message = f"cannot listen on {host}:{port}: {reason} (pick another --port)"
            raise Conflict(message) from None


def serve(
    settings: LocalSettings,
    *,
    add: list[IngestRequest] | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Run until SIGINT/SIGTERM; returns the exit code.

    Args:
        settings: where the data lives, what to listen on, how many workers.
        add: videos to add before serving (``kubevod demo``).
        echo: where the user-facing lines go.
    """
    from kubevod.api.app import create_app
    from kubevod.api.tracing import ServerSpans

    check_port(settings.host, settings.port)
    token, generated = api_token(settings)
    api = api_settings(settings, token)  # refuse bad settings before touching the data folder
    runtime = LocalRuntime(settings)
    runtime.open()
    watcher: FolderWatcher | None = None
    try:
        resumed = runtime.pool.resume()
        runtime.pool.start()
        if resumed:
            echo(f"Resuming {len(resumed)} interrupted transcode(s).")
        added = [runtime.ingestor.ingest(request) for request in add or []]
        app = create_app(
            api,
            store=runtime.store,
            catalog=runtime.catalog,
            ingestor=runtime.ingestor,
            chunks=runtime.pool,
        )
        # Server spans continuing a player's traceparent, as in kubevod-api.
        app.add_middleware(ServerSpans, excluded_paths=telemetry.UNTRACED_PATHS.split(","))
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            log_config=None,  # uvicorn's records go through kubevod's handler (cli.py)
        )

        def started(server: uvicorn.Server) -> None:
            url = client_url(settings.host, bound_port(server, settings.port))
            write_token_file(runtime.layout, token)
            runtime.layout.server_file.write_text(json.dumps({"url": url, "pid": os.getpid()}))
            echo(f"kubevod is serving {settings.data} at {url}/  (Ctrl-C to stop)")
            if settings.default_policy == TranscodePolicy.ON_DEMAND:
                echo("Videos added are registered at once and encoded as they are watched.")
            if token is not None:
                echo(
                    f"Changes need the API token ({'made for this run' if generated else 'given'},"
                    f" kept in {runtime.layout.token_file} for `kubevod add/list/rm`)."
                )
            if generated:
                # Printed once. The fragment never leaves the browser; the UI keeps it.
                echo(f"  token: {token}")
                echo(f"  a browser that should use it: {url}/#token={token}")
            for video in added:
                echo(f"  {video.title}: {url}/watch/{video.id}")

        server = _Server(config, started)
        if settings.watch is not None:
            watcher = FolderWatcher(
                settings.watch,
                lambda path: _add_watched(runtime.ingestor, path, settings.watch_policy),
                interval=settings.watch_interval,
                index=runtime.layout.watch_index,
            )
            watcher.start()
            how = _policy_words(settings.watch_policy)
            echo(f"Watching {settings.watch} for new videos ({how}).")
        server.run()
        return 0 if server.started else 1
    finally:
        if watcher is not None:
            watcher.stop()
        with contextlib.suppress(FileNotFoundError):
            runtime.layout.server_file.unlink()
        write_token_file(runtime.layout, None)
        interrupted = runtime.close()
        if interrupted:
            echo(f"Stopped; {len(interrupted)} unfinished transcode(s) resume on the next start.")
        else:
            echo("Stopped.")


def _add_watched(ingestor: LocalIngestor, path: Path, policy: TranscodePolicy) -> None:
    video = ingestor.ingest(IngestRequest(source=str(path), policy=policy))
    log.info(
        "watch folder: %s -> video %s (%s, %s)", path.name, video.id, video.state, video.policy
    )


def _policy_words(policy: TranscodePolicy) -> str:
    """How a person reads a policy in ``serve``'s start-up lines (pure)."""
    if policy == TranscodePolicy.ON_DEMAND:
        return "on demand: each is encoded as it is watched"
    return "each encoded whole at once"


def api_settings(settings: LocalSettings, token: str | None = None) -> Any:
    """The API's settings: its ``KUBEVOD_*`` env, our data folder, token and Host allowlist."""
    from kubevod.api.settings import ApiSettings
    from pydantic import SecretStr, ValidationError

    try:
        return ApiSettings(
            data_dir=settings.data,
            host=settings.host,
            port=settings.port,
            api_token=SecretStr(token) if token else None,
            allowed_hosts=allowed_hosts(
                settings.host, settings.allowed_hosts, socket.gethostname()
            ),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(f"API settings (KUBEVOD_* environment): {first['msg']}") from None
