"""Test configuration: real-server fixtures (tests/fixtures/servers.py) and log capture."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.util import RUNNING

pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.otlp"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Attach the tail of every running server's log to a failing test's report."""
    outcome: Any = yield
    report = outcome.get_result()
    if report.failed:
        for server in RUNNING:
            if server.alive() or server.log.exists():
                report.sections.append((f"{server.name} log (tail)", server.log_tail(40)))
