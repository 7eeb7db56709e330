"""A small in-process LRU of rendered manifests of ready videos (see kubevod.api.playback)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class ManifestCache:
    """A bounded LRU of rendered manifests: key -> (body, quoted ETag).

    Only touched from the event loop, so it needs no lock.
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, tuple[bytes, str]] = OrderedDict()

    def get(self, key: Hashable) -> tuple[bytes, str] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: Hashable, item: tuple[bytes, str]) -> None:
        self._items[key] = item
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
