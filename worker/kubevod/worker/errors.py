"""Errors of the worker, mapped onto the shared domain errors.

- ``SourceError`` (from ``kubevod.errors``): the source is bad; retrying the
  same job cannot succeed (exit code 2, catalog state ``failed``).
- ``TranscodeFailed``: ffmpeg failed for a reason that may be transient; it
  carries the command line and the tail of ffmpeg's log (exit code 1).
- ``Cancelled``: the job was asked to stop.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubevod.errors import KubevodError, SourceError

__all__ = [
    "Cancelled",
    "FetchError",
    "MediaFormatError",
    "SourceError",
    "TranscodeFailed",
    "WorkerError",
]


class WorkerError(KubevodError):
    """Base of the worker's own errors."""


class MediaFormatError(WorkerError):
    """Bytes ffmpeg wrote (or a source) are not the MP4 boxes we expected."""


class FetchError(SourceError):
    """The source could not be fetched (bad URL, refused scheme, too big, 404...)."""


class Cancelled(WorkerError):
    """The transcode was cancelled; nothing is left claiming to be in progress."""


class TranscodeFailed(WorkerError):
    """ffmpeg exited non-zero for a reason that may go away on retry."""

    def __init__(self, message: str, *, argv: Sequence[str] = (), log_tail: str = "") -> None:
        super().__init__(message)
        self.argv = list(argv)
        self.log_tail = log_tail


def one_line(text: str, limit: int = 300) -> str:
    """Squash ``text`` into one line of at most ``limit`` characters (catalog messages)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
