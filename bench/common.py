"""Helpers shared by the benchmarks: free ports, test-environment binaries, servers, readiness."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
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


def start(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A server in its own process group, its output to ``log``."""
    return subprocess.Popen(
        argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True, env=env
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (workers too), SIGKILL after 10 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def read_section(doc: Path, name: str) -> str | None:
    """The ``<!-- name -->`` … ``<!-- /name -->`` block of ``doc`` (markers included), or None."""
    if not doc.exists():
        return None
    text = doc.read_text()
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    first = text.find(start)
    last = text.find(end, first)
    return None if first < 0 or last < 0 else text[first : last + len(end)]


def write_section(doc: Path, name: str, body: str, title: str) -> None:
    """Replace (or append) the ``<!-- name -->`` block of ``doc``; a new file starts with
    ``title``. Other benchmarks regenerate the rest of the file and keep this block."""
    block = f"<!-- {name} -->\n{body}\n<!-- /{name} -->"
    text = doc.read_text() if doc.exists() else f"{title}\n"
    old = read_section(doc, name)
    text = text.replace(old, block) if old else text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text)


def publish(report: str, doc: Path, write: bool, root: Path) -> None:
    """Print a benchmark's report; with ``write``, also into its ``docs/`` page."""
    print(report)
    if write:
        doc.write_text(report)
        print(f"wrote {doc.relative_to(root)}")
