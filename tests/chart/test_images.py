"""The Dockerfiles and skaffold.yaml agree with the chart and the distribution.

Docker is not available where the tests run, so the images are not built here;
these checks read the files for the properties the images must have.
"""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from tests.chart.helm import CHART, ROOT

COMPONENTS = ("operator", "api", "worker")
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())


def stages(component: str) -> list[str]:
    """The Dockerfile's stages, each as its text from FROM to the next FROM."""
    text = (ROOT / component / "Dockerfile").read_text()
    return re.split(r"(?m)^(?=FROM )", text)[1:]


@pytest.mark.parametrize("component", COMPONENTS)
def test_dockerfile_is_multi_stage_with_a_lean_non_root_final_stage(component: str) -> None:
    parts = stages(component)
    assert len(parts) >= 3
    final = parts[-1]
    assert re.search(r"(?m)^USER 10001:10001$", final)
    assert f'ENTRYPOINT ["kubevod-{component}"]' in final
    assert f"kubevod-{component}" in SCRIPTS
    for tool in ("gcc", "build-essential", "pip install", "python -m build", "git "):
        assert tool not in final, f"{tool} in the final stage of {component}"
    # The pure-Python wheel is built on the build machine's arch (fast multi-arch).
    assert any("--platform=$BUILDPLATFORM" in p and "python -m build" in p for p in parts)


def test_worker_image_has_ffmpeg_and_vaapi_drivers_but_no_nvidia_bits() -> None:
    final = stages("worker")[-1]
    assert "ffmpeg" in final
    assert "mesa-va-drivers" in final
    assert "intel-media-va-driver" in final
    assert "nvidia" not in final.lower().replace("nvidia_driver_capabilities", "")


def test_dockerignore_keeps_the_context_to_the_sources() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "**" in lines
    assert {"!kubevod/", "!operator/kubevod/", "!api/kubevod/", "!worker/kubevod/"} <= set(lines)


def test_skaffold_builds_the_images_the_chart_deploys() -> None:
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    artifacts = {a["image"]: a["docker"]["dockerfile"] for a in config["build"]["artifacts"]}
    for component in COMPONENTS:
        repository = VALUES[component]["image"]["repository"]
        assert artifacts[repository] == f"{component}/Dockerfile"
    release = config["deploy"]["helm"]["releases"][0]
    assert release["chartPath"] == "charts/kubevod"
    templates = release["setValueTemplates"]
    for component in COMPONENTS:
        assert f"{component}.image.repository" in templates
    assert {p["name"] for p in config["profiles"]} == {"dev", "gpu", "gpu-intel"}
