"""Which chunk a request for a missing object of an on-demand video needs (pure), and
the bounded wait for it on a real file store."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kubevod import keys
from kubevod.models import (
    MediaPlan,
    Rendition,
    TrackKind,
    TranscodePolicy,
    Video,
    VideoState,
)
from kubevod.ondemand import wait_for, wanted_chunk
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
