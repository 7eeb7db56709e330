"""Domain errors of the shared core. The API maps them to HTTP in one handler;
the operator maps them to kopf's Temporary/Permanent errors.

Some messages are for the owner only: a source error names local paths, tells
whether a file exists or a port answers, and an outage names internal hosts.
Such a class sets :attr:`KubevodError.public_detail`, the line shown instead
to a caller who is not the owner (``kubevod.api.errors`` decides who is).
"""


class KubevodError(Exception):
    """Base of every error kubevod raises on purpose."""

    #: What a caller who is not the owner reads instead of the message; None: the
    #: message itself is safe to show to anyone.
    public_detail: str | None = None


class NotFound(KubevodError):
    """The thing asked for does not exist."""


class Conflict(KubevodError):
    """The request clashes with the current state (e.g. a duplicate id)."""


class Superseded(Conflict):
    """A write for an attempt the video has moved past: a newer attempt or generation
    started, or the video was deleted (``kubevod.lifecycle``). The writer stops."""


class InvalidInput(KubevodError):
    """The input is malformed; retrying the same input cannot succeed."""


class Unavailable(KubevodError):
    """A backend (catalog, object store) cannot be reached right now; retry later."""

    public_detail = "a backend is unavailable right now; retry later"


class SourceError(InvalidInput):
    """The source media cannot be fetched or decoded."""

    # One line whatever the cause: "no such file", "permission denied", "connection
    # refused" and "not a video" would each tell a stranger something about the host.
    public_detail = "the source cannot be used as a video (the server's owner sees why)"
