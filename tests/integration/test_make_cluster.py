"""``make cluster`` / ``make cluster-down`` say clearly that they need root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.fixtures.util import ROOT


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="drops root with setpriv"
)
@pytest.mark.parametrize("command", ["up", "down"])
def test_the_cluster_commands_refuse_without_root_and_say_why(command: str) -> None:
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-m", "tests.cluster", command],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "needs root" in result.stdout and "sudo make cluster" in result.stdout
