"""The root Dockerfile, skaffold.yaml, the chart and the release workflow agree
with kubevod.images, the one module that names the images.

No container engine runs where the tests run, so the images are not built
here (scripts/images builds them; the real-cluster tests run them); these
checks read the files for the properties the images must have.
"""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from kubevod import images
from tests.chart.helm import CHART, ROOT

SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
CHART_META = yaml.safe_load((CHART / "Chart.yaml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
BUILD_TOOLS = ("gcc", "build-essential", "pip install", "pip wheel", "python -m build", "git ")


def stages() -> dict[str, str]:
    """The Dockerfile's stages by name, each as its instructions from FROM to the
    next FROM (comments left out: they may speak of what is not installed)."""
    instructions = re.sub(r"(?m)^\s*#.*\n", "", DOCKERFILE)
    parts = re.split(r"(?m)^(?=FROM )", instructions)[1:]
    named = {}
    for part in parts:
        found = re.match(r"FROM (?:--platform=\S+ )?\S+ AS (\S+)\n", part)
        assert found, f"every stage is named: {part.splitlines()[0]}"
        named[found.group(1)] = part
    return named


def test_the_dockerfile_has_one_target_per_image_and_two_shared_stages() -> None:
    assert list(stages()) == ["wheel", "venv", *images.COMPONENTS]
    assert re.search(r"(?m)^ARG PYTHON_IMAGE=python:3\.11-slim-bookworm$", DOCKERFILE)
    for name, text in stages().items():
        assert text.startswith(
            ("FROM ${PYTHON_IMAGE} ", "FROM --platform=$BUILDPLATFORM ${PYTHON_IMAGE} ")
        ), name
    assert "node:" not in DOCKERFILE  # hls.js is vendored, not fetched by the build


def test_the_pure_python_wheel_is_built_once_on_the_build_machines_arch() -> None:
    wheel = stages()["wheel"]
    assert wheel.startswith("FROM --platform=$BUILDPLATFORM ")
    assert "python -m pip wheel" in wheel
    venv = stages()["venv"]
    assert "--platform" not in venv.splitlines()[0]  # dependencies for the target arch
    assert "COPY --from=wheel " in venv
    assert "python -m venv /opt/kubevod" in venv


def test_the_build_fails_clearly_without_the_vendored_hlsjs() -> None:
    wheel = stages()["wheel"]
    check = wheel.index("test -s api/kubevod/api/ui/vendor/hls.min.js")
    assert check < wheel.index("pip wheel")
    assert "scripts/testenv hlsjs" in wheel[check:]


@pytest.mark.parametrize("component", images.COMPONENTS)
def test_each_final_stage_is_lean_and_non_root(component: images.Component) -> None:
    final = stages()[component]
    name = images.name(component)
    assert f'org.opencontainers.image.title="{name}"' in final
    assert "COPY --from=venv /opt/kubevod /opt/kubevod" in final
    assert re.search(r"(?m)^USER 10001:10001$", final)
    assert final.rstrip().endswith(f'ENTRYPOINT ["{name}"]')
    assert name in SCRIPTS
    for tool in BUILD_TOOLS:
        assert tool not in final, f"{tool} in the final stage {component}"


def test_worker_image_has_ffmpeg_and_vaapi_drivers_but_no_nvidia_bits() -> None:
    final = stages()["worker"]
    assert "ffmpeg" in final
    assert "mesa-va-drivers" in final
    assert "intel-media-va-driver" in final
    assert "nvidia" not in final.lower().replace("nvidia_driver_capabilities", "")
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,video,utility" in final
    for component in ("operator", "api"):
        assert "apt-get" not in stages()[component]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps PATH out of the build context (last match wins;
    a pattern matching a parent folder matches everything under it)."""
    out = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        regex = re.escape(body).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        parts = path.split("/")
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            out = not keep
    return out


def test_dockerignore_keeps_the_context_to_the_sources_and_the_vendored_player() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "**"
    copied = re.findall(r"(?m)^COPY (?!--from)(.+) \S+$", DOCKERFILE)
    sources = [src for sources in copied for src in sources.split()]
    assert sources
    for src in sources:
        assert not ignored(src, patterns), f"{src} is copied but kept out of the context"
    assert not ignored("api/kubevod/api/ui/vendor/hls.min.js", patterns)
    assert not ignored("worker/kubevod/worker/pipeline.py", patterns)
    for path in (
        "tests/conftest.py",
        "docs/install-k3s.md",
        ".venv/bin/python",
        ".git/HEAD",
        "charts/kubevod/values.yaml",
        "kubevod/__pycache__/cli.cpython-311.pyc",
    ):
        assert ignored(path, patterns), f"{path} would be in the build context"


@pytest.mark.parametrize("component", images.COMPONENTS)
def test_the_chart_deploys_the_images_the_module_names(component: images.Component) -> None:
    assert VALUES[component]["image"]["repository"] == images.repository(component)


def test_the_chart_version_default_tag_is_the_image_tag() -> None:
    assert CHART_META["appVersion"] == images.tag()


def test_skaffold_builds_each_target_of_the_root_dockerfile() -> None:
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    artifacts = config["build"]["artifacts"]
    assert [a["image"] for a in artifacts] == [images.repository(c) for c in images.COMPONENTS]
    for artifact, component in zip(artifacts, images.COMPONENTS, strict=True):
        assert artifact["context"] == "."
        assert artifact["docker"] == {"dockerfile": "Dockerfile", "target": component}
    release = config["deploy"]["helm"]["releases"][0]
    assert release["chartPath"] == "charts/kubevod"
    templates = release["setValueTemplates"]
    for component in images.COMPONENTS:
        key = re.sub(r"[^A-Za-z0-9]", "_", images.repository(component))
        assert templates[f"{component}.image.repository"] == f"{{{{.IMAGE_REPO_{key}}}}}"
        assert templates[f"{component}.image.tag"] == f"{{{{.IMAGE_TAG_{key}}}}}"
    profiles = {p["name"]: p for p in config["profiles"]}
    assert set(profiles) == {"dev", "gpu", "gpu-intel"}
    # The gpu profile pins the worker artifact (by index) to amd64.
    worker = images.COMPONENTS.index("worker")
    assert profiles["gpu"]["patches"][0]["path"] == f"/build/artifacts/{worker}/platforms"


def test_scripts_and_workflows_take_the_names_from_the_module() -> None:
    script = (ROOT / "scripts" / "images").read_text()
    assert "-m kubevod.images --shell" in script
    release = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert "make images" in release or "scripts/images" in release
    for text in (script, release):
        for component in images.COMPONENTS:
            assert images.name(component) not in text  # spelled only in kubevod/images.py
