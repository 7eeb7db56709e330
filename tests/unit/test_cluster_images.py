"""The test cluster's image table, keys and helm values (tests/cluster/images.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster import images
from tests.cluster.images import BASE, IMAGES, Base, Image

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubevod"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
IMAGE_SCHEMA = json.loads((CHART / "values.schema.json").read_text())["definitions"]["image"]
PROJECT_VALUES = {"operator.image", "api.image", "worker.image"}


def image_values(tree: Any, path: str = "") -> dict[str, dict[str, Any]]:
    """Every mapping of values.yaml that names an image (it has a repository), by dotted path."""
    found: dict[str, dict[str, Any]] = {}
    if isinstance(tree, dict):
        if "repository" in tree:
            found[path] = tree
        for key, sub in tree.items():
            found |= image_values(sub, f"{path}.{key}" if path else key)
    return found


def test_every_image_of_the_chart_has_a_stand_in_or_is_the_projects() -> None:
    stand_ins = {item.value for item in IMAGES if item.value}
    assert set(image_values(VALUES)) == stand_ins | PROJECT_VALUES
    assert not stand_ins & PROJECT_VALUES


def test_each_stand_in_names_the_repository_it_replaces() -> None:
    chart = image_values(VALUES)
    for item in IMAGES:
        if item.value:
            assert chart[item.value]["repository"] == item.upstream, item.name


def test_the_cluster_parts_are_the_images_the_cluster_runs() -> None:
    from tests.cluster import addons, config

    parts = {item.part: item.reference for item in IMAGES if item.part}
    assert parts == {
        "pause": config.PAUSE_IMAGE,
        "coredns": addons.COREDNS_IMAGE,
        "metrics-server": addons.METRICS_SERVER_IMAGE,
        "network-policy": addons.KUBE_ROUTER_IMAGE,
    }
    assert all(bool(item.value) != bool(item.part) for item in IMAGES)


def test_names_are_unique_and_local() -> None:
    assert len({item.name for item in IMAGES}) == len(IMAGES)
    for item in IMAGES:
        assert item.reference.startswith("localhost/kubevod-test/")
        assert re.fullmatch(IMAGE_SCHEMA["properties"]["tag"]["pattern"], item.tag), item.tag


@pytest.mark.parametrize("item", IMAGES, ids=lambda item: item.name)
def test_containerfile_copies_its_own_files_and_exactly_the_binaries_of_the_table(
    item: Image,
) -> None:
    assert item.containerfile.is_file()
    text = item.containerfile.read_text()
    own = {p.relative_to(item.context).as_posix() for p in item.context.rglob("*") if p.is_file()}
    sources = images.copied_sources(text)
    for source in sources:
        assert source in own or source in item.binaries, f"{item.name} copies unknown {source}"
    assert set(item.binaries) <= set(sources), f"{item.name} does not copy all its binaries"
    assert not set(item.binaries) & own, "a binary would shadow a file of the build folder"
    assert images.uses_base(text) or text.count("FROM scratch") >= 1


def test_every_binary_comes_from_a_testenv_component() -> None:
    testenv = (ROOT / "scripts" / "testenv").read_text()
    for item in IMAGES:
        for binary in item.binaries:
            component = images.TESTENV_COMPONENTS[binary]
            assert f"install_{component}()" in testenv, binary


def test_scripts_of_the_build_folders_are_executable() -> None:
    for item in IMAGES:
        for path in item.context.iterdir():
            if path.name != "Containerfile" and path.name != "README.md":
                assert path.stat().st_mode & 0o111, f"{path} is not executable"


def test_helm_overrides_set_repository_tag_and_pull_policy_of_every_chart_image() -> None:
    values = images.helm_overrides(project_tag="abc123", pull_policy="IfNotPresent")
    chart = set(image_values(VALUES))
    assert {key.rsplit(".", 1)[0] for key in values} == chart
    for path in chart:
        assert values[f"{path}.pullPolicy"] == "IfNotPresent"
    assert values["cache.image.repository"] == "localhost/kubevod-test/nginx"
    assert values["mongodb.image.tag"] == image("mongodb").tag
    assert values["telemetry.collector.image.repository"] == "localhost/kubevod-test/otel-collector"
    assert values["worker.image.repository"] == "localhost/kubevod-test/kubevod-worker"
    assert values["worker.image.tag"] == "abc123"
    assert images.helm_overrides()["api.image.pullPolicy"] == "Never"


def test_helm_overrides_pass_the_charts_image_schema() -> None:
    props = IMAGE_SCHEMA["properties"]
    for key, value in images.helm_overrides().items():
        assert isinstance(value, str)
        field = key.rsplit(".", 1)[1]
        if "pattern" in props[field]:
            assert re.fullmatch(props[field]["pattern"], value), key
        if "enum" in props[field]:
            assert value in props[field]["enum"], key


def test_project_references_follow_kubevod_images() -> None:
    assert images.project_reference("operator") == "localhost/kubevod-test/kubevod-operator:test"
    assert images.project_reference("api", "x1") == "localhost/kubevod-test/kubevod-api:x1"


def image(name: str) -> Image:
    return images.image(name)


FILES = {"Containerfile 644": b"FROM scratch\nCOPY pause /pause\n"}
STAMPS = {"pause": "/cache/pause-1/pause 1400000 1700000000000000000"}


def test_image_key_changes_when_a_build_file_changes() -> None:
    item = image("pause")
    key = images.image_key(item, FILES, STAMPS, None)
    assert key == images.image_key(item, dict(reversed(FILES.items())), STAMPS, None)
    changed = {"Containerfile 644": b"FROM scratch\nCOPY pause /pause\nUSER 1\n"}
    assert images.image_key(item, changed, STAMPS, None) != key
    executable = {"Containerfile 755": FILES["Containerfile 644"]}
    assert images.image_key(item, executable, STAMPS, None) != key
    assert images.image_key(item, {**FILES, "extra.sh 755": b"#!/bin/sh\n"}, STAMPS, None) != key


def test_image_key_changes_with_the_binaries_the_base_and_the_reference() -> None:
    item = image("pause")
    key = images.image_key(item, FILES, STAMPS, None)
    rebuilt = {"pause": STAMPS["pause"].replace("1700000000000000000", "1700000000000000001")}
    assert images.image_key(item, FILES, rebuilt, None) != key
    assert images.image_key(item, FILES, STAMPS, "base1") != key
    assert images.image_key(item, FILES, STAMPS, "base1") != images.image_key(
        item, FILES, STAMPS, "base2"
    )
    retagged = Image("pause", "3.11", item.upstream, item.binaries, part="pause")
    assert images.image_key(retagged, FILES, STAMPS, None) != key
    assert re.fullmatch(r"[0-9a-f]{16}", key)
    assert images.archive_name("pause", key) == f"pause-{key}.oci.tar"


def test_base_key_follows_the_recipe() -> None:
    key = images.base_key(BASE)
    assert key == images.base_key(Base())
    assert images.base_key(Base(include=(*BASE.include, "curl"))) != key
    assert images.base_key(Base(suite="trixie")) != key
    assert images.base_key(Base(env=(*BASE.env, "X=1"))) != key


def test_mmdebstrap_makes_a_minbase_tar_with_python_and_the_security_mirror() -> None:
    argv = images.mmdebstrap_argv(BASE, Path("/c/rootfs.tar"))
    assert argv[:2] == ["mmdebstrap", "--variant=minbase"]
    assert "--format=tar" in argv
    assert "--include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates" in argv
    assert argv[argv.index("bookworm") + 1] == "/c/rootfs.tar"
    assert "deb http://deb.debian.org/debian-security bookworm-security main" in argv
    config = images.base_config_args(BASE)
    assert "PIP_BREAK_SYSTEM_PACKAGES=1" in config


def test_buildah_always_uses_host_network_oci_isolation_and_its_own_storage() -> None:
    storage = Path("/c/buildah")
    argv = images.build_argv(
        storage,
        "localhost/kubevod-test/kubevod-api:test",
        Path("/repo/Dockerfile"),
        Path("/repo"),
        target="api",
        build_args={"PYTHON_IMAGE": BASE.reference},
    )
    assert argv[:8] == [
        "buildah",
        "--root",
        "/c/buildah/root",
        "--runroot",
        "/c/buildah/runroot",
        "--storage-driver",
        "overlay",
        "build",
    ]
    for flag in ("--layers", "--network=host", "--isolation=oci", "--pull=never"):
        assert flag in argv
    assert argv[argv.index("-v") + 1] == f"{images.CA_BUNDLE}:{images.CA_BUNDLE}:ro"
    assert argv[argv.index("--target") + 1] == "api"
    assert argv[argv.index("--build-arg") + 1] == f"PYTHON_IMAGE={BASE.reference}"
    assert argv[-1] == "/repo"
    push = images.push_argv(storage, "localhost/x:1", Path("/c/x.oci.tar"))
    assert push[-1] == "oci-archive:/c/x.oci.tar:localhost/x:1"


def test_copied_sources_read_continued_lines_and_skip_copies_from_images() -> None:
    text = """\
# COPY not-this /x
FROM localhost/kubevod-test/python:bookworm AS caps
COPY a b \\
     /dest/
COPY --chmod=755 c /c
COPY --from=caps /coredns /coredns
ADD d.tar /
"""
    assert images.copied_sources(text) == ["a", "b", "c", "d.tar"]
    assert images.uses_base(text)
    assert not images.uses_base("# localhost/kubevod-test/python:bookworm\nFROM scratch\n")


def test_only_images_on_the_debian_base_depend_on_its_key() -> None:
    on_base = {item.name for item in IMAGES if images.uses_base(item.containerfile.read_text())}
    assert {"nginx", "minio", "mc", "mongodb", "curl", "otel-collector", "coredns"} <= on_base
    assert not {"pause", "metrics-server"} & on_base


DOCKERIGNORE = """\
# comment
**
!pyproject.toml
!kubevod/
!api/kubevod/
**/__pycache__
**/*.pyc
!api/kubevod/api/ui/vendor/hls.min.js
"""


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("pyproject.toml", False),
        ("kubevod/models.py", False),
        ("kubevod/store/s3.py", False),
        ("api/kubevod/api/app.py", False),
        ("api/kubevod/api/ui/vendor/hls.min.js", False),
        ("kubevod/__pycache__/models.cpython-311.pyc", True),
        ("kubevod/store/x.pyc", True),
        ("api/tests/x.py", True),
        ("tests/unit/test_x.py", True),
        ("Dockerfile", True),
        (".venv/bin/python", True),
    ],
)
def test_dockerignore_rules_follow_dockers_semantics(path: str, ignored: bool) -> None:
    assert images.ignored(path, images.ignore_rules(DOCKERIGNORE)) is ignored


def test_ignored_folders_are_skipped_unless_a_negation_may_reach_inside() -> None:
    rules = images.ignore_rules(DOCKERIGNORE)
    assert not images.may_hold_included(".venv", rules)
    assert not images.may_hold_included("docs", rules)
    assert images.may_hold_included("api", rules)
    assert images.may_hold_included("kubevod/__pycache__", rules)


def test_project_context_key_changes_only_with_what_the_build_reads(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text(DOCKERIGNORE)
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    (tmp_path / "kubevod").mkdir()
    (tmp_path / "kubevod" / "models.py").write_text("A = 1\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "x.md").write_text("notes\n")

    def key() -> str:
        return images.digest(images.project_context_files(tmp_path).items())

    first = key()
    (tmp_path / "docs" / "x.md").write_text("other notes\n")
    (tmp_path / "kubevod" / "__pycache__").mkdir()
    (tmp_path / "kubevod" / "__pycache__" / "models.pyc").write_bytes(b"\0")
    assert key() == first
    (tmp_path / "kubevod" / "models.py").write_text("A = 2\n")
    second = key()
    assert second != first
    (tmp_path / "Dockerfile").write_text("FROM y\n")
    assert key() != second
