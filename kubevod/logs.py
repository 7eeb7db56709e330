"""Structured logging for every kubevod process, with trace ids and no secrets.

``setup_logging()`` writes JSON lines in the cluster (when
``KUBERNETES_SERVICE_HOST`` is set, or ``KUBEVOD_LOG_FORMAT=json``) and short
readable lines in a terminal. Every record logged inside a span carries
``trace_id`` and ``span_id`` (kubevod.telemetry), and ``get_logger(name,
video_id=...)`` carries the video id (and namespace/name in the operator) on
each line it writes.

Secrets never reach the output: passwords in URLs (``s3://key:secret@``,
``mongodb://user:pass@``), ``Authorization``/bearer tokens, JWTs, values of
keys named like ``*secret*``, ``*password*``, ``*token*``, and any value
registered with ``register_secret`` are replaced by ``***`` in the message,
the extra fields and the traceback (``redact``).
"""

from __future__ import annotations

import datetime as dt
import json as jsonlib
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, TextIO

from opentelemetry import trace

MASK = "***"

#: Key names whose values are secret wherever they appear (``key=value``, JSON, extras).
SECRET_KEY = (
    r"[\w.-]*(?:secret|passw(?:or)?d|pwd|token|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|credentials?|session[_-]?id|cookie|signature)[\w.-]*"
)
_SECRET_KEY_RE = re.compile(rf"^{SECRET_KEY}$", re.I)


def _mask_keeping_quotes(match: re.Match[str]) -> str:
    """``key: "value"`` -> ``key: "***"``: quotes stay, so the line still parses."""
    value = match.group("value")
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group(1)}{quote}{MASK}{quote}"


_PATTERNS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # scheme://user:password@host -> scheme://user:***@host; the password may hold
    # '@' and ':' (greedy up to the last '@' of the authority).
    (re.compile(r"\b([a-z][a-z0-9+.-]*://[^\s:/@]*):[^\s/]*@", re.I), rf"\1:{MASK}@"),
    # Authorization: Bearer x / "authorization": "Basic x" / Proxy-Authorization:
    # a quoted value is masked up to its closing quote, a bare one to the end of
    # the line (AWS4 signatures hold spaces and commas).
    (
        re.compile(
            r"""((?:proxy-)?authorization["']?\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|[^\n]*)""",
            re.I,
        ),
        _mask_keeping_quotes,
    ),
    # a bare "Bearer <token>" anywhere
    (re.compile(r"\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*", re.I), rf"\1 {MASK}"),
    # JWTs (Kubernetes service-account tokens, OIDC) wherever they appear
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    # key=value, key: value, "key": "value", 'key': 'value', ?key=value&
    (
        re.compile(
            rf"""(["']?{SECRET_KEY}["']?\s*(?:=|:)\s*)"""
            r"""(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,;&}\]\)]+)""",
            re.I,
        ),
        _mask_keeping_quotes,
    ),
]

_registered: set[str] = set()
_registered_re: re.Pattern[str] | None = None
_registry_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Never log this exact value (a store secret key, a signing key), whatever its context.

    Values shorter than 4 characters are ignored: masking them would garble
    ordinary text.
    """
    global _registered_re
    if not value or len(value) < 4:
        return
    with _registry_lock:
        _registered.add(value)
        alternatives = sorted(_registered, key=len, reverse=True)
        _registered_re = re.compile("|".join(re.escape(v) for v in alternatives))


def redact(text: str) -> str:
    """``text`` with every secret it holds replaced by ``***`` (idempotent)."""
    if _registered_re is not None:
        text = _registered_re.sub(MASK, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(key: str, value: Any) -> Any:
    """A structured value made safe to log: secret keys masked, strings redacted."""
    if _SECRET_KEY_RE.match(key) and value not in (None, "", False):
        return MASK
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [redact_value("", v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
    "k8s_skip",  # kopf's flag for its Kubernetes Event poster
}
_OURS = frozenset({"trace_id", "span_id"})
#: Context keys that clash with LogRecord attributes (``name``) travel with this prefix.
_RENAMED = "ctx."


def _safe_key(key: str) -> str:
    return _RENAMED + key if key in _STANDARD or key in _OURS else key


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record carries beyond the standard ones (context, extra=...)."""
    return {
        k.removeprefix(_RENAMED): v
        for k, v in record.__dict__.items()
        if k not in _STANDARD and k not in _OURS
    }


class TraceContextFilter(logging.Filter):
    """Put the current span's ``trace_id`` and ``span_id`` (hex) on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


class RedactionFilter(logging.Filter):
    """Rewrite a record so that its message, extras and traceback hold no secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the line
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and key not in _OURS:
                setattr(record, key, redact_value(key.removeprefix(_RENAMED), value))
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, ids, context, exception."""

    def __init__(self, static: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            **self.static,
        }
        for key in ("trace_id", "span_id"):
            if getattr(record, key, None):
                document[key] = getattr(record, key)
        for key, value in extra_fields(record).items():
            document.setdefault(key, redact_value(key, value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exception"] = redact(record.exc_text)
        return jsonlib.dumps(document, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``12:01:02.345 INFO  kubevod.worker  message  key=value trace_id=...``."""

    def format(self, record: logging.LogRecord) -> str:
        clock = dt.datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        parts = [f"{clock} {record.levelname:<5} {record.name}  {record.getMessage()}"]
        fields = [f"{k}={redact_value(k, v)}" for k, v in extra_fields(record).items()]
        trace_id = getattr(record, "trace_id", None)
        if trace_id:
            fields.append(f"trace_id={trace_id} span_id={getattr(record, 'span_id', '')}")
        if fields:
            parts.append("  " + " ".join(fields))
        text = "".join(parts)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + record.exc_text
        return redact(text)


def json_wanted(env: Mapping[str, str] | None = None) -> bool:
    """JSON in the cluster or when ``KUBEVOD_LOG_FORMAT=json``; text otherwise."""
    env = os.environ if env is None else env
    chosen = env.get("KUBEVOD_LOG_FORMAT", "").lower()
    if chosen in ("json", "text"):
        return chosen == "json"
    return bool(env.get("KUBERNETES_SERVICE_HOST"))


class _KubevodHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler setup_logging installed, so a second call replaces it."""


def setup_logging(
    *,
    json: bool | None = None,
    level: int | str | None = None,
    stream: TextIO | None = None,
    service: str | None = None,
) -> logging.Handler:
    """Send every logger's records through one redacting, trace-aware handler on root.

    Args:
        json: force JSON (True) or text (False); None decides from the environment.
        level: root level; ``KUBEVOD_LOG_LEVEL`` or INFO when None.
        stream: where lines go; stderr by default.
        service: added as ``service`` to every JSON line.

    Returns:
        The installed handler (calling again replaces it rather than adding a second).
    """
    use_json = json_wanted() if json is None else json
    chosen_level = level if level is not None else os.environ.get("KUBEVOD_LOG_LEVEL", "INFO")
    handler = _KubevodHandler(stream or sys.stderr)
    handler.addFilter(TraceContextFilter())
    handler.addFilter(RedactionFilter())
    static = {"service": service} if service else None
    handler.setFormatter(JsonFormatter(static) if use_json else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _KubevodHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(chosen_level.upper() if isinstance(chosen_level, str) else chosen_level)
    return handler


class ContextLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger that adds fixed context (video_id, namespace, name) to every record."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        merged = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        kwargs["extra"] = {_safe_key(k): v for k, v in merged.items()}
        return msg, kwargs

    def bind(self, **context: Any) -> ContextLogger:
        """A logger with more context, e.g. ``log.bind(rendition="720p")``."""
        return ContextLogger(self.logger, {**(self.extra or {}), **context})


def get_logger(name: str, /, **context: Any) -> ContextLogger:
    """``get_logger(__name__, video_id=vid)``: a logger whose lines carry ``context``.

    None values are left out, so optional context can be passed as is.
    """
    return ContextLogger(
        logging.getLogger(name), {k: v for k, v in context.items() if v is not None}
    )
