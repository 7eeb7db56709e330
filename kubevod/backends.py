"""Open an ObjectStore or a Catalog from a URL (settings, CLI flags, Job env).

Store URLs:
  ``file:///abs/dir`` or a plain path           -> FileStore
  ``s3://ACCESS:SECRET@host:port/bucket?secure=false&region=us-east-1&create_bucket=true``
                                                -> S3Store (credentials percent-encoded)
Catalog URLs:
  ``sqlite:///abs/file.db``                     -> SqliteCatalog
  ``mongodb://…/dbname`` or ``mongodb+srv://…`` -> MongoCatalog (db "kubevod" if none)

Errors and reprs never contain a password: use ``redact_url`` to log a URL.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit, urlunsplit

from kubevod.catalog.base import Catalog
from kubevod.errors import InvalidInput
from kubevod.store.base import ObjectStore

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MONGO_DB_RE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
DEFAULT_MONGO_DB = "kubevod"


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to log or show)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if "@" not in parts.netloc:
        return url
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))


def public_source(source: str) -> str:
    """A video's source as anyone may see it: no user, password, query or fragment.

    Pre-signed URLs carry their credentials in the query string
    (``X-Amz-Signature=…``), so a source URL is shown as scheme, host and path
    only. Local paths and ``s3://bucket/key`` come back unchanged.
    """
    if "://" not in source:
        return source
    try:
        parts = urlsplit(source)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable url>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise InvalidInput(f"malformed url {redact_url(url)}") from exc


def _flag(query: dict[str, list[str]], name: str, default: bool, url: str) -> bool:
    values = query.get(name)
    if not values:
        return default
    value = values[-1].lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidInput(f"{name} must be true or false in {redact_url(url)}")


def open_store(url: str) -> ObjectStore:
    """Open the object store named by ``url``.

    Args:
        url: ``file:///abs/dir``, a plain folder path, or
            ``s3://ACCESS:SECRET@host:port/bucket?secure=false&region=…&create_bucket=true``.

    Returns:
        A FileStore or an S3Store.
    """
    if "://" not in url:
        if not url.strip():
            raise InvalidInput("empty object store url")
        from kubevod.store.file import FileStore

        return FileStore(Path(url).expanduser())
    parts = _split(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise InvalidInput(
                f"file store url must be file:///absolute/dir, got {redact_url(url)}"
            )
        from kubevod.store.file import FileStore

        return FileStore(Path(unquote(parts.path)))
    if scheme == "s3":
        return _open_s3(url, parts)
    raise InvalidInput(
        f"unsupported object store url {redact_url(url)} (use file:///dir or s3://…/bucket)"
    )


def _open_s3(url: str, parts: SplitResult) -> ObjectStore:
    safe = redact_url(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise InvalidInput(f"bad host or port in {safe}") from exc
    if not host:
        raise InvalidInput(f"no host in {safe}")
    bucket = parts.path.strip("/")
    if not _BUCKET_RE.match(bucket):
        raise InvalidInput(f"s3 url needs one valid bucket name as its path: {safe}")
    query = parse_qs(parts.query)
    netloc_host = f"[{host}]" if ":" in host else host
    endpoint = f"{netloc_host}:{port}" if port else netloc_host
    region = query.get("region", [None])[-1]
    secure = _flag(query, "secure", True, url)
    create_bucket = _flag(query, "create_bucket", False, url)
    from kubevod.store.s3 import S3Store

    store: ObjectStore = S3Store(
        endpoint=endpoint,
        access_key=unquote(parts.username) if parts.username else None,
        secret_key=unquote(parts.password) if parts.password else None,
        bucket=bucket,
        secure=secure,
        region=region,
        create_bucket=create_bucket,
    )
    return store


def mongo_database(url: str) -> str:
    """The database a MongoDB URI names in its path, or ``kubevod`` when none."""
    database = unquote(_split(url).path.lstrip("/")) or DEFAULT_MONGO_DB
    if not _MONGO_DB_RE.match(database):
        raise InvalidInput(f"invalid MongoDB database name in {redact_url(url)}")
    return database


def open_catalog(url: str) -> Catalog:
    """Open the catalog named by ``url``.

    Args:
        url: ``sqlite:///abs/file.db``, ``mongodb://host:port/dbname`` or ``mongodb+srv://…``.

    Returns:
        A SqliteCatalog or a MongoCatalog.
    """
    parts = _split(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/") or path == "/":
            raise InvalidInput(
                f"sqlite url must be sqlite:///absolute/file.db, got {redact_url(url)}"
            )
        from kubevod.catalog.sqlite import SqliteCatalog

        return SqliteCatalog(Path(path))
    if scheme in ("mongodb", "mongodb+srv"):
        database = mongo_database(url)
        from kubevod.catalog.mongo import MongoCatalog

        catalog: Catalog = MongoCatalog(url, database=database)
        return catalog
    raise InvalidInput(
        f"unsupported catalog url {redact_url(url)} (use sqlite:///file.db or mongodb://…)"
    )
