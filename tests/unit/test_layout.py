"""The repository layout keeps Python's own `operator` module importable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_operator_from_repo_root_is_the_standard_library() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import operator, sys; print(operator.__file__); print(operator.itemgetter(1)([0, 7]))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "site-packages" not in out[0] and str(ROOT) not in out[0]
    assert out[1] == "7"


def test_namespace_portions_merge() -> None:
    import kubevod.api
    import kubevod.operator
    import kubevod.worker

    import kubevod.models

    for module in (kubevod.api, kubevod.operator, kubevod.worker):
        assert module.__file__ is not None
    assert kubevod.models.Video().media_prefix().startswith("videos/")


def test_cli_version_and_help() -> None:
    from kubevod.__about__ import __version__

    exe = Path(sys.executable).with_name("kubevod")
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"kubevod {__version__}"
    helptext = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "Usage" in helptext.stdout
