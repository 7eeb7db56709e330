"""The names of kubevod's container images: the one place that spells them.

The chart's ``values.yaml``, ``skaffold.yaml``, the root ``Dockerfile``'s
targets, ``scripts/images`` and the operator's default worker image all agree
with this module (``tests/chart/test_images.py`` checks the files; the
operator imports it). Standard library only, so ``scripts/images`` can run it
with any Python 3.11 before anything is installed::

    python -m kubevod.images            one reference per line: operator, api, worker
    python -m kubevod.images --shell    KUBEVOD_IMAGE_<TARGET>=... lines for bash

Both read ``IMAGE_PREFIX`` and ``IMAGE_TAG`` from the environment.
"""

from __future__ import annotations

import os
import shlex
import sys
import tomllib
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal, get_args

#: Registry and namespace the release workflow pushes to.
PREFIX = "ghcr.io/kubevod"

Component = Literal["operator", "api", "worker"]
#: The Dockerfile's final targets, in build order.
COMPONENTS: tuple[Component, ...] = get_args(Component)

_PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def name(component: Component) -> str:
    """The image's name without prefix or tag, e.g. ``kubevod-worker``."""
    return f"kubevod-{component}"


def repository(component: Component, prefix: str = PREFIX) -> str:
    """The image's repository, e.g. ``ghcr.io/kubevod/kubevod-worker``."""
    return f"{prefix.rstrip('/')}/{name(component)}"


def tag() -> str:
    """The release tag: the distribution's version.

    Returns:
        The installed ``kubevod`` version; from a source tree that is not
        installed, ``pyproject.toml``'s ``project.version``. A local version's
        ``+`` (not allowed in an image tag) becomes ``-``.
    """
    try:
        found = version("kubevod")
    except PackageNotFoundError:
        found = str(tomllib.loads(_PYPROJECT.read_text())["project"]["version"])
    return found.replace("+", "-")


def reference(component: Component, prefix: str = PREFIX, image_tag: str | None = None) -> str:
    """The full reference ``<prefix>/kubevod-<component>:<tag>``."""
    return f"{repository(component, prefix)}:{image_tag or tag()}"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the references (see the module docstring); 2 on an unknown option."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args not in ([], ["--shell"]):
        print("usage: python -m kubevod.images [--shell]", file=sys.stderr)
        return 2
    prefix = os.environ.get("IMAGE_PREFIX") or PREFIX
    image_tag = os.environ.get("IMAGE_TAG") or tag()
    for component in COMPONENTS:
        ref = reference(component, prefix, image_tag)
        if args:
            print(f"KUBEVOD_IMAGE_{component.upper()}={shlex.quote(ref)}")
        else:
            print(ref)
    return 0


if __name__ == "__main__":
    sys.exit(main())
