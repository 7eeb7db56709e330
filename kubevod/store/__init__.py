"""Object stores: the ObjectStore port and its backends (DESIGN.md §4)."""

from kubevod.store.base import ObjectInfo, ObjectStore, check_key
from kubevod.store.file import FileStore

__all__ = ["FileStore", "ObjectInfo", "ObjectStore", "check_key"]
