"""Signed playback URLs: the nginx secure_link token, expiry rounding, settings and the video view.

The reference vectors were computed outside Python, with the same recipe nginx
applies (``secure_link_md5`` then base64url without padding)::

    printf '%s' "1700000000/ab12cd34 s3cr3tKey" \\
      | openssl md5 -binary | openssl base64 | tr +/ -_ | tr -d =
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from kubevod.api.settings import ApiSettings
from kubevod.api.views import playback_urls, view
from pydantic import ValidationError

from kubevod.models import Subtitle, Trickplay, Video, VideoState
from kubevod.signing import (
    DEFAULT_GRANULARITY_S,
    UrlSigner,
    expires_at,
    signed_query,
    token,
)

SECRET = "s3cr3tKey"

# --------------------------------------------------------------------------- token


@pytest.mark.parametrize(
    ("video_id", "expires", "secret", "expected"),
    [
        # openssl md5 -binary | openssl base64 | tr +/ -_ | tr -d =
        ("ab12cd34", 1_700_000_000, "s3cr3tKey", "q9IgWE1shl5oOOlWRtXBGA"),
        ("x", 2_147_483_647, "Zq9-_.~xyz", "-Cf8gK6hWCnHDzLnGUy4_w"),
        ("", 0, "", "f6v911_LQx2Tx3fembvCjA"),
    ],
)
def test_token_matches_openssl_reference_vectors(
    video_id: str, expires: int, secret: str, expected: str
) -> None:
    assert token(video_id, expires, secret) == expected


def test_token_is_22_url_safe_characters_without_padding() -> None:
    for i in range(200):
        value = token(f"vid{i}", 1_700_000_000 + i, SECRET)
        assert len(value) == 22
        assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        # It decodes back to the md5 of the exact string nginx hashes.
        raw = base64.urlsafe_b64decode(value + "==")
        assert raw == hashlib.md5(f"{1_700_000_000 + i}/vid{i} {SECRET}".encode()).digest()


@pytest.mark.parametrize(
    ("change", "args"),
    [
        ("video", ("ab12cd35", 1_700_000_000, SECRET)),
        ("expiry", ("ab12cd34", 1_700_000_001, SECRET)),
        ("secret", ("ab12cd34", 1_700_000_000, SECRET + "x")),
    ],
)
def test_token_changes_with_each_input(change: str, args: tuple[str, int, str]) -> None:
    assert token(*args) != token("ab12cd34", 1_700_000_000, SECRET), change


# --------------------------------------------------------------------------- expiry


@pytest.mark.parametrize(
    ("now", "ttl", "granularity", "expected"),
    [
        (1000.0, 100, 1, 1100),
        (1000.5, 100, 1, 1101),  # never shorter than the TTL
        (0.0, 300, 300, 300),  # already on a boundary: not pushed further
        (1.0, 300, 300, 600),
        (299.9, 300, 300, 600),
        (1_700_000_000.0, 21_600, 300, 1_700_021_700),
        (1_700_000_101.0, 21_600, 300, 1_700_022_000),
    ],
)
def test_expiry_is_at_least_ttl_and_rounded_up_to_the_window(
    now: float, ttl: int, granularity: int, expected: int
) -> None:
    assert expires_at(now, ttl, granularity) == expected
    assert now + ttl <= expected < now + ttl + granularity


@pytest.mark.parametrize(("ttl", "granularity"), [(0, 300), (-1, 300), (60, 0), (60, -5)])
def test_expiry_refuses_non_positive_durations(ttl: int, granularity: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        expires_at(1000.0, ttl, granularity)


def test_signed_query_holds_the_token_and_expiry_in_the_names_nginx_reads() -> None:
    query = signed_query("ab12cd34", 1_700_000_000, SECRET)
    assert query == "md5=q9IgWE1shl5oOOlWRtXBGA&expires=1700000000"


# --------------------------------------------------------------------------- signer


def test_links_made_in_the_same_window_are_identical_so_caches_keep_working() -> None:
    signer = UrlSigner(SECRET, ttl_s=6 * 3600)
    start = 1_700_000_101.0  # just after a window boundary (a multiple of 300)
    assert signer.query("v1", start) == signer.query("v1", start + DEFAULT_GRANULARITY_S - 1)
    assert signer.query("v1", start) != signer.query("v1", start + DEFAULT_GRANULARITY_S)
    assert signer.query("v1", start) != signer.query("v2", start)


def test_a_short_ttl_is_not_stretched_by_the_window() -> None:
    signer = UrlSigner(SECRET, ttl_s=60)
    expires = int(parse_qs(signer.query("v1", 1_000_001.0))["expires"][0])
    assert 1_000_061 <= expires < 1_000_001 + 120


def test_signer_query_verifies_with_the_token_function() -> None:
    signer = UrlSigner(SECRET, ttl_s=3600, granularity_s=1)
    params = parse_qs(signer.query("ab12cd34", 1_699_996_400.0))
    assert params == {"md5": ["q9IgWE1shl5oOOlWRtXBGA"], "expires": ["1700000000"]}


# --------------------------------------------------------------------------- settings


def test_settings_default_to_unsigned_urls_and_a_six_hour_ttl() -> None:
    settings = ApiSettings()
    assert settings.signing_secret is None
    assert settings.url_signer() is None
    assert settings.signing_ttl_s == 6 * 3600


def test_settings_read_the_secret_and_ttl_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBEVOD_SIGNING_SECRET", "Rk8aP2xQ9vT4mZ")
    monkeypatch.setenv("KUBEVOD_SIGNING_TTL_S", "600")
    settings = ApiSettings()
    assert settings.url_signer() == UrlSigner("Rk8aP2xQ9vT4mZ", 600)
    assert "Rk8aP2xQ9vT4mZ" not in repr(settings)


@pytest.mark.parametrize("blank", ["", "   "])
def test_an_empty_secret_means_signing_is_off(blank: str) -> None:
    for environment in ("development", "production"):
        settings = ApiSettings(
            signing_secret=blank,  # type: ignore[arg-type]
            environment=environment,
            api_token="Zq8wKd3mVt6pXr2n",  # type: ignore[arg-type]
        )
        assert settings.url_signer() is None


@pytest.mark.parametrize("placeholder", ["changeme", "SECRET", "token", "change-me"])
def test_production_refuses_a_placeholder_signing_secret(placeholder: str) -> None:
    with pytest.raises(ValidationError, match="KUBEVOD_SIGNING_SECRET is a placeholder"):
        ApiSettings(signing_secret=placeholder, environment="production")  # type: ignore[arg-type]
    dev = ApiSettings(signing_secret=placeholder)  # type: ignore[arg-type]
    assert dev.url_signer() is not None


@pytest.mark.parametrize("bad", ["two words", 'quo"te', "dol$lar", "back\\slash", "semi;colon"])
def test_secrets_nginx_cannot_carry_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="must not hold"):
        ApiSettings(signing_secret=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("ttl", [0, 59, 30 * 86_400 + 1])
def test_ttl_out_of_range_is_refused(ttl: int) -> None:
    with pytest.raises(ValidationError):
        ApiSettings(signing_ttl_s=ttl)


# --------------------------------------------------------------------------- the video view


def _video() -> Video:
    return Video(
        id="ab12cd34",
        title="Signed",
        state=VideoState.READY,
        poster_key="videos/ab12cd34/g1/poster.jpg",
        trickplay=Trickplay(
            vtt_key="videos/ab12cd34/g1/trickplay/thumbs.vtt",
            interval=2.0, width=160, height=90, columns=5, rows=5, sheets=1,
        ),
        subtitles=[Subtitle(name="English", language="en", key="videos/ab12cd34/g1/en.vtt")],
    )  # fmt: skip


def test_view_signs_every_manifest_and_media_url_but_not_the_watch_page() -> None:
    settings = ApiSettings(signing_secret="Rk8aP2xQ9vT4mZ", signing_ttl_s=3600)  # type: ignore[arg-type]
    now = 1_700_000_000.0
    shown = view(_video(), settings, now=now).playback
    query = UrlSigner("Rk8aP2xQ9vT4mZ", 3600).query("ab12cd34", now)
    assert shown.hls == f"/v/ab12cd34/master.m3u8?{query}"
    assert shown.dash == f"/v/ab12cd34/manifest.mpd?{query}"
    assert shown.poster == f"/media/ab12cd34/g1/poster.jpg?{query}"
    assert shown.trickplay == f"/media/ab12cd34/g1/trickplay/thumbs.vtt?{query}"
    assert [s.url for s in shown.subtitles] == [f"/media/ab12cd34/g1/en.vtt?{query}"]
    assert shown.watch == "/watch/ab12cd34"
    params = parse_qs(urlsplit(shown.hls).query)
    assert params["md5"] == [token("ab12cd34", int(params["expires"][0]), "Rk8aP2xQ9vT4mZ")]
    assert now + 3600 <= int(params["expires"][0]) <= now + 3600 + DEFAULT_GRANULARITY_S


def test_view_without_a_secret_has_plain_urls() -> None:
    shown = view(_video(), ApiSettings(media_base_url="https://cdn.example/media")).playback
    assert shown.hls == "/v/ab12cd34/master.m3u8"
    assert shown.dash == "/v/ab12cd34/manifest.mpd"
    assert shown.poster == "https://cdn.example/media/ab12cd34/g1/poster.jpg"
    assert shown.trickplay == "https://cdn.example/media/ab12cd34/g1/trickplay/thumbs.vtt"
    assert [s.url for s in shown.subtitles] == ["https://cdn.example/media/ab12cd34/g1/en.vtt"]


def test_view_uses_the_clock_when_no_time_is_given() -> None:
    import time

    settings = ApiSettings(signing_secret="Rk8aP2xQ9vT4mZ", signing_ttl_s=600)  # type: ignore[arg-type]
    before = time.time()
    expires = int(parse_qs(urlsplit(view(_video(), settings).playback.hls).query)["expires"][0])
    assert before + 600 <= expires <= time.time() + 600 + DEFAULT_GRANULARITY_S


def test_playback_urls_leave_absent_images_absent_when_signed() -> None:
    bare = Video(id="ab12cd34", title="Bare")
    urls = playback_urls(bare, "/media", "md5=x&expires=1")
    assert (urls.poster, urls.trickplay, urls.subtitles) == (None, None, [])
    assert urls.hls == "/v/ab12cd34/master.m3u8?md5=x&expires=1"
