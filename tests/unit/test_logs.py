"""Structured logs: JSON and text lines, trace ids inside spans, and no secret ever logged."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from kubevod.logs import (
    JsonFormatter,
    get_logger,
    json_wanted,
    redact,
    redact_value,
    register_secret,
    setup_logging,
)


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    """setup_logging changes the root logger; leave it as found for other tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger writes JSON into a buffer for the duration of a test."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = setup_logging(json=True, level="DEBUG", stream=stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


# ------------------------------------------------------------------ trace ids


def test_lines_inside_a_span_carry_its_trace_and_span_ids(captured: io.StringIO) -> None:
    tracer = TracerProvider().get_tracer("test")
    log = get_logger("kubevod.test")
    log.info("before")
    with tracer.start_as_current_span("outer") as outer:
        log.info("in outer")
        with tracer.start_as_current_span("inner") as inner:
            log.info("in inner")
    log.info("after")

    before, in_outer, in_inner, after = lines(captured)
    assert "trace_id" not in before and "span_id" not in before
    assert "trace_id" not in after
    outer_ctx, inner_ctx = outer.get_span_context(), inner.get_span_context()
    assert in_outer["trace_id"] == format(outer_ctx.trace_id, "032x")
    assert in_outer["span_id"] == format(outer_ctx.span_id, "016x")
    assert in_inner["trace_id"] == in_outer["trace_id"]
    assert in_inner["span_id"] == format(inner_ctx.span_id, "016x")


def test_context_logger_carries_video_id_namespace_and_name(captured: io.StringIO) -> None:
    log = get_logger("kubevod.operator", video_id="abc123", namespace="media", name="demo")
    log.info("job created", extra={"job": "demo-g1"})
    log.bind(rendition="720p").warning("slow")
    first, second = lines(captured)
    assert first["video_id"] == "abc123"
    assert first["namespace"] == "media"
    assert first["name"] == "demo"
    assert first["logger"] == "kubevod.operator"
    assert first["job"] == "demo-g1"
    assert first["level"] == "info"
    assert first["ts"].endswith("Z")
    assert second["rendition"] == "720p" and second["video_id"] == "abc123"
    assert second["level"] == "warning"


def test_none_context_is_left_out(captured: io.StringIO) -> None:
    get_logger("x", video_id=None, namespace="media").info("hi")
    (line,) = lines(captured)
    assert "video_id" not in line and line["namespace"] == "media"


def test_text_format_is_one_readable_line_with_context_and_ids() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    handler = setup_logging(json=False, level="INFO", stream=stream)
    try:
        with TracerProvider().get_tracer("t").start_as_current_span("s") as span:
            get_logger("kubevod.worker", video_id="v1").info("encoding %s", "720p")
    finally:
        root.removeHandler(handler)
    text = stream.getvalue().strip()
    assert "\n" not in text
    assert "INFO  kubevod.worker  encoding 720p" in text
    assert "video_id=v1" in text
    assert f"trace_id={format(span.get_span_context().trace_id, '032x')}" in text


def test_setup_logging_twice_keeps_one_handler() -> None:
    root = logging.getLogger()
    first = setup_logging(json=True, stream=io.StringIO())
    second = setup_logging(json=True, stream=io.StringIO())
    try:
        assert first not in root.handlers
        assert second in root.handlers
    finally:
        root.removeHandler(second)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, True),
        ({"KUBEVOD_LOG_FORMAT": "json"}, True),
        ({"KUBEVOD_LOG_FORMAT": "JSON"}, True),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBEVOD_LOG_FORMAT": "text"}, False),
    ],
)
def test_json_in_the_cluster_text_in_a_terminal(env: dict[str, str], expected: bool) -> None:
    assert json_wanted(env) is expected


# ------------------------------------------------------------------ redaction

SECRET_CASES = [
    # (text, the secret that must vanish, what must stay readable)
    ("store s3://kubevod:minio-secret-key@minio:9000/kubevod", "minio-secret-key", "minio:9000"),
    ("mongodb://admin:hunter2@mongo-0.mongo:27017/kubevod", "hunter2", "mongo-0.mongo:27017"),
    ("mongodb+srv://admin:p%40ss:w0rd@cluster/db", "p%40ss:w0rd", "cluster/db"),
    ("mongodb://user:p@ss@host:27017/db?authSource=admin", "p@ss", "host:27017"),
    ("https://user:tok3n-value@example.com/video.mp4", "tok3n-value", "example.com/video.mp4"),
    ("redis://:only-a-password@cache:6379", "only-a-password", "cache:6379"),
    ("Authorization: Bearer abc.def-ghi", "abc.def-ghi", "Authorization"),
    ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "authorization"),
    (
        "headers={'Authorization': 'Bearer s3cr3t-tok', 'Host': 'api'}",
        "s3cr3t-tok",
        "'Host': 'api'",
    ),
    (
        '{"authorization": "AWS4-HMAC-SHA256 Credential=AKIA/2026, Signature=f00d"}',
        "f00d",
        "authorization",
    ),
    ("calling with bearer eyJhbGciOi.payload.sig", "eyJhbGciOi", "calling with"),
    (
        "token eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJl in header",
        "eyJpc3MiOiJrdWJlcm5ldGVzIn0",
        "in header",
    ),
    ("MINIO_SECRET_KEY=abc123xyz", "abc123xyz", "MINIO_SECRET_KEY"),
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI other=1", "wJalrXUtnFEMI", "other=1"),
    ("password: hunter2", "hunter2", "password"),
    ("db_password = 'correct horse battery'", "correct horse battery", "db_password"),
    ('{"password": "p\\"quoted\\" pw", "user": "bob"}', "quoted", '"user": "bob"'),
    ("{'secret_key': 'minio123', 'bucket': 'kubevod'}", "minio123", "'bucket': 'kubevod'"),
    ("api_key=AKIAIOSFODNN7; region=us", "AKIAIOSFODNN7", "region=us"),
    ("refresh_token:rt-999,next", "rt-999", "next"),
    ("/v/abc/master.m3u8?expires=99&signature=deadbeef&x=1", "deadbeef", "expires=99"),
    ("GET /media/x.m4s?X-Amz-Signature=cafe1234&X-Amz-Credential=AKIA%2F", "cafe1234", "GET"),
    ("GET /media/x.m4s?X-Amz-Signature=cafe1234&X-Amz-Credential=AKIA%2F", "AKIA%2F", "x.m4s"),
    ("KUBEVOD_SIGNING_KEY_TOKEN=zzz-top", "zzz-top", "KUBEVOD_SIGNING_KEY_TOKEN"),
    ("Cookie: session_id=s355ion", "s355ion", "Cookie"),
]


@pytest.mark.parametrize(("text", "secret", "kept"), SECRET_CASES)
def test_redact_removes_the_secret_and_keeps_the_rest(text: str, secret: str, kept: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned, cleaned
    assert kept in cleaned, cleaned
    assert "***" in cleaned
    assert redact(cleaned) == cleaned, "redaction is idempotent"


@pytest.mark.parametrize(
    "text",
    [
        "encoding 720p at 240 fps, 50% done",
        "uploaded videos/abc/720p/0001.m4s (123456 bytes)",
        "GET /v/abc/master.m3u8 200",
        "s3://kubevod/videos/abc/poster.jpg",
        "http://minio:9000/kubevod",
        "author: Jane Doe",
        "ffmpeg -i in.mp4 -c:v libx264 -crf 23 out.m4s",
        "source url=https://example.com/movie.mkv",
        "token bucket refilled",
    ],
)
def test_ordinary_lines_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_registered_secret_values_vanish_wherever_they_appear() -> None:
    register_secret("K8sSigningValue!")
    register_secret("ab")  # too short to mask safely: ignored
    assert redact("signing with K8sSigningValue! now") == "signing with *** now"
    assert redact("tab stop") == "tab stop"


def test_redact_value_masks_secret_keys_and_walks_structures() -> None:
    value = {
        "url": "mongodb://u:pw123@h/db",
        "nested": {"client_secret": "xyz", "list": ["Bearer abcdef"]},
        "count": 3,
        "password": "",
    }
    cleaned = redact_value("payload", value)
    assert cleaned["url"] == "mongodb://u:***@h/db"
    assert cleaned["nested"]["client_secret"] == "***"
    assert cleaned["nested"]["list"] == ["Bearer ***"]
    assert cleaned["count"] == 3
    assert cleaned["password"] == "", "an empty value reveals nothing"


def test_no_secret_reaches_a_log_line_by_any_route(captured: io.StringIO) -> None:
    log = get_logger("kubevod.api", store_url="s3://ak:route-secret-1@minio:9000/kubevod")
    # in the format arguments
    log.info("connecting to %s", "mongodb://root:route-secret-2@mongo:27017/")
    # in extra fields, by key name and by value
    log.info(
        "settings",
        extra={
            "minio_secret_key": "route-secret-3",
            "headers": {"Authorization": "Bearer route-secret-4"},
        },
    )
    # in a traceback
    try:
        raise ConnectionError("cannot reach s3://ak:route-secret-5@minio:9000/kubevod")
    except ConnectionError:
        log.exception("upload failed")
    # in a message that is not a format string at all
    log.warning({"password": "route-secret-6"})
    # with a bad format string
    log.error("broken %d", "password=route-secret-7")
    # a third-party logger that does not use get_logger
    logging.getLogger("pymongo.topology").info("uri=%s", "mongodb://u:route-secret-8@h/")

    output = captured.getvalue()
    for n in range(1, 9):
        assert f"route-secret-{n}" not in output, output
    parsed = lines(captured)
    assert len(parsed) == 6
    assert parsed[0]["store_url"] == "s3://ak:***@minio:9000/kubevod"
    assert parsed[1]["minio_secret_key"] == "***"
    assert "Traceback" in parsed[2]["exception"] and "minio:9000" in parsed[2]["exception"]


def test_text_output_is_redacted_too() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    handler = setup_logging(json=False, stream=stream)
    try:
        log = get_logger("kubevod.worker", source="https://u:text-secret-1@cdn/x.mp4")
        log.info("token=%s", "text-secret-2")
        try:
            raise RuntimeError("password=text-secret-3")
        except RuntimeError:
            log.exception("failed")
    finally:
        root.removeHandler(handler)
    output = stream.getvalue()
    for n in range(1, 4):
        assert f"text-secret-{n}" not in output, output
    assert "cdn/x.mp4" in output


def test_json_formatter_redacts_even_without_the_filter() -> None:
    record = logging.makeLogRecord(
        {"msg": "dsn %s", "args": ("mongodb://u:fmt-secret@h/",), "levelname": "INFO"}
    )
    record.api_token = "fmt-secret-2"
    line = json.loads(JsonFormatter().format(record))
    assert "fmt-secret" not in json.dumps(line)
    assert line["api_token"] == "***"


def test_library_bookkeeping_fields_stay_out_of_json_lines(
    captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An earlier uvicorn server in the same process may have configured these loggers.
    monkeypatch.setattr(logging.getLogger("uvicorn"), "propagate", True)
    uvicorn_log = logging.getLogger("uvicorn.error")
    monkeypatch.setattr(uvicorn_log, "propagate", True)
    monkeypatch.setattr(uvicorn_log, "handlers", [])
    monkeypatch.setattr(uvicorn_log, "disabled", False)
    monkeypatch.setattr(uvicorn_log, "level", logging.INFO)
    uvicorn_log.info(
        "Started server", extra={"color_message": "\x1b[1mStarted\x1b[0m", "k8s_skip": True}
    )
    (line,) = lines(captured)
    assert line["message"] == "Started server"
    assert "color_message" not in line and "k8s_skip" not in line
