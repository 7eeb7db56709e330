"""Test configuration: real-server fixtures (tests/fixtures/servers.py) and log capture."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.util import RUNNING

pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.otlp", "tests.fixtures.cluster"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Attach the tail of every running server's log to a failing test's report."""
    outcome: Any = yield
    report = outcome.get_result()
    if report.failed:
        for server in RUNNING:
            if server.alive() or server.log.exists():
                report.sections.append((f"{server.name} log (tail)", server.log_tail(40)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests that drive Chromium last, and those on the real cluster after them.

    Playwright's sync API keeps its event loop running in the main thread for
    as long as the session-scoped ``browser`` fixture lives, and pytest-asyncio
    cannot start a loop after that; so every async test runs before the first
    browser test. The order inside each group is kept.

    The cluster's tests come last so that it holds its memory for as short a
    time as possible (it is torn down at the end of the session); tests marked
    ``last`` (such as ``helm uninstall``) run after everything else.
    """

    def rank(item: pytest.Item) -> int:
        names = getattr(item, "fixturenames", ())
        last = item.get_closest_marker("last") is not None
        return 4 * last + 2 * ("cluster" in names) + ("browser" in names)

    items.sort(key=rank)  # stable: the order inside each group is kept
