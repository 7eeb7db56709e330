"""HTTP semantics of the media route (RFC 9110): ranges, conditional requests, HEAD, MIME."""

from __future__ import annotations

import email.parser
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from kubevod.api.http_semantics import ByteRange, RangeNotSatisfiable, parse_range

from kubevod.models import IMMUTABLE
from tests.integration.api_env import ApiEnv, api_env
from tests.unit.manifest_cases import ladder_video

pytestmark = pytest.mark.integration

DATA = bytes(range(256)) * 4  # 1024 bytes, every offset's value is offset % 256
URL = "/media/demo-1/g1/720p/0.m4s"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path) as env:
        env.store.put_bytes(
            "videos/demo-1/g1/720p/0.m4s", DATA, content_type="video/mp4", cache_control=IMMUTABLE
        )
        yield env


# --- the pure parser, table-driven -----------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", [ByteRange(0, 9)]),
        ("bytes=1000-", [ByteRange(1000, 1023)]),
        ("bytes=-24", [ByteRange(1000, 1023)]),
        ("bytes=-5000", [ByteRange(0, 1023)]),
        ("bytes=0-99999", [ByteRange(0, 1023)]),
        ("bytes=0-0", [ByteRange(0, 0)]),
        ("bytes= 0-1 , 10-11", [ByteRange(0, 1), ByteRange(10, 11)]),
        ("bytes=10-11,0-1", [ByteRange(10, 11), ByteRange(0, 1)]),
        ("bytes=0-5,3-8", [ByteRange(0, 8)]),
        ("bytes=0-5,6-8", [ByteRange(0, 8)]),
        ("bytes=5000-,0-1", [ByteRange(0, 1)]),
        ("bytes=5-2", None),
        ("bytes=abc", None),
        ("bytes=-", None),
        ("bytes=", None),
        ("items=0-1", None),
        ("bytes=1-2-3", None),
        ("bytes=" + ",".join(f"{i}-{i}" for i in range(0, 40, 2)), None),
    ],
)
def test_parse_range(header: str | None, expected: list[ByteRange] | None) -> None:
    assert parse_range(header, 1024) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=1024-", 1024), ("bytes=-0", 1024), ("bytes=0-", 0)]
)
def test_parse_range_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


# --- ranges over HTTP ------------------------------------------------------------------


async def test_whole_object_with_validators_and_immutable_caching(api: ApiEnv) -> None:
    resp = await api.client.get(URL)

    assert resp.status_code == 200 and resp.content == DATA
    assert resp.headers["content-length"] == "1024"
    assert resp.headers["accept-ranges"] == "bytes"
    assert resp.headers["cache-control"] == IMMUTABLE
    assert resp.headers["etag"].startswith('"') and resp.headers["last-modified"].endswith("GMT")
    assert resp.headers["content-type"] == "video/mp4"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-9", 0, 9), ("bytes=1000-", 1000, 1023), ("bytes=-24", 1000, 1023),
     ("bytes=-99999", 0, 1023), ("bytes=512-99999", 512, 1023), ("bytes=7-7", 7, 7)],
)  # fmt: skip
async def test_single_range_is_206_with_content_range(
    api: ApiEnv, header: str, start: int, end: int
) -> None:
    resp = await api.client.get(URL, headers={"Range": header})

    assert resp.status_code == 206
    assert resp.headers["content-range"] == f"bytes {start}-{end}/1024"
    assert resp.headers["content-length"] == str(end - start + 1)
    assert resp.content == DATA[start : end + 1]


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
async def test_range_past_the_end_is_416(api: ApiEnv, header: str) -> None:
    resp = await api.client.get(URL, headers={"Range": header})

    assert resp.status_code == 416
    assert resp.headers["content-range"] == "bytes */1024"
    assert "1024 bytes" in resp.json()["detail"]


@pytest.mark.parametrize("header", ["bytes=9-2", "lines=0-1", "bytes=x-y"])
async def test_malformed_range_is_ignored(api: ApiEnv, header: str) -> None:
    resp = await api.client.get(URL, headers={"Range": header})

    assert resp.status_code == 200 and resp.content == DATA


def parts_of(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    assert message.is_multipart()
    out = []
    for part in message.get_payload():
        payload = part.get_payload(decode=True)
        out.append((part["Content-Type"], part["Content-Range"], payload))
    return out


async def test_multiple_ranges_are_multipart_byteranges(api: ApiEnv) -> None:
    resp = await api.client.get(URL, headers={"Range": "bytes=0-3,100-103,-2"})

    assert resp.status_code == 206
    content_type = resp.headers["content-type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    assert int(resp.headers["content-length"]) == len(resp.content)
    assert parts_of(content_type, resp.content) == [
        ("video/mp4", "bytes 0-3/1024", DATA[0:4]),
        ("video/mp4", "bytes 100-103/1024", DATA[100:104]),
        ("video/mp4", "bytes 1022-1023/1024", DATA[1022:]),
    ]


async def test_overlapping_ranges_are_coalesced_into_one(api: ApiEnv) -> None:
    resp = await api.client.get(URL, headers={"Range": "bytes=0-10,5-20"})

    assert resp.status_code == 206
    assert resp.headers["content-range"] == "bytes 0-20/1024"


async def test_ranges_across_stream_chunks_of_a_large_object(api: ApiEnv) -> None:
    big = bytes(range(251)) * 8000  # ~2 MB, several 256 KiB store chunks
    api.store.put_bytes("videos/demo-1/g1/big.mp4", big, content_type="video/mp4")

    whole = await api.client.get("/media/demo-1/g1/big.mp4")
    middle = await api.client.get(
        "/media/demo-1/g1/big.mp4", headers={"Range": "bytes=262000-800000"}
    )

    assert whole.content == big
    assert middle.content == big[262000:800001]


async def test_empty_object(api: ApiEnv) -> None:
    api.store.put_bytes("videos/demo-1/g1/empty.vtt", b"", content_type="text/vtt")

    whole = await api.client.get("/media/demo-1/g1/empty.vtt")
    ranged = await api.client.get("/media/demo-1/g1/empty.vtt", headers={"Range": "bytes=0-"})

    assert whole.status_code == 200 and whole.content == b""
    assert ranged.status_code == 416


# --- conditional requests --------------------------------------------------------------


async def test_if_none_match_gives_304_with_validators(api: ApiEnv) -> None:
    etag = (await api.client.get(URL)).headers["etag"]

    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        resp = await api.client.get(URL, headers={"If-None-Match": header})
        assert resp.status_code == 304, header
        assert resp.content == b"" and resp.headers["etag"] == etag
        assert resp.headers["cache-control"] == IMMUTABLE
    changed = await api.client.get(URL, headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200


async def test_if_modified_since(api: ApiEnv) -> None:
    last_modified = (await api.client.get(URL)).headers["last-modified"]
    earlier = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)

    same = await api.client.get(URL, headers={"If-Modified-Since": last_modified})
    older = await api.client.get(URL, headers={"If-Modified-Since": earlier})
    garbage = await api.client.get(URL, headers={"If-Modified-Since": "yesterday"})
    etag_wins = await api.client.get(
        URL, headers={"If-Modified-Since": last_modified, "If-None-Match": '"other"'}
    )

    assert same.status_code == 304
    assert older.status_code == 200
    assert garbage.status_code == 200
    assert etag_wins.status_code == 200


async def test_if_range_honours_the_range_only_for_the_same_object(api: ApiEnv) -> None:
    first = await api.client.get(URL)

    same = await api.client.get(
        URL, headers={"Range": "bytes=0-1", "If-Range": first.headers["etag"]}
    )
    by_date = await api.client.get(
        URL, headers={"Range": "bytes=0-1", "If-Range": first.headers["last-modified"]}
    )
    changed = await api.client.get(URL, headers={"Range": "bytes=0-1", "If-Range": '"old"'})

    assert same.status_code == 206 and same.content == DATA[:2]
    assert by_date.status_code == 206
    assert changed.status_code == 200 and changed.content == DATA


# --- HEAD and MIME types ---------------------------------------------------------------


async def test_head_has_the_headers_of_get_without_a_body(api: ApiEnv) -> None:
    get = await api.client.get(URL)
    head = await api.client.head(URL)
    ranged = await api.client.head(URL, headers={"Range": "bytes=0-9"})
    multi = await api.client.head(URL, headers={"Range": "bytes=0-1,5-6"})

    assert head.status_code == 200 and head.content == b""
    for name in ("content-length", "content-type", "etag", "last-modified", "cache-control"):
        assert head.headers[name] == get.headers[name], name
    assert ranged.status_code == 206 and ranged.headers["content-range"] == "bytes 0-9/1024"
    assert ranged.headers["content-length"] == "10" and ranged.content == b""
    assert multi.status_code == 206 and multi.headers["content-type"].startswith("multipart/")


@pytest.mark.parametrize(
    ("key", "stored", "served"),
    [
        ("720p/init.mp4", "application/octet-stream", "video/mp4"),
        ("audio/3.m4s", "binary/octet-stream", "video/mp4"),
        ("master.m3u8", "text/plain", "application/vnd.apple.mpegurl"),
        ("manifest.mpd", "application/xml", "application/dash+xml"),
        ("subs/en.vtt", "text/plain", "text/vtt; charset=utf-8"),
        ("poster.jpg", "application/octet-stream", "image/jpeg"),
        ("trickplay/0.jpg", "image/jpeg", "image/jpeg"),
        ("notes.bin", "application/x-custom", "application/x-custom"),
    ],
)
async def test_mime_types_are_right_whatever_the_uploader_stored(
    api: ApiEnv, key: str, stored: str, served: str
) -> None:
    api.store.put_bytes(f"videos/demo-1/g1/{key}", b"x" * 10, content_type=stored)

    resp = await api.client.get(f"/media/demo-1/g1/{key}")

    assert resp.status_code == 200
    assert resp.headers["content-type"] == served


async def test_mutable_objects_are_cached_briefly(api: ApiEnv) -> None:
    api.store.put_bytes("videos/demo-1/poster.jpg", b"jpeg", content_type="image/jpeg")

    resp = await api.client.get("/media/demo-1/poster.jpg")

    assert resp.headers["cache-control"] == "public, max-age=300"


async def test_missing_and_unsafe_paths(api: ApiEnv) -> None:
    api.catalog.create(ladder_video())

    missing = await api.client.get("/media/demo-1/g1/720p/99.m4s")
    unknown_video = await api.client.get("/media/ghost/g1/720p/0.m4s")
    traversal = await api.client.get("/media/demo-1/g1/..%2F..%2F..%2Fcatalog.db")
    long_name = await api.client.get("/media/demo-1/" + "a" * 300)
    bad_id = await api.client.get("/media/UPPER/g1/720p/0.m4s")

    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert unknown_video.status_code == 404
    assert traversal.status_code == 422
    assert long_name.status_code == 422
    assert bad_id.status_code == 422


async def test_paths_relative_to_the_media_prefix_resolve_to_the_current_generation(
    api: ApiEnv,
) -> None:
    api.catalog.create(ladder_video())

    resp = await api.client.get("/media/demo-1/720p/0.m4s", headers={"Range": "bytes=0-3"})

    assert resp.status_code == 206 and resp.content == DATA[:4]
