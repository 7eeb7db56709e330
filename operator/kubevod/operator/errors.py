"""Domain errors of the operator, and the one table that maps them onto outcomes.

Each error the handlers can meet has exactly one row in ``OUTCOMES``: whether
kopf should try again (``temporary``: ``kopf.TemporaryError`` with a delay) or
the VideoAsset is finished (``permanent``: phase Failed with the row's reason,
and ``kopf.PermanentError``, so kopf stops retrying), and the ``Ready``
condition's reason a user sees in ``kubectl describe``.

- ``InvalidSpec``: the spec is wrong (validation beyond the CRD schema).
- ``OverLimit``: the spec asks for more priority, CPU or memory than the
  namespace's caps (settings ``limits``).
- ``Rejected``: the Kubernetes API answered 4xx to creating the Job (422
  invalid, 403 forbidden by a quota or admission...): it would answer the
  same again, so the owner gets Kubernetes' own message.
- ``Unschedulable``: the Job's pod could not be placed for longer than
  ``timing.unschedulable_seconds``: it leaves the queue with the scheduler's
  message.
- ``kubevod.errors.Unavailable``: the catalog, store or API server is down, a
  5xx or a timeout: not yet, try again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kubevod.errors import InvalidInput, Unavailable


class InvalidSpec(InvalidInput):
    """A VideoAsset spec the schema accepted but the operator cannot run.

    Args:
        problems: one sentence per problem, each naming the field, e.g.
            ``"spec.source.url: scheme 'ftp' is not supported; use http or https"``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class OverLimit(InvalidSpec):
    """The spec asks for more than the namespace's caps allow (one problem per field)."""


class Rejected(Exception):
    """The Kubernetes API refused a request for good (a 4xx other than conflict/throttling).

    Args:
        status: the HTTP status (422, 403, 400...).
        message: Kubernetes' own message (the Status object's ``message``).
    """

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


class Unschedulable(Exception):
    """The Job's pod stayed unschedulable for too long; the message is the scheduler's."""


Kind = Literal["temporary", "permanent"]


@dataclass(frozen=True)
class Outcome:
    """What an error means for a VideoAsset."""

    kind: Kind
    reason: str  # the Ready condition's reason (and the Warning Event's)


#: The one table: the first row whose class the error is an instance of wins.
OUTCOMES: tuple[tuple[type[BaseException], Outcome], ...] = (
    (OverLimit, Outcome("permanent", "OverLimit")),
    (InvalidSpec, Outcome("permanent", "InvalidSpec")),
    (Rejected, Outcome("permanent", "Rejected")),
    (Unschedulable, Outcome("permanent", "Unschedulable")),
    (Unavailable, Outcome("temporary", "Unavailable")),
)


def outcome(exc: BaseException) -> Outcome | None:
    """The row of ``OUTCOMES`` for ``exc``; None for an error the table does not know."""
    for kind, result in OUTCOMES:
        if isinstance(exc, kind):
            return result
    return None
