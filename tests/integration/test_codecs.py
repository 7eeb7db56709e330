"""HEVC and AV1 ladders end to end: the real worker on FileStore + SQLite, checked with ffprobe,
the m3u8 parser and real Chromium.

A 3 s 320x180 clip with sound, two rungs (180p, 144p), 2 s segments after the 1 s first one,
encoded once per codec (x265 ultrafast, SVT-AV1 preset 12) and shared by the tests below.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import m3u8
import pytest
from kubevod.worker.mp4 import parse_init
from kubevod.worker.pipeline import run

from kubevod.backends import open_catalog, open_store
from kubevod.errors import SourceError
from kubevod.jobs import LadderRung, TranscodeJob
from kubevod.manifests.hls import render_master
from kubevod.models import TrackKind, Video, VideoState
from tests.browser.conftest import Backends, start_api
from tests.fixtures.jobs import scheduled
from tests.fixtures.media import make_video
from tests.integration.worker_media import (
    check_playlists,
    check_ready_video,
    fast_settings,
    ffprobe_json,
)

pytestmark = pytest.mark.integration

LADDER = [LadderRung(height=180, bitrate=300_000), LadderRung(height=144, bitrate=150_000)]
SEGMENT_SECONDS = 2.0
FOURCC = {"hevc": "hvc1.", "av1": "av01."}


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    root = tmp_path_factory.mktemp("codecs")
    catalog = open_catalog(f"sqlite://{root / 'catalog.db'}")
    yield Backends(root=root, store=open_store((root / "media").as_uri()), catalog=catalog)
    catalog.close()


@pytest.fixture(scope="module")
def transcoded(backends: Backends) -> Callable[[str], Video]:
    """Encode the clip with a codec (once per module and codec); the ready video."""
    done: dict[str, Video] = {}
    source = make_video(backends.root / "clip.mp4", seconds=3, width=320, height=180)

    def encode(codec: str) -> Video:
        if codec not in done:
            video = backends.catalog.create(Video(title=f"{codec} clip", source=str(source)))
            job = TranscodeJob(
                video_id=video.id, source=str(source), segment_seconds=SEGMENT_SECONDS,
                ladder=LADDER, codec=codec, accelerator="none",  # type: ignore[arg-type]
            )  # fmt: skip
            settings = fast_settings(x265_preset="ultrafast", svtav1_preset=12)
            run(
                scheduled(backends.catalog, job), store=backends.store, catalog=backends.catalog,
                scratch=backends.root / "scratch", cancel=threading.Event(), settings=settings,
            )  # fmt: skip
            done[codec] = backends.catalog.get(video.id)
        return done[codec]

    return encode


@pytest.mark.parametrize("codec", ["hevc", "av1"])
def test_codec_ladder_is_real_aligned_and_listed(
    codec: str, transcoded: Callable[[str], Video], backends: Backends, tmp_path: Path
) -> None:
    video = transcoded(codec)
    assert video.state == VideoState.READY, video.message
    assert codec in video.message and "not supported" not in video.message
    starts = check_ready_video(
        video, backends.catalog, backends.store, tmp_path,
        segment_seconds=SEGMENT_SECONDS, codec=codec,
    )  # fmt: skip
    rungs = [r for r in video.renditions if r.kind == TrackKind.VIDEO]
    assert [r.height for r in rungs] == [180, 144]
    assert len(starts[rungs[0].name]) == 2  # 3 s: the 1 s first segment, then one of 2 s
    prefix = video.media_prefix()
    for rung in rungs:
        init = backends.store.get(f"{prefix}/{rung.name}/init.mp4")
        # the codecs string is the one the init segment carries (the worker's reader) ...
        assert rung.codecs == parse_init(init).codecs
        assert rung.codecs.startswith(FOURCC[codec])
        # ... and every uploaded segment really is that codec (ffprobe on init + segment)
        for seg in backends.catalog.segments(video.id, rung.name):
            piece = tmp_path / f"{rung.name}-{seg.seq}.mp4"
            piece.write_bytes(init + backends.store.get(seg.key))
            (stream,) = ffprobe_json(piece, "-show_streams")["streams"]
            assert stream["codec_name"] == codec
            if codec == "hevc":
                assert stream["codec_tag_string"] == "hvc1"  # Safari needs hvc1, not hev1
    master = check_playlists(video, backends.catalog)
    listed = {p.stream_info.codecs for p in master.playlists}
    assert listed == {f"{r.codecs},mp4a.40.2" for r in rungs}


def test_bitrate_caps_follow_the_codec(transcoded: Callable[[str], Video]) -> None:
    """Explicit rungs keep the bitrate they ask for; the encoded peak stays near the cap."""
    for codec in ("hevc", "av1"):
        video = transcoded(codec)
        for rung in (r for r in video.renditions if r.kind == TrackKind.VIDEO):
            asked = {f"{r.height}p": r.bitrate for r in LADDER}[rung.name]
            assert rung.average_bandwidth <= 1.5 * asked, (codec, rung)


def test_av1_plays_in_chromium(
    page: Any, transcoded: Callable[[str], Video], backends: Backends
) -> None:
    from tests.browser.ui_helpers import open_player, player_state, wait_advance

    video = transcoded("av1")
    server = start_api(backends)
    try:
        open_player(page, server.url, video.id)
        wait_advance(page, 1.0)
        state = player_state(page)
        assert state["errors"] == [], state
        codecs = m3u8.loads(render_master(video)).playlists[0].stream_info.codecs
        assert page.evaluate(f"MediaSource.isTypeSupported('video/mp4; codecs=\"{codecs}\"')")
    finally:
        server.stop()


def test_hevc_is_offered_to_chromium_only_when_it_can_decode_it(
    page: Any, transcoded: Callable[[str], Video]
) -> None:
    video = transcoded("hevc")
    rung = next(r for r in video.renditions if r.kind == TrackKind.VIDEO)
    page.goto("about:blank")
    mime = f'video/mp4; codecs="{rung.codecs}"'
    supported = page.evaluate(f"MediaSource.isTypeSupported('{mime}')")
    if not supported:
        pytest.skip(f"this Chromium has no HEVC decoder (isTypeSupported({mime!r}) is false)")
    assert page.evaluate(f"MediaSource.isTypeSupported('{mime}')")


def test_a_codec_this_worker_cannot_encode_fails_the_job_and_says_so(
    backends: Backends, transcoded: Callable[[str], Video]
) -> None:
    """Never a silent H.264: a job whose codec the worker lacks ends ``failed`` with why."""
    source = transcoded("av1").source
    video = backends.catalog.create(Video(title="vp9 clip", source=source))
    job = TranscodeJob.model_validate({"video_id": video.id, "source": source}).model_copy(
        update={"codec": "vp9"}  # a codec a newer API might accept before the worker knows it
    )
    with pytest.raises(SourceError, match="codec vp9 is not supported by this worker"):
        run(scheduled(backends.catalog, job), store=backends.store, catalog=backends.catalog,
            scratch=backends.root / "scratch", settings=fast_settings())  # fmt: skip
    failed = backends.catalog.get(video.id)
    assert failed.state == VideoState.FAILED
    assert failed.message == "codec vp9 is not supported by this worker"
    assert not list(backends.store.list(f"videos/{video.id}/"))
