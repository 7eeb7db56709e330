"""kubevod.lifecycle is the one writer of catalog entries: no other module of the product
calls a catalog's write methods, and the media key layout is spelled only in kubevod.keys."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("kubevod", "api", "operator", "worker")
#: Catalog methods that change an entry or its segments (reads and QoE are free for all).
WRITES = {
    "create",
    "update",
    "set_progress",
    "add_chunk",
    "add_segment",
    "clear_segments",
    "delete",
}
OWNERS = {ROOT / "kubevod" / "lifecycle.py"}


def _sources() -> list[Path]:
    return sorted(
        p for top in PRODUCT for p in (ROOT / top).rglob("*.py") if ".venv" not in p.parts
    )


def _catalog_writes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in WRITES
            and "catalog" in ast.unparse(node.func.value).lower()
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node.func)}")
    return found


def test_only_the_lifecycle_module_writes_catalog_entries() -> None:
    sources = _sources()
    assert len(sources) > 50  # the scan sees the product
    offenders = [
        hit
        for path in sources
        if path not in OWNERS and ROOT / "kubevod" / "catalog" not in path.parents
        for hit in _catalog_writes(path)
    ]
    assert offenders == []
    assert _catalog_writes(ROOT / "kubevod" / "lifecycle.py")  # the owner does write


def test_the_media_key_layout_is_spelled_only_in_keys() -> None:
    spelled = re.compile(r"""f["']videos/\{|["']videos/["']\s*\+|/g\{[a-z_.]*generation""")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in _sources()
        if path != ROOT / "kubevod" / "keys.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if spelled.search(line)
    ]
    assert offenders == []
