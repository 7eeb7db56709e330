"""The library as the CLI sees it: through a running server's HTTP API, or
straight from the data folder when no server runs.

Both return videos as the API's JSON (plain dicts), so ``--json`` output is the
same whichever way the CLI went.

``kubevod add`` through a server imports only this module's light part (the
standard library's ``http.client`` and the settings): the catalog, store and
server modules (pymongo, minio, uvicorn: about half a second of imports) are
imported by what opens the data folder itself. httpx is not used here either: its
import alone (httpcore, h11, anyio, certifi) took 0.13 s of a 0.4 s CLI start, for a
few JSON requests to a server that is usually on the same machine.
"""

from __future__ import annotations

import contextlib
import http.client
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode, urlsplit

from kubevod.errors import KubevodError, NotFound, SourceError, Unavailable
from kubevod.local.settings import DataLayout, LocalSettings, read_server_file

if TYPE_CHECKING:
    from kubevod.catalog.base import Catalog
    from kubevod.jobs import IngestRequest
    from kubevod.models import Video

Json = dict[str, Any]


class Library(Protocol):
    """What ``add``/``list``/``show``/``rm`` need."""

    #: Base URL of a server to print playback links for, if any.
    url: str | None

    def add(self, request: IngestRequest) -> Json: ...

    def get(self, video_id: str) -> Json: ...

    def list(self, *, query: str | None, limit: int, offset: int) -> Json: ...

    def remove(self, video_id: str) -> None: ...

    def close(self) -> None: ...


def video_json(video: Video) -> Json:
    """A catalog video as JSON-ready data (the API's field names, the source as shown)."""
    from kubevod.backends import public_source

    data = video.model_dump(mode="json")
    data["source"] = public_source(video.source)
    return data


class Answer(Protocol):
    """What ``error_reason`` reads of an HTTP response (``Response``, httpx's)."""

    @property
    def text(self) -> str: ...

    @property
    def reason_phrase(self) -> str: ...

    def json(self) -> Any: ...


@dataclass(frozen=True)
class Response:
    """An HTTP response, read whole."""

    status_code: int
    reason_phrase: str
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not JSON."""
        return json.loads(self.content)


class HttpError(Exception):
    """The server could not be reached or did not answer HTTP."""


def request(
    base: str,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Response:
    """One request to ``base`` + ``path`` (a JSON ``body`` when given), read whole.

    Raises:
        HttpError: no connection, a timeout, or an answer that is not HTTP.
    """
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"not an http(s) URL: {base!r}")
    target = parts.path.rstrip("/") + path + (f"?{urlencode(params)}" if params else "")
    sent = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, target, body=data, headers=sent)
        answer = conn.getresponse()
        return Response(answer.status, answer.reason, answer.read())
    except (OSError, http.client.HTTPException) as exc:
        raise HttpError(str(exc) or type(exc).__name__) from None
    finally:
        conn.close()


def error_reason(response: Answer) -> str:
    """The one-line message of an API error response (pure)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message: Any = None
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            if body.get(key):
                message = body[key]
                break
    if isinstance(message, list):  # FastAPI validation errors
        message = "; ".join(str(item.get("msg", item)) for item in message if item)
    if isinstance(message, dict):
        message = message.get("message") or message.get("msg") or str(message)
    text = str(message) if message else (response.text.strip() or response.reason_phrase)
    return " ".join(text.split())[:500]


class HttpLibrary:
    """A running server's ``/api/videos``."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout

    def _call(self, method: str, path: str, **kwargs: Any) -> Response:
        try:
            response = request(
                self.url, method, path, headers=self._headers, timeout=self._timeout, **kwargs
            )
        except HttpError as exc:
            raise Unavailable(f"cannot reach the server at {self.url}: {exc}") from None
        if response.status_code == 404:
            raise NotFound(error_reason(response))
        if response.status_code in (400, 409, 415, 422):
            raise SourceError(error_reason(response))
        if response.status_code >= 400:
            raise KubevodError(f"server said {response.status_code}: {error_reason(response)}")
        return response

    def add(self, request: IngestRequest) -> Json:
        # Unset fields stay out: a server's own default applies (the policy's, say).
        body = request.model_dump(mode="json", exclude_none=True)
        result: Json = self._call("POST", "/api/videos", body=body).json()
        return result

    def get(self, video_id: str) -> Json:
        result: Json = self._call("GET", f"/api/videos/{video_id}").json()
        return result

    def list(self, *, query: str | None, limit: int, offset: int) -> Json:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if query:
            params["q"] = query
        result: Json = self._call("GET", "/api/videos", params=params).json()
        return result

    def remove(self, video_id: str) -> None:
        self._call("DELETE", f"/api/videos/{video_id}")

    def close(self) -> None:
        """Nothing held: each request has its own connection."""


class DirectLibrary:
    """The data folder itself, for when no server runs (read and delete only)."""

    url: str | None = None

    def __init__(self, layout: DataLayout) -> None:
        from kubevod.backends import open_catalog, open_store

        self._layout = layout
        if not layout.catalog.exists():
            raise NotFound(f"no library in {layout.root} yet (add a video first)")
        self._catalog: Catalog = open_catalog(layout.catalog_url())
        self._store = open_store(layout.store_url())

    def add(self, request: IngestRequest) -> Json:  # pragma: no cover - the CLI uses LocalRuntime
        raise NotImplementedError("adding without a server goes through LocalRuntime")

    def get(self, video_id: str) -> Json:
        return video_json(self._catalog.get(video_id))

    def list(self, *, query: str | None, limit: int, offset: int) -> Json:
        page = self._catalog.list(query=query, limit=limit, offset=offset)
        return page.model_dump(mode="json")

    def remove(self, video_id: str) -> None:
        from kubevod.lifecycle import Lifecycle

        video = self._catalog.get(video_id)
        Lifecycle(self._catalog, self._store).purge(video.id)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._catalog.close()


def token_for(settings: LocalSettings, url: str) -> str | None:
    """The token to send to ``url``: the one given (``KUBEVOD_API_TOKEN``, config), else
    the one the server using this data folder keeps in it, when ``url`` is that server.

    The data folder's token is never sent anywhere else, so ``--server`` naming another
    machine cannot collect it.
    """
    if settings.token:
        return settings.token
    running = read_server_file(settings.layout)
    if running is None or str(running["url"]).rstrip("/") != url.rstrip("/"):
        return None
    try:
        return settings.layout.token_file.read_text().strip() or None
    except OSError:
        return None


def server_url(settings: LocalSettings, explicit: str | None) -> str | None:
    """The server to talk to: ``--server``, else settings/env, else a live ``server.json``."""
    if explicit:
        return explicit.rstrip("/")
    if settings.server:
        return settings.server
    running = read_server_file(settings.layout)
    if running is None:
        return None
    url = str(running["url"])
    try:  # the pid may have been reused by another program after a crash
        healthy = request(url, "GET", "/healthz", timeout=3).status_code < 400
    except HttpError:
        return None
    return url if healthy else None
