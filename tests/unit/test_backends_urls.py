"""open_store / open_catalog: which backend a URL names, and no secret ever shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubevod.backends import mongo_database, open_catalog, open_store, redact_url
from kubevod.catalog.sqlite import SqliteCatalog
from kubevod.errors import InvalidInput
from kubevod.store.file import FileStore

SECRET = "s3cr/t+p@ss"
ENC = "s3cr%2Ft%2Bp%40ss"


def test_file_urls_and_plain_paths_open_a_file_store(tmp_path: Path) -> None:
    for url in (f"file://{tmp_path}/a", f"file://localhost{tmp_path}/a", str(tmp_path / "a")):
        store = open_store(url)
        assert isinstance(store, FileStore)
        assert store.root == (tmp_path / "a").resolve()


def test_s3_url_is_parsed_and_credentials_percent_decoded() -> None:
    from kubevod.store.s3 import S3Store

    store = open_store(f"s3://AK%3Ax:{ENC}@minio.local:9000/media?secure=false&region=eu-west-1")
    assert isinstance(store, S3Store)
    assert (store.endpoint, store.bucket, store.secure, store.region) == (
        "minio.local:9000",
        "media",
        False,
        "eu-west-1",
    )
    assert (store.access_key, store.secret_key) == ("AK:x", SECRET)
    assert SECRET not in repr(store) and ENC not in repr(store)
    assert open_store("s3://a:b@s3.example.com/bkt").secure  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "url",
    [
        f"s3://ak:{ENC}@host:9000/",
        f"s3://ak:{ENC}@host:9000/Bad_Bucket",
        f"s3://ak:{ENC}@host:9000/a/b",
        f"s3://ak:{ENC}@host:notaport/bkt",
        f"s3://ak:{ENC}@:9000/bkt",
        f"s3://ak:{ENC}@host:9000/bkt?secure=maybe",
        f"ftp://ak:{ENC}@host/bkt",
        f"gs://ak:{ENC}@host/bkt",
        "file://otherhost/dir",
        "file://relative",
        "",
    ],
)
def test_bad_store_urls_are_refused_without_leaking_the_secret(url: str) -> None:
    with pytest.raises(InvalidInput) as err:
        open_store(url)
    assert SECRET not in str(err.value) and ENC not in str(err.value)


def test_sqlite_url_opens_a_sqlite_catalog(tmp_path: Path) -> None:
    cat = open_catalog(f"sqlite://{tmp_path}/deep/er/c.db")
    assert isinstance(cat, SqliteCatalog)
    assert cat.path == tmp_path / "deep/er/c.db"
    cat.close()


def test_mongo_url_picks_the_database_from_the_path() -> None:
    db = mongo_database
    assert db("mongodb://u:p@h:27017/media?authSource=admin") == "media"
    assert db("mongodb://h:27017/") == "kubevod"
    assert db("mongodb://h1:1,h2:2") == "kubevod"
    assert db("mongodb+srv://u:p@cluster.example.net/vod") == "vod"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://relative.db",
        "sqlite:///",
        f"postgres://u:{ENC}@h/db",
        f"mongodb://u:{ENC}@h:27017/bad.name",
        f"mongodb://u:{ENC}@h:27017/a$b",
        "redis://h",
    ],
)
def test_bad_catalog_urls_are_refused_without_leaking_the_secret(url: str) -> None:
    with pytest.raises(InvalidInput) as err:
        open_catalog(url)
    assert SECRET not in str(err.value) and ENC not in str(err.value)


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url(f"s3://ak:{ENC}@h:9/b?x=1") == "s3://ak:***@h:9/b?x=1"
    assert redact_url("mongodb://h:27017/db") == "mongodb://h:27017/db"
    assert redact_url("mongodb://user@h/db") == "mongodb://user:***@h/db"
