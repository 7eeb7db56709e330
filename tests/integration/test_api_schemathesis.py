"""schemathesis against the app's own OpenAPI schema: no request the schema allows gives a 5xx.

The app runs in a real uvicorn server (in a thread) on real embedded backends
(FileStore + SqliteCatalog) holding one ready video with media, so generated
requests reach the manifest and media code as well as the 404/422 paths, and
HEAD answers go over real HTTP. Examples per operation are capped so the
whole run stays well under a minute.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from kubevod.api.app import create_app
from kubevod.api.settings import ApiSettings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kubevod.backends import open_catalog, open_store
from kubevod.models import IMMUTABLE
from tests.fixtures.util import free_port, wait_for_port
from tests.unit.manifest_cases import ladder_video, segments_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root: Path = tmp_path_factory.mktemp("schemathesis")
    store = open_store((root / "media").as_uri())
    catalog = open_catalog(f"sqlite://{root / 'catalog.db'}")
    video = catalog.create(ladder_video())
    for seg in segments_for(video, [4.0, 2.0]):
        catalog.add_segment(video.id, seg)
        store.put_bytes(seg.key, b"\0" * 64, content_type="video/mp4", cache_control=IMMUTABLE)
    app = create_app(ApiSettings(), store=store, catalog=catalog)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port, timeout=20)
        yield schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        catalog.close()


schema = schemathesis.pytest.from_fixture("api_schema")

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VALUE = re.compile(r"^[\x20-\x7e]*$")


def _header_ok(name: str, value: object) -> bool:
    """A header h11 accepts: a token name and a printable ASCII value."""
    return bool(_TOKEN.match(name)) and isinstance(value, str) and bool(_VALUE.match(value))


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_the_schema_allows_breaks_the_server(case: Any) -> None:
    if case.headers:
        # Generated header names and values may hold bytes HTTP forbids; uvicorn
        # rejects those (400) before the app sees them, so only well-formed ones go.
        case.headers = {k: v for k, v in case.headers.items() if _header_ok(k, v)}
    checks = [not_a_server_error, content_type_conformance, status_code_conformance]
    if case.method != "HEAD":  # a HEAD answer has the headers of a body it does not carry
        checks.append(response_schema_conformance)
    case.call_and_validate(checks=checks)
