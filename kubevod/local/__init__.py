"""Local mode (docs/architecture.md §9): ``kubevod serve``/``add``/``list``/``show``/``rm``.

The API, the player and an in-process transcode pool in one process, with
``FileStore`` and ``SqliteCatalog`` under one data folder.
"""
