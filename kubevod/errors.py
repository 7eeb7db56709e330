"""Domain errors of the shared core. The API maps them to HTTP in one handler;
the operator maps them to kopf's Temporary/Permanent errors."""


class KubevodError(Exception):
    """Base of every error kubevod raises on purpose."""


class NotFound(KubevodError):
    """The thing asked for does not exist."""


class Conflict(KubevodError):
    """The request clashes with the current state (e.g. a duplicate id)."""


class InvalidInput(KubevodError):
    """The input is malformed; retrying the same input cannot succeed."""


class Unavailable(KubevodError):
    """A backend (catalog, object store) cannot be reached right now; retry later."""


class SourceError(InvalidInput):
    """The source media cannot be fetched or decoded."""
