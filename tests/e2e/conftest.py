"""Fixtures of the tests on the real cluster: the installed release and a ready video."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.cluster import release
from tests.cluster.cluster import Cluster
from tests.e2e import support
from tests.e2e.support import NS, Watch, video_asset, wait_phase

#: Values a person installing on a 2-core node would set: a transcode Job asks
#: for a quarter of a core (it still uses every idle core: no CPU limit).
VALUES: dict[str, Any] = {
    "worker.resources.requests.cpu": "250m",
    # The HPA test scales the API out from one replica and back.
    "api.autoscaling.minReplicas": 1,
    # The media server is the "NAS" on the node's address; the cluster's own ranges denied.
    **support.FETCH_VALUES,
    # s3 sources from a bucket of their own (the worker user reads it, nothing else there).
    "worker.fetch.s3Buckets": [support.SOURCE_BUCKET],
    # An unschedulable pod gives up after half a minute, not 15 (the test waits for it).
    "operator.unschedulableSeconds": 30,
    # A spread transcode (spec.transcode.pods) cuts the 16 s clip into chunks of 4 s.
    "worker.chunkSeconds": 4,
    # The MongoDB stand-in (FerretDB 1.24, tests/cluster/images/mongodb) has no roles:
    # its createUser takes only `roles: []` and nothing is enforced, so the scoped
    # catalog users are for a real MongoDB only (a chart test checks what it runs there).
    "mongodb.scopedUsers.enabled": False,
}


@dataclass
class Release:
    cluster: Cluster
    cache_url: str

    def get(self, path: str, timeout: float = 20) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.cache_url + path)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


@pytest.fixture(scope="session")
def kubevod(cluster: Cluster) -> Iterator[Release]:
    """The chart installed with the local images, and a media server on the node's address."""
    release.install(cluster, VALUES)
    cluster.apply(support.media_server(), namespace=NS)
    port = cluster.forward_service(NS, release.component("cache"), 80)
    cluster.kubectl(
        "-n", NS, "rollout", "status", f"deploy/{support.MEDIA_SERVER}", "--timeout=120s"
    )
    yield Release(cluster, f"http://127.0.0.1:{port}")


@pytest.fixture(scope="session")
def ready_video(kubevod: Release) -> dict[str, Any]:
    """A URL-source VideoAsset, applied and transcoded; its last status and the phases seen."""
    cluster = kubevod.cluster
    cluster.apply([video_asset("clip", {"url": support.media_url()})], namespace=NS)
    watch = Watch()
    st = wait_phase(cluster, "clip", ("Ready",), timeout=240, watch=watch)
    return {"status": st, "seen": watch.seen}
