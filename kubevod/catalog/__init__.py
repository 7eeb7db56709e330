"""Catalogs: the Catalog port and its backends (docs/architecture.md §4)."""

from kubevod.catalog.base import SCHEMA_VERSION, Catalog, SortKey
from kubevod.catalog.mongo import MongoCatalog
from kubevod.catalog.sqlite import SqliteCatalog

__all__ = ["SCHEMA_VERSION", "Catalog", "MongoCatalog", "SortKey", "SqliteCatalog"]
