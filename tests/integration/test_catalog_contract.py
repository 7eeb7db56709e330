"""One Catalog contract, run unchanged against SqliteCatalog and MongoCatalog (FerretDB)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pymongo
import pytest

from kubevod.backends import open_catalog
from kubevod.catalog.base import Catalog, Fence
from kubevod.catalog.common import is_background
from kubevod.catalog.mongo import MongoCatalog
from kubevod.catalog.sqlite import SqliteCatalog
from kubevod.errors import Conflict, InvalidInput, NotFound, Superseded, Unavailable
from kubevod.models import (
    QoeBeacon,
    Rendition,
    Segment,
    Trickplay,
    Video,
    VideoState,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "mongo"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path}/catalog.db"
    else:
        try:
            url = request.getfixturevalue("mongo_url")
        except pytest.FixtureLookupError:
            pytest.skip("mongo_url fixture not available yet")
    cat = open_catalog(url)
    yield cat
    cat.close()


def _video(vid: str, *, title: str = "", minutes: int = 0, **kw: object) -> Video:
    return Video.model_validate(
        {"id": vid, "title": title, "created_at": T0 + timedelta(minutes=minutes), **kw}
    )


def _seg(rendition: str, seq: int, size: int = 100) -> Segment:
    return Segment(
        rendition=rendition,
        seq=seq,
        duration=4.0,
        start=4.0 * seq,
        size=size,
        key=f"videos/v/g1/{rendition}/{seq}.m4s",
    )


def test_created_video_reads_back_equal_with_utc_datetimes(catalog: Catalog) -> None:
    local = datetime(2026, 5, 6, 11, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    video = Video(
        id="rt-1",
        title="Ünïcode tïtle",
        tags=["a", "b"],
        renditions=[Rendition(name="720p", width=1280, height=720, bandwidth=2, codecs="avc1")],
        trickplay=Trickplay(
            vtt_key="t.vtt", interval=5, width=160, height=90, columns=5, rows=5, sheets=1
        ),
        created_at=local,
    )
    created = catalog.create(video)
    got = catalog.get("rt-1")
    assert got == created
    assert got.created_at.tzinfo is not None
    assert got.created_at.utcoffset() == timedelta(0)
    assert got.created_at == datetime(2026, 5, 6, 9, 30, 0, 123000, tzinfo=UTC)
    assert got.renditions[0].height == 720 and got.trickplay is not None


def test_duplicate_id_conflicts_and_missing_id_is_not_found(catalog: Catalog) -> None:
    catalog.create(_video("dup"))
    with pytest.raises(Conflict):
        catalog.create(_video("dup", title="other"))
    assert catalog.get("dup").title == ""
    with pytest.raises(NotFound):
        catalog.get("nope")
    with pytest.raises(NotFound):
        catalog.update("nope", title="x")


def test_list_sorts_pages_and_counts(catalog: Catalog) -> None:
    specs = [("c", "banana", 3, 10.0), ("a", "Apple", 1, 30.0), ("b", "cherry", 2, 20.0)]
    for vid, title, minute, duration in specs:
        catalog.create(_video(vid, title=title, minutes=minute, duration=duration))

    def ids(sort: str) -> list[str]:
        return [v.id for v in catalog.list(sort=sort).items]  # type: ignore[arg-type]

    assert ids("-created") == ["c", "b", "a"]
    assert ids("created") == ["a", "b", "c"]
    assert ids("title") == ["a", "c", "b"]  # case-insensitive: Apple, banana, cherry
    assert ids("-title") == ["b", "c", "a"]
    assert ids("duration") == ["c", "b", "a"]
    assert ids("-duration") == ["a", "b", "c"]
    page = catalog.list(sort="created", offset=1, limit=1)
    assert [v.id for v in page.items] == ["b"]
    assert (page.total, page.offset, page.limit) == (3, 1, 1)
    assert catalog.list(offset=10).items == []
    assert catalog.list(offset=10).total == 3
    with pytest.raises(InvalidInput):
        catalog.list(offset=-1)


def test_list_searches_title_and_tags_and_filters(catalog: Catalog) -> None:
    catalog.create(_video("v1", title="Holiday in Spain", tags=["travel", "Family"], minutes=1))
    catalog.create(_video("v2", title="Birthday party", tags=["family"], minutes=2))
    catalog.create(_video("v3", title="Cat (video) [1]", state=VideoState.READY, minutes=3))

    def ids(**kw: object) -> list[str]:
        return [v.id for v in catalog.list(sort="created", **kw).items]  # type: ignore[arg-type]

    assert ids(query="SPAIN") == ["v1"]
    assert ids(query="day") == ["v1", "v2"]
    assert ids(query="family") == ["v1", "v2"]  # a tag, either case
    assert ids(query="(video) [") == ["v3"]  # no regex or LIKE surprises
    assert ids(query="%") == []
    assert ids(tag="family") == ["v2"]  # the tag filter is exact
    assert ids(tag="travel", query="holiday") == ["v1"]
    assert ids(state=VideoState.READY) == ["v3"]
    assert catalog.list(query="day").total == 2


def test_update_sets_fields_and_updated_at(catalog: Catalog) -> None:
    created = catalog.create(_video("up", updated_at=T0))
    seg_r = Rendition(name="audio", kind="audio", bandwidth=128000, codecs="mp4a.40.2")
    updated = catalog.update(
        "up", title="New", state=VideoState.READY, renditions=[seg_r], duration=12.5
    )
    assert updated.updated_at > created.updated_at
    got = catalog.get("up")
    assert got == updated
    assert (got.title, got.state, got.duration) == ("New", VideoState.READY, 12.5)
    assert got.renditions == [seg_r]
    assert [v.id for v in catalog.list(query="new").items] == ["up"]
    with pytest.raises(InvalidInput):
        catalog.update("up", no_such_field=1)
    with pytest.raises(InvalidInput):
        catalog.update("up", progress="lots")


def test_set_progress_clamps_and_records_speed(catalog: Catalog) -> None:
    catalog.create(_video("pr"))
    catalog.set_progress("pr", 42.5, speed=3.5)
    got = catalog.get("pr")
    assert (got.progress, got.speed) == (42.5, 3.5)
    catalog.set_progress("pr", 150)
    assert catalog.get("pr").progress == 100
    assert catalog.get("pr").speed == 3.5
    catalog.set_progress("pr", -3)
    assert catalog.get("pr").progress == 0


def test_add_chunk_is_a_set_and_fenced(catalog: Catalog) -> None:
    catalog.create(_video("ch", generation=2, prefix="videos/ch/g2-a"))
    fence = Fence(generation=2, prefix="videos/ch/g2-a")
    assert catalog.add_chunk("ch", 3, fence=fence).chunks_done == [3]
    assert catalog.add_chunk("ch", 0, fence=fence).chunks_done in ([3, 0], [0, 3])
    assert sorted(catalog.add_chunk("ch", 3, fence=fence).chunks_done) == [0, 3]  # again: once
    with pytest.raises(Superseded):
        catalog.add_chunk("ch", 1, fence=Fence(generation=2, prefix="videos/ch/g2-b"))
    with pytest.raises(NotFound):
        catalog.add_chunk("ghost", 0)
    assert sorted(catalog.get("ch").chunks_done) == [0, 3]


def test_concurrent_chunk_writers_lose_nothing(
    catalog: Catalog, request: pytest.FixtureRequest
) -> None:
    """Pods of a spread transcode record their chunks at the same moments: every chunk
    stays, and the writer of the last one sees them all (it completes the video)."""
    if isinstance(catalog, MongoCatalog) and _is_ferretdb(request.getfixturevalue("mongo_url")):
        # MongoDB's $addToSet is atomic per document; FerretDB 1.x applies an update's
        # operators between its read and its write. The worker does not depend on it:
        # a spread video completes from its segment records (tests/integration/test_spread.py).
        request.applymarker(
            pytest.mark.xfail(reason="FerretDB 1.x updates are not atomic", strict=False)
        )
    catalog.create(_video("cc"))
    writers, per_writer = 4, 6
    start = threading.Barrier(writers)
    seen: list[int] = []
    lock = threading.Lock()

    def record(w: int) -> None:
        start.wait()
        for i in range(per_writer):
            after = catalog.add_chunk("cc", w * per_writer + i)
            with lock:
                seen.append(len(set(after.chunks_done)))

    threads = [threading.Thread(target=record, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = writers * per_writer
    assert sorted(catalog.get("cc").chunks_done) == list(range(total))
    assert max(seen) == total


def test_segments_are_idempotent_and_ordered(catalog: Catalog) -> None:
    catalog.create(_video("sg"))
    for rendition, seq in [("720p", 1), ("360p", 0), ("720p", 0), ("360p", 1)]:
        catalog.add_segment("sg", _seg(rendition, seq))
    catalog.add_segment("sg", _seg("720p", 1, size=999))  # a retried upload
    segs = catalog.segments("sg")
    assert [(s.rendition, s.seq) for s in segs] == [
        ("360p", 0),
        ("360p", 1),
        ("720p", 0),
        ("720p", 1),
    ]
    assert segs[-1].size == 999
    assert [s.seq for s in catalog.segments("sg", "720p")] == [0, 1]
    assert catalog.segments("sg", "1080p") == []
    catalog.clear_segments("sg")
    assert catalog.segments("sg") == []
    with pytest.raises(NotFound):
        catalog.add_segment("ghost", _seg("720p", 0))


def test_delete_removes_segments_and_qoe(catalog: Catalog) -> None:
    catalog.create(_video("dl"))
    catalog.create(_video("keep"))
    for vid in ("dl", "keep"):
        catalog.add_segment(vid, _seg("720p", 0))
        catalog.record_qoe(QoeBeacon(video_id=vid, session="s1", watch_ms=100))
    catalog.delete("dl")
    catalog.delete("dl")  # absent: no error
    with pytest.raises(NotFound):
        catalog.get("dl")
    assert catalog.segments("dl") == []
    assert catalog.qoe_stats("dl").sessions == 0
    assert len(catalog.segments("keep")) == 1
    assert catalog.qoe_stats("keep").sessions == 1
    catalog.create(_video("dl"))  # the id can be reused
    assert catalog.segments("dl") == []


def test_qoe_latest_beacon_per_session_wins(catalog: Catalog) -> None:
    catalog.create(_video("q"))
    assert catalog.qoe_stats("q").sessions == 0
    assert catalog.qoe_stats("q").startup_ms_avg is None
    catalog.record_qoe(QoeBeacon(video_id="q", session="a", startup_ms=100, watch_ms=1000))
    catalog.record_qoe(
        QoeBeacon(
            video_id="q",
            session="a",
            startup_ms=300,
            watch_ms=9000,
            rebuffer_ms=1000,
            rebuffer_count=1,
            switches=2,
            errors=["x"],
        )
    )
    catalog.record_qoe(QoeBeacon(video_id="q", session="b", startup_ms=500, watch_ms=10000))
    stats = catalog.qoe_stats("q")
    assert stats.sessions == 2
    assert stats.startup_ms_avg == pytest.approx(400)
    assert stats.rebuffer_ratio == pytest.approx(1000 / 20000)
    assert (stats.switches, stats.errors) == (2, 1)


def test_record_qoe_returns_the_sessions_previous_beacon(catalog: Catalog) -> None:
    catalog.create(_video("qp"))
    first = QoeBeacon(video_id="qp", session="a", startup_ms=700, watch_ms=1000, errors=["x"])
    second = QoeBeacon(video_id="qp", session="a", startup_ms=700, watch_ms=5000, switches=1)
    other = QoeBeacon(video_id="qp", session="b", watch_ms=3000)
    elsewhere = QoeBeacon(video_id="qp2", session="a", watch_ms=10)  # same session, other video

    assert catalog.record_qoe(first) is None
    assert catalog.record_qoe(second) == first
    assert catalog.record_qoe(other) is None
    assert catalog.record_qoe(elsewhere) is None
    assert catalog.record_qoe(second) == second  # a resent beacon is its own previous
    assert catalog.qoe_stats("qp").sessions == 2


def test_concurrent_beacons_of_one_session_form_one_chain(
    catalog: Catalog, request: pytest.FixtureRequest
) -> None:
    """Recording and returning the previous beacon is atomic: no two beacons share one."""
    if isinstance(catalog, MongoCatalog) and _is_ferretdb(request.getfixturevalue("mongo_url")):
        # MongoDB's findAndModify is atomic per document; FerretDB 1.x on SQLite runs
        # its query and its write outside one transaction (FerretDB/FerretDB#3040).
        request.applymarker(
            pytest.mark.xfail(reason="FerretDB 1.x findAndModify is not atomic", strict=False)
        )
    catalog.create(_video("qc"))
    threads, per_thread = 6, 5
    previous: list[QoeBeacon | None] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def send(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            got = catalog.record_qoe(QoeBeacon(video_id="qc", session="s", watch_ms=t * 100 + i))
            with lock:
                previous.append(got)

    workers = [threading.Thread(target=send, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    chained = [p.watch_ms for p in previous if p is not None]
    assert len(previous) - len(chained) == 1, "exactly one beacon is the session's first"
    assert len(set(chained)) == len(chained), "each beacon is some beacon's previous once"
    sent = {float(t * 100 + i) for t in range(threads) for i in range(per_thread)}
    assert len(sent - set(chained)) == 1  # all but the one stored last


def _is_ferretdb(url: str) -> bool:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(url)
    try:
        return "ferretdbVersion" in client.admin.command("buildInfo")
    finally:
        client.close()


def test_find_by_hash(catalog: Catalog) -> None:
    catalog.create(_video("h1", content_hash="abc"))
    found = catalog.find_by_hash("abc")
    assert found is not None and found.id == "h1"
    assert catalog.find_by_hash("zzz") is None


def test_ping(catalog: Catalog) -> None:
    catalog.ping()


# -- chunk wants ---------------------------------------------------------------


def _taken(catalog: Catalog, holder: str = "w1", lease: float = 60, **kw: Any) -> int | None:
    """The chunk ``take_chunk`` hands out (None: none), checked to be leased to ``holder``."""
    before = datetime.now(UTC)
    want = catalog.take_chunk(holder, lease, **kw)
    if want is None:
        return None
    assert want.holder == holder
    assert want.lease_until is not None and want.lease_until.utcoffset() == timedelta(0)
    assert want.lease_until > before
    return want.chunk


def test_asked_chunks_are_handed_out_first_asked_first_then_none(catalog: Catalog) -> None:
    catalog.want_chunks("cw", 2, [5, 6])
    first = catalog.take_chunk("worker-a", 30)
    assert first is not None
    assert (first.video_id, first.generation, first.chunk, first.holder) == ("cw", 2, 5, "worker-a")
    assert first.lease_until is not None
    assert first.lease_until > datetime.now(UTC) + timedelta(seconds=20)
    assert first.asked_at.utcoffset() == timedelta(0)
    assert _taken(catalog, "worker-a") == 6
    assert catalog.take_chunk("worker-a", 30) is None
    assert catalog.take_chunk("worker-b", 30) is None  # taken means taken, for anyone


def test_a_taken_chunk_is_not_handed_out_again_before_its_lease_ends(catalog: Catalog) -> None:
    catalog.want_chunks("cl", 1, [3])
    assert _taken(catalog, "w1", 0.2) == 3
    assert catalog.take_chunk("w2", 0.2) is None
    time.sleep(0.3)
    again = catalog.take_chunk("w2", 60)
    assert again is not None and (again.chunk, again.holder) == (3, "w2")
    assert catalog.chunk_wants("cl")[0].holder == "w2"
    assert catalog.take_chunk("w1", 60) is None


def test_asking_again_for_a_taken_chunk_refreshes_it_but_keeps_it_taken(catalog: Catalog) -> None:
    catalog.want_chunks("ca", 1, [4])
    taken = catalog.take_chunk("w1", 60)
    assert taken is not None
    time.sleep(0.01)
    catalog.want_chunks("ca", 1, [4])
    (want,) = catalog.chunk_wants("ca")  # one record, not two
    assert want.asked_at > taken.asked_at
    assert (want.holder, want.lease_until) == ("w1", taken.lease_until)
    assert catalog.take_chunk("w2", 60) is None  # not handed out twice


def test_a_later_request_comes_out_before_an_earlier_one(catalog: Catalog) -> None:
    catalog.want_chunks("lr", 1, [1, 2])
    time.sleep(0.01)
    catalog.want_chunks("lr", 1, [7])  # a viewer seeked
    time.sleep(0.01)
    catalog.want_chunks("lr-other", 1, [9])  # another video's viewer, later still
    assert [_taken(catalog) for _ in range(5)] == [9, 7, 1, 2, None]


def test_asking_again_moves_a_waiting_chunk_to_the_front(catalog: Catalog) -> None:
    catalog.want_chunks("mf", 1, [1, 2, 3])
    time.sleep(0.01)
    catalog.want_chunks("mf", 1, [3])
    assert [w.chunk for w in catalog.chunk_wants("mf")] == [3, 1, 2]
    assert [_taken(catalog) for _ in range(4)] == [3, 1, 2, None]


def test_background_wants_come_after_every_viewers_and_never_push_one_back(
    catalog: Catalog,
) -> None:
    catalog.want_chunks("bg", 1, [5])  # a viewer
    catalog.want_chunks("bg", 1, [2, 3, 4, 5], background=True)  # the rest of a popular video
    catalog.want_chunks("bg-other", 1, [1], background=True)
    time.sleep(0.01)
    catalog.want_chunks("bg-late", 1, [8])  # another viewer, later
    # Viewers first (newest first), then the background, front to back.
    assert [_taken(catalog) for _ in range(2)] == [8, 5]
    assert [w.chunk for w in catalog.chunk_wants("bg")][:3] == [5, 2, 3]
    assert all(is_background(w.asked_at) for w in catalog.chunk_wants("bg")[1:])
    assert not is_background(catalog.chunk_wants("bg")[0].asked_at)
    # A viewer reaching a background chunk moves it to the front.
    time.sleep(0.01)
    catalog.want_chunks("bg", 1, [4])
    assert [_taken(catalog) for _ in range(4)] == [4, 2, 3, 1]
    assert _taken(catalog) is None


def test_take_chunk_with_a_video_id_hands_out_only_that_videos_wants(catalog: Catalog) -> None:
    catalog.want_chunks("tv-a", 1, [1])
    time.sleep(0.01)
    catalog.want_chunks("tv-b", 1, [2])
    assert _taken(catalog, video_id="tv-a") == 1
    assert _taken(catalog, video_id="tv-a") is None
    assert _taken(catalog, video_id="ghost") is None
    assert _taken(catalog) == 2


def test_peek_chunk_shows_the_next_want_without_taking_it(catalog: Catalog) -> None:
    assert catalog.peek_chunk() is None
    catalog.want_chunks("pk-a", 1, [3], background=True)
    time.sleep(0.01)
    catalog.want_chunks("pk-b", 1, [1, 2])
    seen = catalog.peek_chunk()
    assert seen is not None and (seen.video_id, seen.chunk, seen.holder) == ("pk-b", 1, "")
    assert catalog.peek_chunk() == seen  # looking twice changes nothing
    assert _taken(catalog) == 1  # and the take hands out what the look showed
    after = catalog.peek_chunk()
    assert after is not None and (after.video_id, after.chunk) == ("pk-b", 2)
    only_a = catalog.peek_chunk(video_id="pk-a")
    assert only_a is not None and only_a.chunk == 3 and is_background(only_a.asked_at)
    assert catalog.peek_chunk(video_id="ghost") is None
    assert [_taken(catalog) for _ in range(3)] == [2, 3, None]
    assert catalog.peek_chunk() is None  # every want is taken


def test_a_renewed_lease_keeps_a_chunk_past_its_first_lease(catalog: Catalog) -> None:
    catalog.want_chunks("rn", 1, [4])
    want = catalog.take_chunk("w1", 0.3)
    assert want is not None
    assert catalog.renew_chunk(want, 60)
    time.sleep(0.4)  # past the first lease
    assert catalog.take_chunk("w2", 60) is None
    (now,) = catalog.chunk_wants("rn")
    assert now.holder == "w1"
    assert now.lease_until is not None and now.lease_until > datetime.now(UTC) + timedelta(
        seconds=50
    )


def test_a_lease_taken_over_or_dropped_cannot_be_renewed(catalog: Catalog) -> None:
    catalog.want_chunks("ro", 1, [1, 2])
    first = catalog.take_chunk("w1", 0.2, video_id="ro")
    assert first is not None and first.chunk == 1
    time.sleep(0.3)
    second = catalog.take_chunk("w2", 60, video_id="ro")  # w1's lease ran out
    assert second is not None and (second.chunk, second.holder) == (1, "w2")
    assert not catalog.renew_chunk(first, 60)  # w2 has it now, and keeps it
    (kept,) = [w for w in catalog.chunk_wants("ro") if w.chunk == 1]
    assert (kept.holder, kept.lease_until) == ("w2", second.lease_until)
    catalog.drop_chunk_wants("ro", [1])
    assert not catalog.renew_chunk(second, 60)  # gone
    free = next(w for w in catalog.chunk_wants("ro") if w.chunk == 2)
    assert not catalog.renew_chunk(free, 60)  # nobody's: nothing to renew
    assert catalog.chunk_wants("ro")[0].holder == ""


def test_a_lease_renewed_for_0_seconds_is_free_for_the_next_taker(catalog: Catalog) -> None:
    catalog.want_chunks("rz", 1, [6], background=True)
    want = catalog.take_chunk("w1", 60)
    assert want is not None
    assert catalog.renew_chunk(want, 0)
    (free,) = catalog.chunk_wants("rz")
    assert (free.holder, free.lease_until, free.asked_at) == ("", None, want.asked_at)
    assert not catalog.renew_chunk(want, 60)  # freed: w1 no longer holds it
    assert _taken(catalog, "w2") == 6


def test_drop_chunk_wants_forgets_those_chunks_or_all_of_the_videos(catalog: Catalog) -> None:
    catalog.want_chunks("dw", 1, [1, 2, 3])
    catalog.want_chunks("dw", 2, [2])  # a newer generation asks for chunk 2 too
    catalog.want_chunks("dw-keep", 1, [1, 2])
    catalog.drop_chunk_wants("dw", [2, 99])  # every generation's; an absent one is no error
    assert sorted((w.generation, w.chunk) for w in catalog.chunk_wants("dw")) == [(1, 1), (1, 3)]
    catalog.drop_chunk_wants("dw", [])
    assert len(catalog.chunk_wants("dw")) == 2
    catalog.drop_chunk_wants("dw")
    assert catalog.chunk_wants("dw") == []
    assert [w.chunk for w in catalog.chunk_wants("dw-keep")] == [1, 2]
    catalog.drop_chunk_wants("ghost")  # absent: no error
    catalog.drop_chunk_wants("ghost", [1])
    assert [_taken(catalog) for _ in range(3)] == [1, 2, None]  # dropped ones are not handed out


def test_delete_removes_the_videos_chunk_wants(catalog: Catalog) -> None:
    catalog.create(_video("dcw"))
    catalog.create(_video("dcw-keep"))
    catalog.want_chunks("dcw", 1, [1, 2])
    catalog.want_chunks("dcw-keep", 1, [1])
    catalog.delete("dcw")
    assert catalog.chunk_wants("dcw") == []
    assert [w.video_id for w in catalog.chunk_wants("dcw-keep")] == ["dcw-keep"]
    assert _taken(catalog) == 1 and _taken(catalog) is None


def test_chunk_wants_lists_newest_first_one_record_per_generation_and_chunk(
    catalog: Catalog,
) -> None:
    assert catalog.chunk_wants("nw") == []
    before = datetime.now(UTC) - timedelta(seconds=1)
    catalog.want_chunks("nw", 1, [5, 6, 7, 5])  # a chunk listed twice keeps its first place
    wants = catalog.chunk_wants("nw")
    assert [(w.generation, w.chunk) for w in wants] == [(1, 5), (1, 6), (1, 7)]
    gaps = [a.asked_at - b.asked_at for a, b in itertools.pairwise(wants)]
    assert gaps == [timedelta(milliseconds=1)] * 2
    assert all(w.holder == "" and w.lease_until is None for w in wants)
    assert all(w.asked_at.utcoffset() == timedelta(0) and w.asked_at > before for w in wants)
    time.sleep(0.01)
    catalog.want_chunks("nw", 2, [6])
    assert [(w.generation, w.chunk) for w in catalog.chunk_wants("nw")] == [
        (2, 6),
        (1, 5),
        (1, 6),
        (1, 7),
    ]


def test_concurrent_takers_never_get_the_same_chunk(
    catalog: Catalog, request: pytest.FixtureRequest
) -> None:
    """Finding a free want and leasing it is one step: each want goes to one taker."""
    if isinstance(catalog, MongoCatalog) and _is_ferretdb(request.getfixturevalue("mongo_url")):
        # MongoDB's findAndModify is atomic per document; FerretDB 1.x on SQLite runs
        # its query and its write outside one transaction (FerretDB/FerretDB#3040).
        request.applymarker(
            pytest.mark.xfail(reason="FerretDB 1.x findAndModify is not atomic", strict=False)
        )
    chunks = list(range(12))
    catalog.want_chunks("ct", 1, chunks)
    takers = 4
    start = threading.Barrier(takers)
    got: list[tuple[int, str]] = []
    lock = threading.Lock()

    def take(t: int) -> None:
        start.wait()
        while (want := catalog.take_chunk(f"w{t}", 60)) is not None:
            with lock:
                got.append((want.chunk, want.holder))

    threads = [threading.Thread(target=take, args=(t,)) for t in range(takers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(c for c, _ in got) == chunks
    holders = {w.chunk: w.holder for w in catalog.chunk_wants("ct")}
    assert holders == dict(got)


# -- SqliteCatalog only --------------------------------------------------------


def test_sqlite_many_threads_add_segments_safely(tmp_path: Path) -> None:
    cat = SqliteCatalog(tmp_path / "c.db")
    cat.create(_video("th"))
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for seq in range(40):
                cat.add_segment("th", _seg(f"r{n}", seq))
                cat.set_progress("th", seq)
                cat.segments("th", f"r{n}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(cat.segments("th")) == 8 * 40
    cat.close()


def test_sqlite_data_survives_reopen_and_is_shared_between_instances(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "c.db"
    first = SqliteCatalog(path)
    second = SqliteCatalog(path)  # like a second process on the same file
    first.create(_video("sh", title="shared"))
    assert second.get("sh").title == "shared"
    first.close()
    second.close()
    reopened = SqliteCatalog(path)
    assert reopened.get("sh").title == "shared"
    reopened.close()


# -- MongoCatalog only ---------------------------------------------------------


def test_mongo_documents_are_versioned_and_indexed(mongo_url: str) -> None:
    import pymongo

    from kubevod.catalog.base import SCHEMA_VERSION

    cat = open_catalog(mongo_url)
    cat.create(_video("mv", title="Versioned"))
    cat.add_segment("mv", _seg("720p", 0))
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(mongo_url)
    db = client.get_default_database()
    assert db["videos"].find_one({"_id": "mv"})["schema_version"] == SCHEMA_VERSION  # type: ignore[index]
    assert db["segments"].find_one({"video_id": "mv"})["schema_version"] == SCHEMA_VERSION  # type: ignore[index]
    unique = {
        tuple(k for k, _ in spec["key"])
        for spec in db["segments"].index_information().values()
        if spec.get("unique")
    }
    assert ("video_id", "rendition", "seq") in unique
    assert {"created_at", "title_key", "tags", "content_hash"} <= {
        k for spec in db["videos"].index_information().values() for k, _ in spec["key"]
    }
    client.close()
    cat.close()


def test_mongo_catalog_fails_fast_when_the_server_is_down_and_recovers(
    mongo: Any, mongo_url: str
) -> None:
    cat = open_catalog(mongo_url)
    cat.create(_video("down"))
    mongo.stop()
    try:
        for call in (lambda: cat.get("down"), lambda: cat.set_progress("down", 5), cat.ping):
            started = time.monotonic()
            with pytest.raises(Unavailable):
                call()
            assert time.monotonic() - started < 5
    finally:
        mongo.start()
    assert cat.get("down").id == "down"
    cat.close()


def test_mongo_catalog_refuses_to_open_without_a_server() -> None:
    from tests.fixtures.util import free_port

    started = time.monotonic()
    with pytest.raises(Unavailable) as err:
        open_catalog(f"mongodb://kv:hunter2@127.0.0.1:{free_port()}/x?serverSelectionTimeoutMS=300")
    assert time.monotonic() - started < 3
    assert "hunter2" not in str(err.value)
