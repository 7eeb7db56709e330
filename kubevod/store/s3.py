"""S3Store: the ObjectStore backend on MinIO or any S3 service (the ``minio`` client).

Every call retries transient failures (connection errors, timeouts, HTTP 5xx,
``SlowDown``) with exponential backoff and raises ``Unavailable`` after the last
try, so a dead store fails within a few seconds instead of hanging. Uploads
either succeed or raise: nothing is ever reported as stored when it is not.
"""

from __future__ import annotations

import builtins
import copy
import functools
import io
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import certifi
import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from opentelemetry.trace import SpanKind

from kubevod.errors import InvalidInput, NotFound, Unavailable
from kubevod.logs import register_secret
from kubevod.store.base import ObjectInfo, check_key
from kubevod.store.file import check_prefix
from kubevod.telemetry import add_event, span

T = TypeVar("T")

#: S3 error codes worth another try (besides any 5xx status).
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "OperationAborted",
        "XMinioServerNotInitialized",
    }
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound"})
#: Uploads larger than this go multipart; segments stay single-part (md5 etags).
PART_SIZE = 16 * 1024 * 1024


class _Transient(Exception):
    """Internal: one attempt failed in a way another attempt may fix."""


class S3Store:
    """An ObjectStore on one bucket of an S3-compatible service."""

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        access_key: str | None = None,
        secret_key: str | None = None,
        secure: bool = True,
        region: str | None = None,
        create_bucket: bool = False,
        attempts: int = 4,
        backoff_s: float = 0.1,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 30.0,
    ) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        register_secret(secret_key)  # never in a log line, even a library's at DEBUG
        self.secure = secure
        self.region = region
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        # Our own retry loop replaces urllib3's, and short connect timeouts make
        # a dead endpoint fail fast (minio's default waits five minutes).
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
            retries=False,
            maxsize=16,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )
        if create_bucket:
            self.ensure_bucket()

    def with_bucket(self, bucket: str) -> S3Store:
        """The same service and credentials on another bucket (an allowed source bucket)."""
        other = copy.copy(self)
        other.bucket = bucket
        return other

    def __repr__(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"S3Store({scheme}://{self.endpoint}/{self.bucket})"

    # -- retry shell -------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T], *, attempts: int | None = None) -> T:
        """Run ``fn`` with retries; map S3 failures to domain errors.

        One client span ``s3 <op>`` covers the call with its retries (an event each);
        the key goes in an attribute, not the span name (names stay few).
        """
        tries = attempts or self.attempts
        op, _, target = what.partition(" ")
        attributes = {
            "server.address": self.endpoint,
            "kubevod.store.op": op,
            "kubevod.store.bucket": self.bucket,
            "kubevod.store.key": target or None,
        }
        with span(f"s3 {op}", span_kind=SpanKind.CLIENT, attributes=attributes):
            for attempt in range(1, tries + 1):
                try:
                    return _translate(what, fn)
                except _Transient as exc:
                    if attempt == tries:
                        raise Unavailable(
                            f"object store {self.endpoint} unavailable ({what}): {exc}"
                        ) from exc.__cause__
                    add_event("retry", attempt=attempt, error=str(exc))
                    time.sleep(self.backoff_s * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet."""

        def make() -> None:
            if not self._client.bucket_exists(self.bucket):
                try:
                    self._client.make_bucket(self.bucket, location=self.region or "us-east-1")
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise

        self._call(f"create bucket {self.bucket}", make)

    # -- writes ------------------------------------------------------------

    def put_file(
        self, key: str, path: Path, *, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        """Upload a complete local file; raises Unavailable if it could not be stored."""
        check_key(key)
        if not Path(path).is_file():
            raise NotFound(f"no such file to upload: {path}")
        result = self._call(
            f"put {key}",
            lambda: self._client.fput_object(
                self.bucket,
                key,
                str(path),
                content_type=content_type,
                metadata=_headers(cache_control),
                part_size=PART_SIZE,
            ),
        )
        return _written(key, result, Path(path).stat().st_size, content_type, cache_control)

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        """Store ``data`` under ``key``; raises Unavailable if it could not be stored."""
        check_key(key)
        result = self._call(
            f"put {key}",
            lambda: self._client.put_object(
                self.bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
                metadata=_headers(cache_control),
                part_size=PART_SIZE,
            ),
        )
        return _written(key, result, len(data), content_type, cache_control)

    # -- reads -------------------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        """Metadata of ``key``; raises NotFound."""
        check_key(key)
        obj = self._call(f"stat {key}", lambda: self._client.stat_object(self.bucket, key))
        headers = obj.metadata or {}
        return ObjectInfo(
            key=key,
            size=int(obj.size or 0),
            etag=(obj.etag or "").strip('"'),
            last_modified=_utc(obj.last_modified),
            content_type=obj.content_type or "application/octet-stream",
            cache_control=headers.get("Cache-Control"),
        )

    def get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``start..end`` (inclusive) of ``key``; raises NotFound."""

        def read() -> bytes:
            response = self._open(key, start, end)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        return self._call(f"get {key}", read)

    def iter_range(
        self, key: str, start: int = 0, end: int | None = None, chunk: int = 256 * 1024
    ) -> Iterator[bytes]:
        """Stream bytes ``start..end`` (inclusive); the request is made here, so NotFound
        and Unavailable raise before the first chunk."""
        response = self._call(f"get {key}", lambda: self._open(key, start, end))
        return self._stream(key, response, chunk)

    def _open(self, key: str, start: int, end: int | None) -> Any:
        check_key(key)
        if start < 0 or (end is not None and end < start):
            raise InvalidInput(f"invalid byte range {start}-{'' if end is None else end}")
        length = 0 if end is None else end - start + 1
        try:
            return self._client.get_object(self.bucket, key, offset=start, length=length)
        except S3Error as exc:
            if exc.code == "InvalidRange":  # start past the end: nothing to read
                return _Empty()
            raise

    def _stream(self, key: str, response: Any, chunk: int) -> Iterator[bytes]:
        try:
            yield from response.stream(chunk)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unavailable(f"object store {self.endpoint} broke off reading {key}") from exc
        finally:
            response.close()
            response.release_conn()

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order.

        A listing interrupted by a transient error resumes after the last key.
        """
        check_prefix(prefix)
        last: str | None = None
        failures = 0
        while True:
            try:
                items = self._client.list_objects(
                    self.bucket, prefix=prefix or None, recursive=True, start_after=last
                )
                for obj in _translate_iter(f"list {prefix}", items):
                    failures = 0
                    last = obj.object_name
                    yield ObjectInfo(
                        key=obj.object_name or "",
                        size=int(obj.size or 0),
                        etag=(obj.etag or "").strip('"'),
                        last_modified=_utc(obj.last_modified),
                    )
                return
            except _Transient as exc:
                failures += 1
                if failures >= self.attempts:
                    raise Unavailable(
                        f"object store {self.endpoint} unavailable (list {prefix}): {exc}"
                    ) from exc.__cause__
                time.sleep(self.backoff_s * 2 ** (failures - 1))

    # -- deletes -----------------------------------------------------------

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (not empty) in batches; returns the count."""
        if not prefix:
            raise InvalidInput("refusing to delete every object (empty prefix)")
        check_prefix(prefix)
        keys = [info.key for info in self.list(prefix)]
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            self._call(f"delete {prefix}", functools.partial(self._remove, batch))
        return len(keys)

    def _remove(self, keys: builtins.list[str]) -> None:
        errors = list(self._client.remove_objects(self.bucket, (DeleteObject(k) for k in keys)))
        real = [e for e in errors if e.code not in _NOT_FOUND_CODES]
        if real:
            raise Unavailable(
                f"object store {self.endpoint} refused to delete {len(real)} objects,"
                f" e.g. {real[0].name}: {real[0].code}"
            )

    def ping(self) -> None:
        """Raise Unavailable when the bucket cannot be reached (one quick try)."""
        exists = self._call("ping", lambda: self._client.bucket_exists(self.bucket), attempts=1)
        if not exists:
            raise Unavailable(f"bucket {self.bucket} does not exist on {self.endpoint}")


class _Empty:
    """Stands in for a response with no body (a range starting past the end)."""

    def read(self) -> bytes:
        return b""

    def stream(self, chunk: int) -> Iterator[bytes]:
        return iter(())

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


def _written(
    key: str, result: Any, size: int, content_type: str, cache_control: str | None
) -> ObjectInfo:
    """ObjectInfo of an upload from its response, sparing a HEAD request."""
    return ObjectInfo(
        key=key,
        size=size,
        etag=(result.etag or "").strip('"'),
        last_modified=_utc(getattr(result, "last_modified", None)),
        content_type=content_type,
        cache_control=cache_control,
    )


def _headers(cache_control: str | None) -> dict[str, str | list[str] | tuple[str]] | None:
    # minio sends standard headers such as Cache-Control as-is (not x-amz-meta-).
    return {"Cache-Control": cache_control} if cache_control else None


def _utc(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return True
    if isinstance(exc, ServerError):
        return exc.status_code >= 500 or exc.status_code == 429
    if isinstance(exc, InvalidResponseError):
        # e.g. a proxy's HTML 502 page in front of the store
        return True
    if isinstance(exc, S3Error):
        return exc.code in TRANSIENT_CODES or exc.response.status >= 500
    return False


def _translate(what: str, fn: Callable[[], T]) -> T:
    """Call ``fn``; raise NotFound / Unavailable / _Transient for S3 failures."""
    try:
        return fn()
    except (urllib3.exceptions.HTTPError, OSError, MinioException) as exc:
        _raise_for(what, exc)


def _translate_iter(what: str, items: Iterator[T]) -> Iterator[T]:
    try:
        yield from items
    except (urllib3.exceptions.HTTPError, OSError, MinioException) as exc:
        _raise_for(what, exc)


def _raise_for(what: str, exc: BaseException) -> NoReturn:
    if _is_transient(exc):
        raise _Transient(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
    if isinstance(exc, S3Error):
        if exc.code in _NOT_FOUND_CODES:
            raise NotFound(f"no object {exc.object_name or what!r}") from exc
        if exc.code == "NoSuchBucket":
            raise Unavailable(f"bucket {exc.bucket_name} does not exist ({what})") from exc
        raise Unavailable(f"object store refused {what}: {exc.code}") from exc
    raise Unavailable(f"object store failed {what}: {type(exc).__name__}") from exc
