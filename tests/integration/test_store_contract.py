"""One ObjectStore contract, run unchanged against FileStore and S3Store (real MinIO)."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubevod.backends import open_store
from kubevod.errors import InvalidInput, NotFound, Unavailable
from kubevod.models import IMMUTABLE
from kubevod.store.base import ObjectStore
from kubevod.store.file import FileStore

HOSTILE_KEYS = ["../x", "a/../../x", "/abs", "a//b", "a\x00b", "", "a/./b", "a\\b", "a/"]


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "file":
        return open_store(f"file://{tmp_path}/store")
    try:
        minio: Any = request.getfixturevalue("minio")
    except pytest.FixtureLookupError:
        pytest.skip("minio fixture not available yet")
    return open_store(minio.store_url)


@pytest.fixture
def pfx() -> str:
    """A key prefix no other test uses (the MinIO bucket is shared by the session)."""
    return f"t{uuid.uuid4().hex[:10]}/"


def test_put_bytes_then_stat_and_get(store: ObjectStore, pfx: str) -> None:
    data = b"0123456789" * 100
    info = store.put_bytes(f"{pfx}a/1.m4s", data, content_type="video/mp4", cache_control=IMMUTABLE)
    assert (info.key, info.size, info.etag) == (
        f"{pfx}a/1.m4s",
        1000,
        hashlib.md5(data).hexdigest(),
    )
    st = store.stat(f"{pfx}a/1.m4s")
    assert (st.size, st.etag, st.content_type, st.cache_control) == (
        1000,
        info.etag,
        "video/mp4",
        IMMUTABLE,
    )
    assert st.last_modified.utcoffset() is not None
    assert abs(time.time() - st.last_modified.timestamp()) < 120
    assert store.get(f"{pfx}a/1.m4s") == data


def test_put_file_and_overwrite(store: ObjectStore, pfx: str, tmp_path: Path) -> None:
    src = tmp_path / "in.m3u8"
    src.write_bytes(b"#EXTM3U\n")
    store.put_file(f"{pfx}p.m3u8", src, content_type="application/vnd.apple.mpegurl")
    st = store.stat(f"{pfx}p.m3u8")
    assert st.content_type == "application/vnd.apple.mpegurl"
    assert st.cache_control is None
    info = store.put_bytes(f"{pfx}p.m3u8", b"#EXTM3U\n#2\n", content_type="text/plain")
    assert info.etag != st.etag
    assert store.get(f"{pfx}p.m3u8") == b"#EXTM3U\n#2\n"
    assert store.stat(f"{pfx}p.m3u8").content_type == "text/plain"
    with pytest.raises(NotFound):
        store.put_file(f"{pfx}x", tmp_path / "missing", content_type="text/plain")


def test_ranged_reads_are_inclusive_like_http(store: ObjectStore, pfx: str) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    store.put_bytes(f"{pfx}r.bin", data, content_type="application/octet-stream")
    assert store.get(f"{pfx}r.bin", 0, 0) == data[:1]
    assert store.get(f"{pfx}r.bin", 10, 19) == data[10:20]
    assert store.get(f"{pfx}r.bin", 10000) == data[10000:]
    assert store.get(f"{pfx}r.bin", 10200, 99999) == data[10200:]
    chunks = list(store.iter_range(f"{pfx}r.bin", 5, 9000, chunk=1000))
    assert b"".join(chunks) == data[5:9001]
    assert max(len(c) for c in chunks) <= 1000
    assert b"".join(store.iter_range(f"{pfx}r.bin")) == data
    assert store.get(f"{pfx}r.bin", 20000) == b""  # past the end: nothing, not an error
    with pytest.raises(InvalidInput):
        store.get(f"{pfx}r.bin", 9, 3)
    store.put_bytes(f"{pfx}empty", b"", content_type="text/plain")
    assert store.get(f"{pfx}empty") == b""
    assert store.stat(f"{pfx}empty").size == 0


def test_missing_key_is_not_found(store: ObjectStore, pfx: str) -> None:
    with pytest.raises(NotFound):
        store.stat(f"{pfx}none")
    with pytest.raises(NotFound):
        store.get(f"{pfx}none")
    with pytest.raises(NotFound):
        store.iter_range(f"{pfx}none")  # raises before the first chunk is asked for


def test_list_and_delete_prefix(store: ObjectStore, pfx: str) -> None:
    keys = [f"{pfx}v1/g1/720p/{n}.m4s" for n in range(3)] + [
        f"{pfx}v1/poster.jpg",
        f"{pfx}v10/poster.jpg",
        f"{pfx}v2/poster.jpg",
    ]
    for key in keys:
        store.put_bytes(key, key.encode(), content_type="image/jpeg")
    assert [o.key for o in store.list(f"{pfx}v1/")] == sorted(keys[:4])
    assert [o.key for o in store.list(f"{pfx}v1")] == sorted(keys[:5])
    assert [o.size for o in store.list(f"{pfx}v2/")] == [len(keys[5])]
    assert list(store.list(f"{pfx}nothing/")) == []
    assert store.delete_prefix(f"{pfx}v1/") == 4
    assert [o.key for o in store.list(pfx)] == [keys[4], keys[5]]
    assert store.get(keys[4]) == keys[4].encode()
    assert store.delete_prefix(f"{pfx}v1/") == 0
    with pytest.raises(NotFound):
        store.stat(keys[0])


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidInput):
        store.put_bytes(key, b"x", content_type="text/plain")
    with pytest.raises(InvalidInput):
        store.get(key)
    with pytest.raises(InvalidInput):
        store.stat(key)


def test_hostile_prefixes_are_refused(store: ObjectStore) -> None:
    for prefix in ("../", "/etc", "a/../../"):
        with pytest.raises(InvalidInput):
            store.delete_prefix(prefix)
        with pytest.raises(InvalidInput):
            list(store.list(prefix))
    with pytest.raises(InvalidInput):
        store.delete_prefix("")  # never "delete everything" by accident


def test_ping(store: ObjectStore) -> None:
    store.ping()


# -- FileStore only -----------------------------------------------------------


def test_file_store_readers_never_see_half_written_objects(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    a, b = b"a" * 2_000_000, b"b" * 3_000_000
    store.put_bytes("x/seg", a, content_type="video/mp4")
    stop = threading.Event()
    seen: set[bytes] = set()

    def writer() -> None:
        for n in range(30):
            store.put_bytes("x/seg", b if n % 2 == 0 else a, content_type="video/mp4")
        stop.set()

    t = threading.Thread(target=writer)
    t.start()
    while not stop.is_set():
        got = store.get("x/seg")
        assert got in (a, b), f"torn read of {len(got)} bytes"
        seen.add(got[:1])
    t.join()
    assert list(store.list("")) == [store.stat("x/seg")]  # no temp files or sidecars listed
    assert store.delete_prefix("x/") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".kubevod"]


def test_file_store_keeps_objects_inside_its_folder(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s")
    with pytest.raises(InvalidInput):
        store.put_bytes(".kubevod/meta/x", b"x", content_type="text/plain")
    store.put_bytes("a", b"1", content_type="text/plain")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


# -- S3Store only --------------------------------------------------------------


def test_s3_store_fails_fast_when_minio_is_down_and_recovers(minio: Any, pfx: str) -> None:
    store = open_store(minio.store_url)
    store.put_bytes(f"{pfx}k", b"before", content_type="text/plain")
    minio.stop()
    try:
        for call in (
            lambda: store.put_bytes(f"{pfx}k2", b"x", content_type="text/plain"),
            lambda: store.get(f"{pfx}k"),
            lambda: store.stat(f"{pfx}k"),
            lambda: list(store.list(pfx)),
            store.ping,
        ):
            started = time.monotonic()
            with pytest.raises(Unavailable) as err:
                call()
            assert time.monotonic() - started < 5
            assert minio.secret_key not in str(err.value)
    finally:
        minio.start()
    assert store.get(f"{pfx}k") == b"before"
    store.put_bytes(f"{pfx}k2", b"after", content_type="text/plain")
    assert store.get(f"{pfx}k2") == b"after"
    with pytest.raises(NotFound):
        store.stat(f"{pfx}k3")


def test_s3_store_creates_its_bucket_when_asked(minio: Any) -> None:
    bucket = f"b{uuid.uuid4().hex[:10]}"
    url = minio.store_url.replace(f"/{minio.bucket}?", f"/{bucket}?")
    store = open_store(url + "&create_bucket=true")
    store.put_bytes("k", b"v", content_type="text/plain")
    assert open_store(url).get("k") == b"v"
    with pytest.raises(Unavailable):
        open_store(url.replace(bucket, f"x{bucket}")).ping()


@pytest.fixture
def many_keys(minio: Any, pfx: str) -> Iterator[tuple[ObjectStore, list[str]]]:
    store = open_store(minio.store_url)
    keys = [f"{pfx}m/{n:04d}" for n in range(1100)]
    client = minio.client()
    from concurrent.futures import ThreadPoolExecutor
    from io import BytesIO

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: client.put_object(minio.bucket, k, BytesIO(b"x"), 1), keys))
    yield store, keys


def test_s3_delete_prefix_removes_more_than_one_batch(
    many_keys: tuple[ObjectStore, list[str]], pfx: str
) -> None:
    store, keys = many_keys
    assert sum(1 for _ in store.list(f"{pfx}m/")) == len(keys)
    assert store.delete_prefix(f"{pfx}m/") == len(keys)
    assert list(store.list(f"{pfx}m/")) == []
