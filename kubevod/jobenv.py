"""Names of the environment variables the operator sets on a transcode Job for the worker.

One owner for each name: the operator's Job builder (``kubevod.operator.jobs``)
writes them and the worker's settings (``kubevod.worker.settings``, prefix
``KUBEVOD_``) read them (tests/unit/test_jobenv_contract.py holds both to it).
Lists travel as comma lists, numbers as decimal text.
"""

from __future__ import annotations

#: CIDRs and host names a source URL may reach although private/loopback (comma list).
FETCH_ALLOW = "KUBEVOD_FETCH_ALLOW"
#: CIDRs a source URL may never reach, overriding FETCH_ALLOW (comma list).
FETCH_DENY = "KUBEVOD_FETCH_DENY"
#: Seconds a whole source download may take (float).
FETCH_DEADLINE = "KUBEVOD_FETCH_DEADLINE"
#: Largest source the worker downloads, in bytes (int).
MAX_SOURCE_BYTES = "KUBEVOD_MAX_SOURCE_BYTES"
#: Buckets an s3 source may name besides the store's own (comma list).
S3_SOURCE_BUCKETS = "KUBEVOD_S3_SOURCE_BUCKETS"
