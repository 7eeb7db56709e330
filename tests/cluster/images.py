"""The test cluster's images, built on this machine: none comes from a registry.

Every image the chart runs, and the cluster's own pause, CoreDNS and
metrics-server, has a stand-in built with buildah from
``tests/cluster/images/<name>/`` on a Debian base made by mmdebstrap (or on
``scratch``) with the static binaries of the test environment
(``scripts/testenv``). The project's three images are the root ``Dockerfile``'s
targets on the same base. Each is exported as an OCI archive for
``ctr -n k8s.io images import``, named by a key over everything it is made of,
so an image whose key is unchanged is never rebuilt::

    python -m tests.cluster.images             build what is missing, print each archive
    python -m tests.cluster.images --project   the same, with kubevod-operator, -api, -worker
    python -m tests.cluster.images --list      the table: image, what it stands in for

How each stand-in differs from what users pull: ``tests/cluster/images/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kubevod import images as project_images
from tests.cluster.layout import testenv_root

ROOT = Path(__file__).resolve().parents[2]
#: One build folder per stand-in: its Containerfile and the files it copies.
CONTEXTS = Path(__file__).resolve().parent / "images"
PREFIX = "localhost/kubevod-test"
#: The tag of the project's own images on the test cluster.
PROJECT_TAG = "test"
#: The host's CA bundle, mounted into every RUN step: pip reaches the package
#: index through a TLS proxy whose CA only the host trusts.
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
KEY_LABEL = "io.kubevod.test.key"
PullPolicy = Literal["Never", "IfNotPresent"]
Progress = Callable[[str], None]


def _versions(path: Path) -> dict[str, str]:
    lines = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in lines if not key.startswith("#")}


VERSIONS = _versions(ROOT / "scripts" / "versions.env")


@dataclass(frozen=True)
class Base:
    """The Debian base of every image that is not ``scratch``.

    It stands in for ``python:3.11-slim-bookworm`` too, the default base of the
    project's Dockerfile: bookworm's python3 is 3.11, with venv and pip, and
    ``python`` on PATH (python-is-python3).
    """

    suite: str = "bookworm"
    include: tuple[str, ...] = (
        "python3",
        "python3-venv",
        "python3-pip",
        "python-is-python3",
        "ca-certificates",
    )
    env: tuple[str, ...] = (
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG=C.UTF-8",
        # Debian marks its Python externally managed; images pip-install into it.
        "PIP_BREAK_SYSTEM_PACKAGES=1",
    )

    @property
    def reference(self) -> str:
        return f"{PREFIX}/python:{self.suite}"

    @property
    def mirrors(self) -> tuple[str, ...]:
        """The apt sources of the build and of the image (with security updates)."""
        return (
            f"deb http://deb.debian.org/debian {self.suite} main",
            f"deb http://deb.debian.org/debian {self.suite}-updates main",
            f"deb http://deb.debian.org/debian-security {self.suite}-security main",
        )


BASE = Base()
#: apt and dpkg settings of mmdebstrap, kept in the image for later installs:
#: the mirror may serve an archive snapshot whose Release files have expired;
#: documentation and translations are left out as in Debian's slim images.
APT_OPTIONS = ('Acquire::Check-Valid-Until "false"', 'APT::Install-Recommends "false"')
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
)


@dataclass(frozen=True)
class Image:
    """One stand-in: its name, what it is made of, and what it replaces."""

    name: str
    tag: str
    #: The repository users pull instead (the chart's default, or the cluster part's).
    upstream: str
    #: Binaries of the test environment's bin folder that its Containerfile copies.
    binaries: tuple[str, ...] = ()
    #: The chart value it overrides ("cache.image"); "" for a part of the cluster.
    value: str = ""
    #: The part of the cluster it is ("pause"); "" for a chart image.
    part: str = ""

    @property
    def repository(self) -> str:
        return f"{PREFIX}/{self.name}"

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def context(self) -> Path:
        return CONTEXTS / self.name

    @property
    def containerfile(self) -> Path:
        return self.context / "Containerfile"


IMAGES: tuple[Image, ...] = (
    Image("nginx", "bookworm", "docker.io/library/nginx", value="cache.image"),
    Image(
        "minio", VERSIONS["MINIO_VERSION"], "quay.io/minio/minio", ("minio",), value="minio.image"
    ),
    Image("mc", VERSIONS["MC_VERSION"], "quay.io/minio/mc", ("mc",), value="minio.mc"),
    Image(
        "mongodb",
        f"ferretdb-{VERSIONS['FERRETDB_VERSION']}",
        "docker.io/library/mongo",
        ("ferretdb",),
        value="mongodb.image",
    ),
    Image(
        "otel-collector",
        VERSIONS["OTELCOL_VERSION"].removeprefix("v"),
        "docker.io/otel/opentelemetry-collector",
        ("otelcol-kubevod",),
        value="telemetry.collector.image",
    ),
    Image("curl", "bookworm", "docker.io/curlimages/curl", value="tests.image"),
    Image("pause", "3.10", "registry.k8s.io/pause", ("pause",), part="pause"),
    Image(
        "coredns",
        VERSIONS["COREDNS_VERSION"].removeprefix("v"),
        "registry.k8s.io/coredns/coredns",
        ("coredns",),
        part="coredns",
    ),
    Image(
        "metrics-server",
        VERSIONS["METRICS_SERVER_VERSION"],
        "registry.k8s.io/metrics-server/metrics-server",
        ("metrics-server",),
        part="metrics-server",
    ),
    Image(
        "kube-router",
        VERSIONS["KUBE_ROUTER_VERSION"],
        "docker.io/cloudnativelabs/kube-router",
        ("kube-router",),
        part="network-policy",
    ),
)

#: The scripts/testenv component that installs each binary.
TESTENV_COMPONENTS = {
    "minio": "minio",
    "mc": "mc",
    "ferretdb": "ferretdb",
    "otelcol-kubevod": "otelcol",
    "pause": "pause",
    "coredns": "coredns",
    "metrics-server": "metrics_server",
    "kube-router": "kube_router",
}


def image(name: str) -> Image:
    """The stand-in called ``name`` (KeyError if there is none)."""
    for candidate in IMAGES:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def project_reference(component: project_images.Component, tag: str = PROJECT_TAG) -> str:
    """``localhost/kubevod-test/kubevod-<component>:<tag>``."""
    return project_images.reference(component, PREFIX, tag)


# --- what to tell helm ---------------------------------------------------------


def helm_overrides(
    project_tag: str = PROJECT_TAG,
    pull_policy: PullPolicy = "Never",
    images: Sequence[Image] = IMAGES,
) -> dict[str, str]:
    """The values a user of these images sets: repository, tag, pull policy of each.

    Args:
        project_tag: Tag of the project's three images.
        pull_policy: ``Never`` (a missing image fails at once) or ``IfNotPresent``.
            The chart's minio.mc and tests.image have no pull policy in the
            templates (the default for a tag that is not ``latest`` is IfNotPresent).
        images: The stand-ins; those without a chart value are skipped.

    Returns:
        ``{"cache.image.repository": "localhost/kubevod-test/nginx", ...}``: every
        value is a string (pass it with ``--set-string``: a tag like 3.10 is not a number).
    """
    refs = [(i.value, i.repository, i.tag) for i in images if i.value]
    for component in project_images.COMPONENTS:
        repository = project_images.repository(component, PREFIX)
        refs.append((f"{component}.image", repository, project_tag))
    values: dict[str, str] = {}
    for value, repository, tag in refs:
        values[f"{value}.repository"] = repository
        values[f"{value}.tag"] = tag
        values[f"{value}.pullPolicy"] = pull_policy
    return values


# --- content keys (pure) --------------------------------------------------------


def digest(parts: Iterable[tuple[str, bytes]]) -> str:
    """A 16-hex-digit key over named parts, whatever their order."""
    h = hashlib.sha256()
    for name, data in sorted(parts):
        h.update(f"{len(name)}:{name}:{len(data)}:".encode())
        h.update(data)
    return h.hexdigest()[:16]


def mmdebstrap_argv(base: Base, rootfs: Path) -> list[str]:
    """The command that writes the base's root file system as a tar."""
    return [
        "mmdebstrap",
        "--variant=minbase",
        "--format=tar",
        # merged /usr set up by mmdebstrap itself: no usrmerge package (and its perl).
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        f"--include={','.join(base.include)}",
        *(f"--aptopt={option}" for option in APT_OPTIONS),
        *(f"--dpkgopt={option}" for option in DPKG_OPTIONS),
        base.suite,
        str(rootfs),
        *base.mirrors,
    ]


def base_config_args(base: Base) -> list[str]:
    """``buildah config`` options of the base (its key label aside)."""
    return [arg for env in base.env for arg in ("--env", env)] + ["--cmd", "python3"]


def base_key(base: Base) -> str:
    """Key of the base: its mmdebstrap command line and its image settings."""
    recipe = [*mmdebstrap_argv(base, Path("rootfs.tar")), *base_config_args(base)]
    return digest([("base", "\0".join(recipe).encode())])


def logical_lines(containerfile: str) -> list[str]:
    """Instructions of a Containerfile, continuation lines joined, comments dropped."""
    lines: list[str] = []
    current = ""
    for raw in containerfile.splitlines():
        if raw.strip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        current += raw
        if current.strip():
            lines.append(current.strip())
        current = ""
    return lines


def copied_sources(containerfile: str) -> list[str]:
    """Paths of the build context that COPY and ADD read (copies from images aside)."""
    sources: list[str] = []
    for line in logical_lines(containerfile):
        instruction, _, rest = line.partition(" ")
        if instruction.upper() not in ("COPY", "ADD"):
            continue
        words = shlex.split(rest)
        if any(word.startswith("--from") for word in words):
            continue
        paths = [word for word in words if not word.startswith("--")]
        sources += paths[:-1]
    return sources


def uses_base(containerfile: str, base: Base = BASE) -> bool:
    """Whether the image is built on (or copies from) the Debian base."""
    return any(base.reference in line for line in logical_lines(containerfile))


def image_key(
    item: Image, files: Mapping[str, bytes], binaries: Mapping[str, str], base: str | None
) -> str:
    """Key of a stand-in.

    Args:
        item: The stand-in (its reference is part of the key: the archive holds it).
        files: Its build folder, ``"<relative path> <octal mode>"`` to contents.
        binaries: Each copied binary's stamp (resolved path, size, mtime).
        base: The base's key when the image uses the base, else None.
    """
    parts = [("reference", item.reference.encode())]
    parts += [(f"file {name}", data) for name, data in files.items()]
    parts += [(f"binary {name}", stamp.encode()) for name, stamp in binaries.items()]
    if base is not None:
        parts.append(("base", base.encode()))
    return digest(parts)


def archive_name(name: str, key: str) -> str:
    return f"{name}-{key}.oci.tar"


# --- .dockerignore (pure) -------------------------------------------------------


@dataclass(frozen=True)
class IgnoreRule:
    """One .dockerignore line: a path pattern, maybe negated (``!``)."""

    regex: re.Pattern[str]
    negated: bool
    #: The pattern up to its first wildcard: what a negation can re-include.
    literal: str


def ignore_rules(text: str) -> list[IgnoreRule]:
    """The rules of a .dockerignore, in order (Docker's pattern syntax)."""
    rules: list[IgnoreRule] = []
    for line in text.splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = os.path.normpath(pattern.removeprefix("!").strip()).lstrip("/")
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        literal = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
        rules.append(IgnoreRule(re.compile(f"^{regex}$"), negated, literal))
    return rules


def ignored(path: str, rules: Sequence[IgnoreRule]) -> bool:
    """Whether Docker leaves ``path`` out of the context: the last rule that
    matches the path or one of its parent folders decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    out = False
    for rule in rules:
        if any(rule.regex.match(prefix) for prefix in prefixes):
            out = not rule.negated
    return out


def may_hold_included(folder: str, rules: Sequence[IgnoreRule]) -> bool:
    """Whether an ignored folder can still hold a file that a negation brings back."""
    return any(
        rule.negated
        and (
            not rule.literal
            or folder == rule.literal
            or rule.literal.startswith(folder + "/")
            or folder.startswith(rule.literal + "/")
        )
        for rule in rules
    )


# --- buildah command lines (pure) -----------------------------------------------


def buildah(storage: Path, *args: str) -> list[str]:
    """A buildah command with its storage under ``storage``, never the system's."""
    return [
        "buildah",
        "--root",
        str(storage / "root"),
        "--runroot",
        str(storage / "runroot"),
        "--storage-driver",
        "overlay",
        *args,
    ]


def build_argv(
    storage: Path,
    reference: str,
    containerfile: Path,
    context: Path,
    target: str = "",
    build_args: Mapping[str, str] | None = None,
) -> list[str]:
    """``buildah build`` of one image: host network (no CNI bridge), OCI runtime for
    RUN, nothing pulled, the host's CA bundle visible to RUN steps."""
    argv = buildah(
        storage,
        "build",
        "--layers",
        "--network=host",
        "--isolation=oci",
        "--pull=never",
        "-v",
        f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
        "-f",
        str(containerfile),
        "-t",
        reference,
    )
    for name, value in (build_args or {}).items():
        argv += ["--build-arg", f"{name}={value}"]
    if target:
        argv += ["--target", target]
    return [*argv, str(context)]


def push_argv(storage: Path, reference: str, archive: Path) -> list[str]:
    """Export an image as an OCI archive that keeps its name (for ``ctr images import``)."""
    return buildah(storage, "push", "--quiet", reference, f"oci-archive:{archive}:{reference}")


# --- the shell: files, buildah, archives ---------------------------------------


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says why, with the tail of the log."""


@dataclass(frozen=True)
class Cache:
    """Where binaries are read and images, archives and logs are written."""

    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def storage(self) -> Path:
        return self.root / "buildah"

    @property
    def logs(self) -> Path:
        return self.images / "logs"

    def archive(self, name: str, key: str) -> Path:
        return self.images / archive_name(name, key)


def default_cache() -> Cache:
    return Cache(testenv_root())


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _run(argv: Sequence[str], log: Path, what: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n$ {shlex.join(argv)}\n".encode())
        out.flush()
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise ImageBuildError(
            f"{what} failed (exit {done.returncode}): {shlex.join(argv)}\n"
            f"last lines of {log}:\n{_tail(log)}"
        )


@contextlib.contextmanager
def _locked(cache: Cache) -> Iterator[None]:
    """One builder at a time per cache (two test sessions may start together)."""
    cache.images.mkdir(parents=True, exist_ok=True)
    with (cache.images / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _folder_files(folder: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        mode = path.stat().st_mode & 0o777
        files[f"{path.relative_to(folder)} {mode:o}"] = path.read_bytes()
    return files


def _binary(cache: Cache, name: str) -> Path:
    path = (cache.bin / name).resolve()
    if not path.is_file():
        component = TESTENV_COMPONENTS.get(name, name)
        raise ImageBuildError(f"{cache.bin / name} is missing: run `scripts/testenv {component}`")
    return path


def binary_stamp(cache: Cache, name: str) -> str:
    """What identifies a built binary cheaply: its versioned path, size and mtime."""
    path = _binary(cache, name)
    st = path.stat()
    return f"{path} {st.st_size} {st.st_mtime_ns}"


def _image_label(cache: Cache, reference: str) -> str | None:
    done = subprocess.run(
        buildah(cache.storage, "inspect", "--type", "image", reference),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return None
    info: dict[str, Any] = json.loads(done.stdout)
    labels = (info.get("OCIv1", {}).get("config") or {}).get("Labels") or {}
    return labels.get(KEY_LABEL)


def _prune(folder: Path, name: str, keep: Path, suffix: str = ".oci.tar") -> None:
    pattern = re.compile(rf"^{re.escape(name)}-[0-9a-f]{{16}}{re.escape(suffix)}$")
    for old in folder.iterdir():
        if pattern.match(old.name) and old != keep:
            old.unlink()


def ensure_base(cache: Cache, progress: Progress = print, base: Base = BASE) -> str:
    """The base in buildah's storage, made if its key changed; returns the key.

    mmdebstrap's tar is kept beside the archives, so losing buildah's storage
    costs an import (seconds), not a bootstrap (about a minute).
    """
    key = base_key(base)
    if _image_label(cache, base.reference) == key:
        return key
    log = cache.logs / "base.log"
    rootfs = cache.images / f"base-{key}.rootfs.tar"
    if not rootfs.exists():
        started = time.monotonic()
        partial = rootfs.with_name(rootfs.name + ".part")
        partial.unlink(missing_ok=True)
        _run(mmdebstrap_argv(base, partial), log, f"mmdebstrap {base.suite}")
        partial.rename(rootfs)
        _prune(cache.images, "base", rootfs, ".rootfs.tar")
        progress(f"[images] base rootfs (mmdebstrap {base.suite}) {_took(started, rootfs)}")
    started = time.monotonic()
    container = "kubevod-test-base"
    subprocess.run(buildah(cache.storage, "rm", container), capture_output=True)
    steps = [
        ["from", "--name", container, "scratch"],
        ["add", container, str(rootfs), "/"],
        ["config", *base_config_args(base), "--label", f"{KEY_LABEL}={key}", container],
        ["commit", "--quiet", "--rm", container, base.reference],
    ]
    for step in steps:
        _run(buildah(cache.storage, *step), log, f"buildah {step[0]} (base)")
    progress(f"[images] {base.reference} imported in {time.monotonic() - started:.1f} s")
    return key


def _took(started: float, archive: Path) -> str:
    size = archive.stat().st_size / 2**20
    return f"in {time.monotonic() - started:.1f} s ({size:.1f} MiB)"


def _stage(cache: Cache, item: Image) -> Path:
    """A build context: the image's folder plus its binaries, hard-linked when possible."""
    context = cache.images / "context" / item.name
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(item.context, context)
    for name in item.binaries:
        source = _binary(cache, name)
        try:
            os.link(source, context / name)
        except OSError:
            shutil.copy2(source, context / name)
    return context


def _build(
    cache: Cache, name: str, reference: str, argv: list[str], archive: Path, progress: Progress
) -> None:
    """Run one build, export its image to ``archive``, drop the name's older archives."""
    started = time.monotonic()
    log = cache.logs / f"{name}.log"
    log.unlink(missing_ok=True)
    _run(argv, log, f"building {reference}")
    partial = archive.with_name(archive.name + ".part")
    partial.unlink(missing_ok=True)
    _run(push_argv(cache.storage, reference, partial), log, f"buildah push {reference}")
    partial.rename(archive)
    _prune(cache.images, name, archive)
    progress(f"[images] {reference} built {_took(started, archive)}")


def build_image(item: Image, cache: Cache, progress: Progress = print) -> Path:
    """One stand-in's archive: the cached one if its key is unchanged, else built."""
    files = _folder_files(item.context)
    containerfile = item.containerfile.read_text()
    on_base = uses_base(containerfile)
    stamps = {name: binary_stamp(cache, name) for name in item.binaries}
    key = image_key(item, files, stamps, base_key(BASE) if on_base else None)
    archive = cache.archive(item.name, key)
    if archive.exists():
        progress(f"[images] {item.reference} cached")
        return archive
    if on_base:
        ensure_base(cache, progress)
    context = _stage(cache, item)
    argv = build_argv(cache.storage, item.reference, context / "Containerfile", context)
    _build(cache, item.name, item.reference, argv, archive, progress)
    shutil.rmtree(context, ignore_errors=True)
    return archive


def build_all(
    progress: Progress = print, images: Sequence[Image] = IMAGES, cache: Cache | None = None
) -> list[Path]:
    """Build every stand-in whose archive is missing; return the archives in table order."""
    cache = cache or default_cache()
    started = time.monotonic()
    with _locked(cache):
        archives = [build_image(item, cache, progress) for item in images]
    took = time.monotonic() - started
    progress(f"[images] {len(archives)} stand-in images ready in {took:.1f} s")
    return archives


def build_cluster_images(progress: Progress = print) -> list[Path]:
    """Every archive a test cluster imports: the stand-ins, then the project's images."""
    return [*build_all(progress=progress), *build_project(progress=progress)]


def project_context_files(root: Path = ROOT, dockerfile: Path | None = None) -> dict[str, bytes]:
    """What the project's build reads: the context .dockerignore lets through,
    plus the Dockerfile and the .dockerignore themselves."""
    dockerfile = dockerfile or root / "Dockerfile"
    ignore = root / ".dockerignore"
    rules = ignore_rules(ignore.read_text()) if ignore.exists() else []
    files = {"<Dockerfile>": dockerfile.read_bytes(), "<.dockerignore>": ignore.read_bytes()}
    for folder, dirs, names in os.walk(root):
        rel = Path(folder).relative_to(root).as_posix()
        rel = "" if rel == "." else rel + "/"
        dirs[:] = sorted(
            d for d in dirs if not ignored(rel + d, rules) or may_hold_included(rel + d, rules)
        )
        for name in sorted(names):
            path = Path(folder) / name
            if ignored(rel + name, rules):
                continue
            mode = path.lstat().st_mode & 0o777
            data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
            files[f"{rel}{name} {mode:o}"] = data
    return files


def build_project(
    progress: Progress = print,
    tag: str = PROJECT_TAG,
    targets: Sequence[project_images.Component] = project_images.COMPONENTS,
    dockerfile: Path | None = None,
    cache: Cache | None = None,
) -> list[Path]:
    """The root Dockerfile's targets on the Debian base, as archives (built when
    the context, the Dockerfile or the base changed; --layers reuses the
    dependency layers when only the sources did)."""
    cache = cache or default_cache()
    dockerfile = dockerfile or ROOT / "Dockerfile"
    if not (ROOT / "api/kubevod/api/ui/vendor/hls.min.js").is_file():
        raise ImageBuildError("hls.js is not vendored: run `scripts/testenv hlsjs`")
    context_key = digest(project_context_files(ROOT, dockerfile).items())
    archives: list[Path] = []
    with _locked(cache):
        for target in targets:
            reference = project_reference(target, tag)
            parts = [("context", context_key), ("reference", reference), ("base", base_key(BASE))]
            key = digest((name, value.encode()) for name, value in parts)
            name = project_images.name(target)
            archive = cache.archive(name, key)
            if archive.exists():
                progress(f"[images] {reference} cached")
            else:
                ensure_base(cache, progress)
                build_args = {"PYTHON_IMAGE": BASE.reference}
                argv = build_argv(cache.storage, reference, dockerfile, ROOT, target, build_args)
                _build(cache, name, reference, argv, archive, progress)
            archives.append(archive)
    return archives


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster.images", description=__doc__)
    parser.add_argument("--list", action="store_true", help="print the table, build nothing")
    parser.add_argument("--project", action="store_true", help="build the project's images too")
    args = parser.parse_args(argv)
    if args.list:
        for item in IMAGES:
            stands_for = item.value or f"cluster {item.part}"
            print(f"{item.reference:<60} {stands_for:<27} {item.upstream}")
        for component in project_images.COMPONENTS:
            print(f"{project_reference(component):<60} {component + '.image':<27} root Dockerfile")
        return 0
    try:
        archives = build_all(progress=lambda line: print(line, file=sys.stderr))
        if args.project:
            archives += build_project(progress=lambda line: print(line, file=sys.stderr))
    except ImageBuildError as err:
        print(err, file=sys.stderr)
        return 1
    for archive in archives:
        print(archive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
