"""Domain errors of the operator, and how they map onto kopf's error kinds.

``InvalidSpec`` means "this VideoAsset is wrong": retrying cannot help, so the
handlers turn it into ``kopf.PermanentError`` (phase Failed, reason
``InvalidSpec``). ``kubevod.errors.Unavailable`` (catalog or store down) means
"not yet": the handlers turn it into ``kopf.TemporaryError`` with a delay.
"""

from __future__ import annotations

from kubevod.errors import InvalidInput


class InvalidSpec(InvalidInput):
    """A VideoAsset spec the schema accepted but the operator cannot run.

    Args:
        problems: one sentence per problem, each naming the field, e.g.
            ``"spec.source.url: scheme 'ftp' is not supported; use http or https"``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))
