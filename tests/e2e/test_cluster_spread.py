"""One video spread over two pods of an Indexed Job on the real cluster.

``spec.transcode.pods: 2``: the Job controller starts two worker pods at once,
each told its index by Kubernetes; the first registers the plan and chunk 0,
the second joins it, each encodes its share of the chunks, and the video ends
Ready with every chunk counted in status, playing through the nginx cache.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e import support
from tests.e2e.conftest import Release
from tests.e2e.support import NS, Watch, video_asset, wait_phase

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

INDEX = "batch.kubernetes.io/job-completion-index"


def test_a_video_spread_over_two_pods_is_encoded_by_both_and_plays(kubevod: Release) -> None:
    cluster = kubevod.cluster
    asset = video_asset("spread", {"url": support.media_url()}, transcode={"pods": 2})
    cluster.apply([asset], namespace=NS)
    watch = Watch()
    try:
        st = wait_phase(cluster, "spread", ("Ready",), timeout=420, watch=watch)
        # status counts the chunks (4 s chunks of the 16 s clip: the chart value the
        # tests install with), and the two pods running side by side are one try.
        chunks: dict[str, Any] = st["chunks"]
        assert chunks["done"] == chunks["total"] >= 3, st
        assert st["progress"] == 100 and st["attempts"] == 1, st
        job = cluster.get_json("job", "-n", NS, st["jobName"])
        assert job["spec"]["completionMode"] == "Indexed"
        assert job["spec"]["completions"] == job["spec"]["parallelism"] == 2
        assert job["status"].get("succeeded") == 2, job["status"]
        pods = cluster.get_json("pods", "-n", NS, "-l", f"job-name={st['jobName']}")["items"]
        encoded: dict[str, set[int]] = {}
        for pod in pods:
            assert pod["status"]["phase"] == "Succeeded"
            index = pod["metadata"]["annotations"][INDEX]
            log = cluster.kubectl("logs", "-n", NS, pod["metadata"]["name"]).stdout
            encoded[index] = {int(n) for n in re.findall(r"chunk (\d+) (?:of \d+ )?encoded", log)}
        # Both pods encoded chunks, none twice, and together all of them.
        assert encoded.keys() == {"0", "1"} and all(encoded.values()), encoded
        assert not encoded["0"] & encoded["1"], encoded
        assert encoded["0"] | encoded["1"] == set(range(chunks["total"])), encoded
        # It plays: every segment of a rung the master names comes through the cache.
        vid = support.video_id(st)
        code, _, master = kubevod.get(f"/v/{vid}/master.m3u8")
        assert code == 200, master
        media = next(line for line in master.decode().splitlines() if line and line[0] != "#")
        code, _, playlist = kubevod.get(f"/v/{vid}/{media}")
        assert code == 200 and b"#EXT-X-ENDLIST" in playlist, playlist
        base = f"/v/{vid}/{media}".rsplit("/", 1)[0]
        uris = [line for line in playlist.decode().splitlines() if line.endswith(".m4s")]
        assert len(uris) >= 4
        for uri in uris:
            code, _, body = kubevod.get(uri if uri.startswith("/") else f"{base}/{uri}")
            assert code == 200 and len(body) > 1000, (uri, code)
        # Seek-bar thumbnails: each pod tiled its chunks' own sheets; the index names them.
        code, _, about = kubevod.get(f"/api/videos/{vid}")
        assert code == 200, about
        where = urlsplit(json.loads(about)["playback"]["trickplay"] or "")
        assert where.path, about
        index_url = where.path + (f"?{where.query}" if where.query else "")
        code, _, index = kubevod.get(index_url)
        assert code == 200 and index.startswith(b"WEBVTT"), (code, index[:200])
        sheets = {ln.split("#", 1)[0] for ln in index.decode().splitlines() if "#xywh=" in ln}
        assert len(sheets) >= chunks["total"], sheets  # a sheet of its own for every chunk
        folder = where.path.rsplit("/", 1)[0]
        for sheet in sheets:
            code, _, _ = kubevod.get(
                f"{folder}/{sheet}" + (f"?{where.query}" if where.query else "")
            )
            assert code == 200, (sheet, code)
    finally:
        cluster.kubectl("delete", "videoasset", "-n", NS, "spread", "--wait=false", check=False)
