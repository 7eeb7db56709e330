"""Lists as settings spell them: ``"a, b"`` or ``["a", "b"]`` (pure).

Its own module so that every settings module (the CLI's, the API's, the worker's)
reads lists one way without importing what reads them (the fetch guard's httpx).
"""

from __future__ import annotations

from collections.abc import Iterable


def split_list(value: str | Iterable[str] | None) -> list[str]:
    """``"a, b"`` or ``["a", "b"]`` as a list of non-empty, stripped items."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item and item.strip()]
