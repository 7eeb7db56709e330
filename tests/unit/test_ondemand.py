"""Which chunk a request for a missing object of an on-demand video needs (pure), and
the bounded wait for it on a real file store."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubevod.worker.chunkd import gives_way, is_path, sought_elsewhere, stale, viewer_next

from kubevod import keys
from kubevod.catalog.common import BACKGROUND_ASKED
from kubevod.models import (
    ChunkWant,
    MediaPlan,
    Rendition,
    TrackKind,
    TranscodePolicy,
    Video,
    VideoState,
)
from kubevod.ondemand import CatalogWants, wait_for, wanted_chunk
from kubevod.store.file import FileStore

#: 40 s, 1 s then 4 s segments, chunks of at least 4 s: chunk k >= 1 is segment k + 1.
PLAN = MediaPlan(first=1, every=4, fps=30, duration=40, chunk_seconds=4, rungs=["720p", "360p"])
VIDEO = Video(
    id="film", state=VideoState.READY, policy=TranscodePolicy.ON_DEMAND, plan=PLAN,
    chunks_done=[0, 3], generation=2, prefix="videos/film/g2-0a1b2c3d",
    renditions=[
        Rendition(name="720p", bandwidth=1, codecs="avc1.64001f"),
        Rendition(name="audio", kind=TrackKind.AUDIO, bandwidth=1, codecs="mp4a.40.2"),
    ],
)  # fmt: skip


def _key(rendition: str, name: str) -> str:
    return f"{VIDEO.media_prefix()}/{rendition}/{name}"


@pytest.mark.parametrize(
    ("key", "chunk"),
    [
        (_key("720p", "2.m4s"), 1),  # segments 0-1 are chunk 0, then one segment a chunk
        (_key("720p", "9.m4s"), 8),
        (_key("360p", "5.m4s"), 4),  # a rung of the plan not recorded yet
        (_key("720p", "4.m4s"), None),  # chunk 3 is done: a missing object stays missing
        (_key("720p", "1.m4s"), None),  # chunk 0
        (_key("720p", "10.m4s"), 9),  # the last segment, [37, 40)
        (_key("720p", "11.m4s"), None),  # past the plan
        (_key("720p", "07.m4s"), None),  # not a name the worker writes
        (_key("720p", "init.mp4"), None),
        (_key("audio", "5.m4s"), None),  # audio is encoded whole at registration
        (_key("1080p", "5.m4s"), None),  # no such rung
        (_key("720p", "5.m4s.tmp"), None),
        ("videos/film/g1-ffffffff/720p/5.m4s", None),  # another attempt's key
        ("videos/other/g2-0a1b2c3d/720p/5.m4s", None),
    ],
)
def test_wanted_chunk(key: str, chunk: int | None) -> None:
    assert len(PLAN.chunks()) == 10
    assert wanted_chunk(VIDEO, key) == chunk


def test_nothing_is_wanted_of_a_complete_or_eager_video() -> None:
    key = _key("720p", "5.m4s")
    assert wanted_chunk(VIDEO.model_copy(update={"chunks_done": list(range(10))}), key) is None
    assert wanted_chunk(VIDEO.model_copy(update={"plan": None}), key) is None


def test_the_wait_returns_the_object_once_it_exists(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    key = keys.segment_key(VIDEO.media_prefix(), "720p", 5)
    put = threading.Timer(
        0.2, store.put_bytes, args=(key, b"moof"), kwargs={"content_type": "video/mp4"}
    )
    put.start()
    found = wait_for(store, key, timeout=10)
    put.join()
    assert found is not None and found.size == 4


def test_the_wait_ends_at_its_limit_or_when_told_to_give_up(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    key = keys.segment_key(VIDEO.media_prefix(), "720p", 5)
    clock = iter(range(100))
    assert wait_for(store, key, 3, clock=lambda: float(next(clock)), sleep=lambda _: None) is None
    asked = []
    assert wait_for(store, key, 60, give_up=lambda: asked.append(1) or True) is None
    assert asked == [1]


# --- the cluster's scheduler and the chunk workers' choices (pure) ------------------------


class _Wants:
    """Records ``want_chunks`` calls (what ``CatalogWants`` writes)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, list[int]]] = []

    def want_chunks(self, video_id: str, generation: int, chunks: list[int]) -> None:
        self.calls.append((video_id, generation, list(chunks)))


@pytest.mark.parametrize(
    ("chunk", "asked"),
    [
        (1, [1, 2]),  # the chunk, then the one after it so playback runs on
        (2, [2]),  # chunk 3 is done
        (9, [9]),  # the last chunk
        (3, []),  # done: nothing to ask
    ],
)
def test_the_catalog_scheduler_asks_for_the_chunk_and_the_next_not_encoded(
    chunk: int, asked: list[int]
) -> None:
    wants = _Wants()
    CatalogWants(wants).want(VIDEO, chunk)  # type: ignore[arg-type]
    assert wants.calls == ([("film", 2, asked)] if asked else [])


def _want(chunk: int, *, generation: int = 2, at: float = 100.0, holder: str = "") -> ChunkWant:
    return ChunkWant(
        video_id="film", generation=generation, chunk=chunk,
        asked_at=datetime.fromtimestamp(at, UTC), holder=holder,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("want", "video", "why"),
    [
        (_want(1), VIDEO, None),
        (_want(3), VIDEO, "the chunk is encoded"),
        (_want(1, generation=1), VIDEO, "generation 1 is gone (now 2)"),
        (_want(1), VIDEO.model_copy(update={"state": VideoState.FAILED}), "the video is failed"),
        (_want(10), VIDEO, "no such chunk"),
        (
            _want(1),
            VIDEO.model_copy(update={"chunks_done": list(range(10))}),
            "the video is complete",
        ),
    ],
)
def test_a_want_that_needs_no_encode_says_why(
    want: ChunkWant, video: Video, why: str | None
) -> None:
    assert stale(want, video) == why


def test_a_seek_is_a_newer_untaken_want_outside_the_chunk_and_the_next() -> None:
    started = 100.0
    assert sought_elsewhere([_want(7, at=101)], 4, started)
    assert not sought_elsewhere([_want(5, at=101)], 4, started)  # playback running on
    assert not sought_elsewhere([_want(4, at=101)], 4, started)  # a viewer asking again
    assert not sought_elsewhere([_want(7, at=99)], 4, started)  # asked before it started
    assert not sought_elsewhere([_want(7, at=101, holder="w2")], 4, started)  # taken


@pytest.mark.parametrize(
    ("source", "path"),
    [
        ("/source/film.mkv", True),
        ("film.mkv", True),
        ("https://nas.home.arpa/film.mkv", False),
        ("s3://sources/film.mkv", False),
    ],
)
def test_a_source_the_chunk_workers_cannot_read_is_a_path(source: str, path: bool) -> None:
    assert is_path(source) is path


class _Catalog(_Wants):
    """``want_chunks`` recorded with ``background``; ``chunk_wants`` as given."""

    def __init__(self, wants: list[ChunkWant] | None = None) -> None:
        super().__init__()
        self.background: list[list[int]] = []
        self.wants = wants or []

    def want_chunks(
        self, video_id: str, generation: int, chunks: list[int], background: bool = False
    ) -> None:
        (self.background if background else self.calls).append(  # type: ignore[arg-type]
            list(chunks) if background else (video_id, generation, list(chunks))
        )

    def chunk_wants(self, video_id: str) -> list[ChunkWant]:
        return self.wants


def test_a_video_watched_past_the_limit_asks_for_its_rest_in_the_background_once() -> None:
    # VIDEO: chunks 0 and 3 done: 1 s + 4 s (chunk 0 is segments 0-1) = 9 s encoded.
    below = _Catalog()
    CatalogWants(below, promote_after_seconds=10).want(VIDEO, 1)  # type: ignore[arg-type]
    assert below.calls == [("film", 2, [1, 2])] and below.background == []
    past = _Catalog()
    CatalogWants(past, promote_after_seconds=9).want(VIDEO, 1)  # type: ignore[arg-type]
    assert past.calls == [("film", 2, [1, 2])]
    assert past.background == [[4, 5, 6, 7, 8, 9]]  # front to back, after the viewer's
    waiting = _Catalog([_want(6, at=BACKGROUND_ASKED.timestamp())])
    CatalogWants(waiting, promote_after_seconds=9).want(VIDEO, 1)  # type: ignore[arg-type]
    assert waiting.background == []  # asked before and not all taken yet


def test_a_run_goes_on_with_its_videos_next_chunk_only_for_a_viewer() -> None:
    t = 1_800_000_000.0  # 2027
    now = datetime.fromtimestamp(t + 200, UTC)
    viewer, background = _want(4, at=t + 150), _want(5, at=BACKGROUND_ASKED.timestamp())
    taken = _want(6, at=t + 190).model_copy(
        update={"holder": "w2", "lease_until": datetime.fromtimestamp(t + 300, UTC)}
    )
    assert viewer_next([taken, viewer, background], now)
    assert not viewer_next([taken, background], now)
    assert not viewer_next([], now)
    expired = taken.model_copy(update={"lease_until": datetime.fromtimestamp(t + 100, UTC)})
    assert viewer_next([expired], now)  # its worker died: free again


def test_a_background_chunk_gives_way_to_any_viewer_and_a_viewers_chunk_never() -> None:
    t = 1_800_000_000.0
    bg = BACKGROUND_ASKED.timestamp()
    mine_bg = _want(5, at=bg, holder="w1")
    other_viewer = _want(2, at=t).model_copy(update={"video_id": "another film"})
    assert gives_way(mine_bg, other_viewer)
    assert gives_way(mine_bg, _want(8, at=t))  # a viewer of the same video, elsewhere
    assert not gives_way(mine_bg, _want(6, at=bg + 1))  # more of the background
    assert not gives_way(mine_bg, None)  # nobody waits
    # A viewer who reached the background chunk made it theirs: it never gives way.
    assert not gives_way(_want(5, at=t, holder="w1"), other_viewer)
    assert not gives_way(None, other_viewer)  # its want is gone: nothing to give up
