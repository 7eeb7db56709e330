"""The pure parts of the Host allowlist and the cross-origin write check."""

from __future__ import annotations

import pytest
from kubevod.api.guard import HostAllowlist, cross_origin_reason, split_host

from kubevod.local.server import allowed_hosts, is_loopback_host


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Example.COM.:8080", ("example.com", "8080")),
        ("[::1]:9000", ("::1", "9000")),
        ("[::1]", ("::1", "")),
        ("::1", ("::1", "")),
        ("localhost", ("localhost", "")),
    ],
)
def test_split_host(header: str, expected: tuple[str, str]) -> None:
    assert split_host(header) == expected


LOOPBACK_BIND = HostAllowlist(allowed_hosts("127.0.0.1", ["nas.lan"], "box"))
WILDCARD_BIND = HostAllowlist(allowed_hosts("0.0.0.0", [], "box"))


@pytest.mark.parametrize(
    ("hosts", "header", "allowed"),
    [
        (LOOPBACK_BIND, "127.0.0.1:8080", True),
        (LOOPBACK_BIND, "127.1.2.3", True),
        (LOOPBACK_BIND, "localhost:8080", True),
        (LOOPBACK_BIND, "app.localhost", True),
        (LOOPBACK_BIND, "[::1]:8080", True),
        (LOOPBACK_BIND, "NAS.lan:8080", True),
        (LOOPBACK_BIND, "evil.example:8080", False),
        (LOOPBACK_BIND, "localhost.evil.example", False),
        (LOOPBACK_BIND, "192.168.1.5:8080", False),
        (LOOPBACK_BIND, "box", False),
        (LOOPBACK_BIND, "", False),
        (WILDCARD_BIND, "192.168.1.5:8080", True),
        (WILDCARD_BIND, "[fd00::5]:8080", True),
        (WILDCARD_BIND, "box:8080", True),
        (WILDCARD_BIND, "evil.example", False),
    ],
)
def test_host_allowlist(hosts: HostAllowlist, header: str, allowed: bool) -> None:
    assert hosts.allows(header) is allowed


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({"host": "127.0.0.1:8080"}, False),  # curl, the CLI
        ({"host": "127.0.0.1:8080", "origin": "http://127.0.0.1:8080"}, False),
        ({"host": "tv.example", "origin": "https://tv.example"}, False),
        ({"host": "tv.example:443", "origin": "https://tv.example"}, False),
        ({"host": "127.0.0.1:8080", "origin": "http://127.0.0.1:9999"}, True),
        ({"host": "127.0.0.1:8080", "origin": "http://evil.example"}, True),
        ({"host": "127.0.0.1:8080", "origin": "null"}, True),
        ({"host": "127.0.0.1:8080", "origin": "https://admin.example"}, False),  # in cors
        ({"host": "127.0.0.1:8080", "sec-fetch-site": "cross-site"}, True),
        ({"host": "127.0.0.1:8080", "sec-fetch-site": "same-site"}, True),
        ({"host": "127.0.0.1:8080", "sec-fetch-site": "same-origin"}, False),
        ({"host": "127.0.0.1:8080", "sec-fetch-site": "none"}, False),
    ],
)
def test_cross_origin_reason(headers: dict[str, str], refused: bool) -> None:
    reason = cross_origin_reason(headers, ["https://admin.example"])
    assert (reason is not None) is refused


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("192.168.1.5", False), ("nas.lan", False)],
)  # fmt: skip
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_local_settings_take_hosts_comma_separated_and_refuse_a_short_token() -> None:
    from kubevod.errors import InvalidInput
    from kubevod.local.settings import resolve

    settings = resolve({}, {"KUBEVOD_ALLOWED_HOSTS": "nas.lan, tv.lan", "HOME": "/h"}, {})
    assert settings.allowed_hosts == ["nas.lan", "tv.lan"]
    assert "s" * 16 not in repr(resolve({}, {"KUBEVOD_API_TOKEN": "s" * 16}, {}))  # never shown
    with pytest.raises(InvalidInput, match="KUBEVOD_API_TOKEN") as refused:
        resolve({}, {"KUBEVOD_API_TOKEN": "tooshort"}, {})
    assert "tooshort" not in str(refused.value)


@pytest.mark.parametrize(
    ("host", "given", "token", "generated"),
    [
        ("127.0.0.1", None, None, False),
        ("127.0.0.1", "g" * 20, "g" * 20, False),
        ("0.0.0.0", "g" * 20, "g" * 20, False),
        ("0.0.0.0", None, "new", True),
        ("192.168.1.5", None, "new", True),
    ],
)
def test_a_token_is_made_for_any_bind_beyond_loopback(
    host: str, given: str | None, token: str | None, generated: bool
) -> None:
    from kubevod.local.server import api_token
    from kubevod.local.settings import LocalSettings

    got, made = api_token(LocalSettings(data="/tmp/x", host=host, token=given))  # type: ignore[arg-type]

    assert made is generated
    if token == "new":
        assert got is not None and len(got) >= 32
        assert api_token(LocalSettings(data="/tmp/x", host=host))[0] != got  # type: ignore[arg-type]
    else:
        assert got == token
