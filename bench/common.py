"""Helpers shared by the benchmarks: free ports, test-environment binaries, readiness."""

from __future__ import annotations

import shutil
import socket
import sys
import time
import urllib.request
from pathlib import Path

TESTENV_BIN = Path.home() / ".cache" / "kubevod" / "testenv" / "bin"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary(name: str) -> str:
    """A binary from PATH or from the test environment's folder; exit with a hint if absent."""
    found = shutil.which(name)
    if found:
        return found
    testenv = TESTENV_BIN / name
    if testenv.exists():
        return str(testenv)
    sys.exit(f"{name} not found: run scripts/testenv")


def wait_http(url: str, timeout: float = 30) -> None:
    """Wait until ``url`` answers; re-raise the last connection error after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
