"""The fetch guard's pure parts: which addresses a policy refuses, how a URL is checked, pinned."""

from __future__ import annotations

import ipaddress

import pytest

from kubevod.fetchguard import (
    FetchPolicy,
    FetchRefused,
    Hop,
    IPAddress,
    check_url,
)
from kubevod.lists import split_list

DEFAULT = FetchPolicy()
NAS = FetchPolicy.parse(allow=["192.168.1.20/32", "nas.lan"], deny=["10.42.0.0/16"])
CLUSTER = FetchPolicy.parse(allow=["10.0.0.0/8"], deny=["10.42.0.0/16", "10.43.0.0/16"])


def ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: the kernel connects to 127.0.0.1
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.20", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "non-public"),  # CGNAT
        ("192.0.2.1", "private"),  # TEST-NET-1 (documentation)
    ],
)
def test_non_public_addresses_are_refused_by_default(address: str, kind: str) -> None:
    reason = DEFAULT.refusal("host", ip(address))
    assert reason is not None and f"a {kind} address" in reason
    assert "fetch allow setting" in reason  # the owner learns how to allow a NAS


@pytest.mark.parametrize("address", ["169.254.169.254", "169.254.170.2", "fd00:ec2::254"])
def test_metadata_addresses_are_refused_even_when_allowed(address: str) -> None:
    everything = FetchPolicy.parse(allow=["0.0.0.0/0", "::/0"])
    reason = everything.refusal("metadata", ip(address))
    assert reason is not None and "cloud metadata" in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1::1", "1.1.1.1"])
def test_public_addresses_pass(address: str) -> None:
    assert DEFAULT.refusal("example.org", ip(address)) is None


def test_allow_lifts_the_default_for_a_nas_by_address_or_name() -> None:
    assert NAS.refusal("192.168.1.20", ip("192.168.1.20")) is None
    assert NAS.refusal("nas.lan", ip("192.168.1.77")) is None  # by name, whatever it resolves to
    assert NAS.refusal("NAS.LAN.", ip("192.168.1.77")) is None  # case and trailing dot
    assert NAS.refusal("printer.lan", ip("192.168.1.21")) is not None


def test_deny_wins_over_allow_for_the_clusters_own_ranges() -> None:
    assert CLUSTER.refusal("nas", ip("10.1.2.3")) is None
    for pod_or_service in ("10.42.0.7", "10.43.0.1"):
        reason = CLUSTER.refusal("kubernetes.default", ip(pod_or_service))
        assert reason is not None and "never fetches from" in reason
    named = FetchPolicy.parse(allow=["minio.kubevod.svc"], deny=["10.43.0.0/16"])
    assert named.refusal("minio.kubevod.svc", ip("10.43.0.20")) is not None


@pytest.mark.parametrize(
    ("allow", "deny", "message"),
    [
        (["10.0.0.0/33"], [], "neither a CIDR nor a host name"),
        (["nas lan"], [], "neither a CIDR nor a host name"),
        ([], ["nas.lan"], "is not a CIDR"),
    ],
)
def test_malformed_settings_fail_at_parse(allow: list[str], deny: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FetchPolicy.parse(allow, deny)


def test_split_list_takes_commas_or_lists() -> None:
    assert split_list(" a, b ,,c ") == ["a", "b", "c"]
    assert split_list(["a", " ", "b"]) == ["a", "b"]
    assert split_list(None) == []


def resolver(table: dict[str, list[str]]) -> tuple[list[str], object]:
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[IPAddress]:
        calls.append(host)
        return [ip(a) for a in table.get(host, [])]

    return calls, resolve


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "refusing to fetch a file: URL"),
        ("gopher://example.org/", "refusing to fetch a gopher: URL"),
        ("//example.org/a.mp4", "schemeless"),
        ("http://user:pw@example.org/a.mp4", "user name or password"),
        ("http:///a.mp4", "no host"),
        ("http://example.org:99999/a.mp4", "malformed source URL"),
        ("http://127.0.0.1:8080/a.mp4", "loopback"),
        ("http://[::1]/a.mp4", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://unknown.test/a.mp4", "cannot resolve"),
        ("http://rebind.test/a.mp4", "private"),
    ],
)
def test_check_url_refuses(url: str, message: str) -> None:
    _, resolve = resolver({"rebind.test": ["10.0.0.5"]})
    with pytest.raises(FetchRefused, match=message):
        check_url(url, DEFAULT, resolve)  # type: ignore[arg-type]


def test_check_url_pins_the_first_allowed_address_and_resolves_once() -> None:
    calls, resolve = resolver({"cdn.test": ["10.0.0.9", "93.184.216.34", "1.1.1.1"]})
    hop = check_url("https://cdn.test/v/a.mp4?sig=1", DEFAULT, resolve)  # type: ignore[arg-type]
    assert calls == ["cdn.test"]
    assert hop == Hop("https://cdn.test/v/a.mp4?sig=1", "cdn.test", 443, ip("93.184.216.34"))
    assert hop.pinned_url == "https://93.184.216.34:443/v/a.mp4?sig=1"
    assert hop.host_header == "cdn.test"


def test_hop_keeps_a_non_default_port_and_brackets_ipv6() -> None:
    hop = Hop("http://[2606:2800::1]:8080/a", "2606:2800::1", 8080, ip("2606:2800::1"))
    assert hop.pinned_url == "http://[2606:2800::1]:8080/a"
    assert hop.host_header == "[2606:2800::1]:8080"
    plain = Hop("http://nas.lan/a", "nas.lan", 80, ip("192.168.1.20"))
    assert (plain.pinned_url, plain.host_header) == ("http://192.168.1.20:80/a", "nas.lan")
