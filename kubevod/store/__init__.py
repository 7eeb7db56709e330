"""Object stores: the ObjectStore port and its backends (docs/architecture.md §4)."""

from kubevod.store.base import ObjectInfo, ObjectStore, check_key
from kubevod.store.file import FileStore
from kubevod.store.s3 import S3Store

__all__ = ["FileStore", "ObjectInfo", "ObjectStore", "S3Store", "check_key"]
