"""The contract between the operator's transcode Job and the worker it runs: one owner.

The operator's Job builder (``kubevod.operator.job_manifest``) writes these names and
the worker (``kubevod.worker.main`` and ``kubevod.worker.settings``, prefix
``KUBEVOD_``) reads them; tests/unit/test_contract.py builds a Job with the
operator's builder and reads its env back with the worker's parser. The chart
selects the Job's pods by the labels (its NetworkPolicies); the images' names
are owned by ``kubevod.images``. docs/architecture.md §4 describes it.

Lists travel as comma lists, numbers as decimal text.
"""

from __future__ import annotations

# -- environment ------------------------------------------------------------------------

#: The whole ``kubevod.jobs.TranscodeJob`` as JSON.
JOB = "KUBEVOD_JOB"
#: The catalog's URL (from a Secret, never a literal value in the Job).
CATALOG_URL = "KUBEVOD_CATALOG_URL"
#: The object store's URL (from a Secret).
STORE_URL = "KUBEVOD_STORE_URL"
#: A spread transcode's pod index (0 .. TranscodeJob.pods - 1): Kubernetes sets it in
#: every pod of an Indexed Job.
POD_INDEX = "JOB_COMPLETION_INDEX"
#: Least chunk length of a spread transcode (s; the worker's spread_chunk_seconds).
SPREAD_CHUNK_SECONDS = "KUBEVOD_SPREAD_CHUNK_SECONDS"
#: Serve /metrics on this port while the Job runs (unset: no server).
METRICS_PORT = "KUBEVOD_METRICS_PORT"
#: W3C trace context: the worker's spans join the operator's trace.
TRACEPARENT = "TRACEPARENT"
TRACESTATE = "TRACESTATE"
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

# -- exit codes -------------------------------------------------------------------------

#: The video is ready.
EXIT_OK = 0
#: Anything that may pass on retry (store or catalog down, ffmpeg killed...).
EXIT_RETRY = 1
#: The source cannot be read or decoded: retrying cannot help (the Job fails at once).
EXIT_BAD_SOURCE = 2
#: The video was deleted or has moved past this Job (a newer attempt or generation):
#: the worker stopped and left nothing; retrying cannot help either.
EXIT_SUPERSEDED = 3
#: Stopped by a signal (pod deletion).
EXIT_CANCELLED = 130
#: Exit codes on which the Job fails without a retry (its pod failure policy).
EXIT_PERMANENT = (EXIT_BAD_SOURCE, EXIT_SUPERSEDED)

# -- the Job's metadata -----------------------------------------------------------------

GROUP = "kubevod.io"
#: The value of ``LABEL_MANAGED_BY`` on every child object of the operator.
MANAGED_BY = "kubevod-operator"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_VIDEO_ID = f"{GROUP}/video-id"
LABEL_ASSET_UID = f"{GROUP}/asset-uid"
LABEL_GENERATION = f"{GROUP}/generation"
#: ``LABEL_NAME`` and ``LABEL_COMPONENT`` of a transcode pod (the chart's policies match them).
WORKER_NAME = "kubevod-worker"
WORKER_COMPONENT = "transcoder"
#: ``LABEL_ROLE`` of the warm chunk workers' pods (their Deployment selects on it).
LABEL_ROLE = f"{GROUP}/role"
CHUNK_WORKER_ROLE = "chunks"
#: ``namespace/name`` of the VideoAsset a Job transcodes.
ANNOTATION_ASSET = f"{GROUP}/asset"
#: The traceparent the Job was started under (for a person reading the Job).
ANNOTATION_TRACEPARENT = f"{GROUP}/traceparent"
#: The worker container's name (the pod failure policy names it).
CONTAINER = "worker"
