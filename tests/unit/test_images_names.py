"""kubevod.images: the one place that names the images, and who reads it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError
from pathlib import Path

import pytest
from kubevod.operator.settings import WorkerJobSettings

from kubevod import images

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.mark.parametrize(
    ("component", "reference"),
    [
        ("operator", f"ghcr.io/kubevod/kubevod-operator:{VERSION}"),
        ("api", f"ghcr.io/kubevod/kubevod-api:{VERSION}"),
        ("worker", f"ghcr.io/kubevod/kubevod-worker:{VERSION}"),
    ],
)
def test_reference_is_prefix_name_and_package_version(
    component: images.Component, reference: str
) -> None:
    assert images.reference(component) == reference


def test_prefix_and_tag_can_be_given() -> None:
    assert (
        images.reference("api", "localhost:5000/me/", "dev") == "localhost:5000/me/kubevod-api:dev"
    )


def test_tag_falls_back_to_pyproject_outside_an_installed_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(images, "version", missing)
    assert images.tag() == VERSION


def test_a_local_version_makes_a_valid_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "version", lambda name: "0.2.0.dev3+g1234abc")
    assert images.tag() == "0.2.0.dev3-g1234abc"


def test_operator_default_worker_image_is_the_released_worker() -> None:
    assert WorkerJobSettings().image == images.reference("worker")


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m kubevod.images`` from the repository root, as scripts/images runs it."""
    return subprocess.run(
        [sys.executable, "-m", "kubevod.images", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_main_prints_one_reference_per_target_in_order() -> None:
    out = run()
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [images.reference(c) for c in images.COMPONENTS]


def test_shell_mode_reads_prefix_and_tag_from_the_environment() -> None:
    out = run("--shell", IMAGE_PREFIX="localhost/kubevod", IMAGE_TAG="dev")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "KUBEVOD_IMAGE_OPERATOR=localhost/kubevod/kubevod-operator:dev",
        "KUBEVOD_IMAGE_API=localhost/kubevod/kubevod-api:dev",
        "KUBEVOD_IMAGE_WORKER=localhost/kubevod/kubevod-worker:dev",
    ]


def test_an_unknown_option_is_refused() -> None:
    out = run("--bogus")
    assert out.returncode == 2
    assert "usage" in out.stderr


def test_scripts_images_lists_the_module_names() -> None:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "images"), "--list", "worker"],
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "IMAGE_TAG": "t1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["ghcr.io/kubevod/kubevod-worker:t1"]
