"""The fetch guard: which addresses a source URL may reach, and a client that keeps to it.

Everything a VideoAsset author or a local-mode uploader names is untrusted, and
a URL is a way to make the worker (which sits inside the cluster, next to
MinIO, MongoDB, the kubelet and a cloud metadata service) connect somewhere on
their behalf. So every hop of a fetch (the URL and each redirect target) is:

1. parsed: only ``http`` and ``https``, no user:password, a host and a port;
2. resolved here, once, and every address checked against the policy
   (``FetchPolicy.refusal``, pure);
3. connected to *that* address (the request goes to the IP, with the original
   ``Host`` header and TLS server name), so a DNS answer that changes between
   the check and the connect (rebinding) cannot move the connection.

Refused by default: every address that is not globally routable (loopback,
private, link-local, CGNAT, ULA, multicast, reserved, unspecified), as
``ipaddress.is_global`` says. ``allow`` (CIDRs and host names: a NAS on the home
network) lifts that. Never allowed, whatever ``allow`` says: cloud metadata
addresses and ``deny`` (the cluster's own Pod and Service ranges).

The download has an overall deadline besides the per-read timeout, so a server
that trickles one byte every few seconds cannot hold a worker forever, and a
size limit. See docs/security.md.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from kubevod.errors import SourceError
from kubevod.lists import split_list

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[IPAddress]]

#: Cloud metadata services: credentials of the node, never a video.
METADATA_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("169.254.169.254/32"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_network("169.254.170.2/32"),  # ECS task metadata
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS over IPv6
)
SCHEMES = ("http", "https")


class FetchRefused(SourceError):
    """The URL, or a redirect it leads to, is not one the worker may fetch."""


def _network(text: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _unmapped(address: IPAddress) -> IPAddress:
    """``::ffff:127.0.0.1`` is 127.0.0.1 (the kernel connects it over IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class FetchPolicy:
    """Which hosts and addresses a fetch may reach (pure; see the module docstring).

    Attributes:
        allow_networks: CIDRs allowed although not globally routable.
        allow_hosts: host names allowed (whatever they resolve to, except ``deny``
            and metadata addresses); lower case, no trailing dot.
        deny_networks: CIDRs always refused (the cluster's Pod and Service ranges).
    """

    allow_networks: tuple[IPNetwork, ...] = ()
    allow_hosts: frozenset[str] = field(default_factory=frozenset)
    deny_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(
        cls, allow: str | Iterable[str] | None = None, deny: str | Iterable[str] | None = None
    ) -> FetchPolicy:
        """Build a policy from settings: ``allow`` mixes CIDRs, addresses and host names.

        Raises:
            ValueError: a ``deny`` entry is not a CIDR, or an ``allow`` entry is neither a
                CIDR nor a host name.
        """
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for item in split_list(allow):
            net = _network(item)
            if net is not None:
                networks.append(net)
            elif all(part.isalnum() or part == "-" for part in item.replace(".", "")):
                hosts.add(item.lower().rstrip("."))
            else:
                raise ValueError(f"fetch allow entry {item!r} is neither a CIDR nor a host name")
        denied: list[IPNetwork] = []
        for item in split_list(deny):
            net = _network(item)
            if net is None:
                raise ValueError(f"fetch deny entry {item!r} is not a CIDR")
            denied.append(net)
        return cls(tuple(networks), frozenset(hosts), tuple(denied))

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why ``host`` at ``address`` may not be fetched, or None when it may.

        Args:
            host: the host name of the URL (or the address itself).
            address: one address it resolved to.

        Returns:
            A reason fit for the video's owner, or None.
        """
        address = _unmapped(address)
        for net in METADATA_NETWORKS:
            if address.version == net.version and address in net:
                return f"{address} is a cloud metadata address"
        for net in self.deny_networks:
            if address.version == net.version and address in net:
                return f"{address} is inside {net}, which kubevod never fetches from"
        if address.is_global and not address.is_multicast:
            return None
        if host.lower().rstrip(".") in self.allow_hosts:
            return None
        for net in self.allow_networks:
            if address.version == net.version and address in net:
                return None
        return (
            f"{address} is a {_kind(address)} address; allow it with the fetch allow "
            "setting if it is yours (e.g. a NAS)"
        )


def _kind(address: IPAddress) -> str:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address.is_private:
        return "private"
    return "non-public"


def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order.

    Raises:
        FetchRefused: the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchRefused(f"cannot resolve the source host {host!r}") from exc
    seen: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in seen:
            seen.append(address)
    return seen


@dataclass(frozen=True)
class Hop:
    """One checked request: the URL as named and the address it will be sent to."""

    url: str
    host: str
    port: int
    address: IPAddress

    @property
    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address (what is connected to)."""
        parts = urlsplit(self.url)
        ip = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return urlunsplit(parts._replace(netloc=f"{ip}:{self.port}"))

    @property
    def host_header(self) -> str:
        """``Host`` as the server expects it (the default port left out)."""
        parts = urlsplit(self.url)
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if parts.scheme.lower() == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


def check_url(url: str, policy: FetchPolicy, resolve: Resolver = system_resolver) -> Hop:
    """Parse, resolve and check one URL; the Hop pins the address to connect to.

    Raises:
        FetchRefused: a refused scheme, credentials in the URL, no host, an address the
            policy refuses, or a name that does not resolve.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchRefused(f"malformed source URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise FetchRefused(
            f"refusing to fetch a {scheme or 'schemeless'}: URL (only http and https)"
        )
    if parts.username is not None or parts.password is not None:
        raise FetchRefused("the source URL carries a user name or password; use a pre-signed URL")
    host = parts.hostname or ""
    if not host:
        raise FetchRefused("the source URL has no host")
    port = port or (443 if scheme == "https" else 80)
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = resolve(host, port)
    if not addresses:
        raise FetchRefused(f"cannot resolve the source host {host!r}")
    reasons = []
    for address in addresses:
        reason = policy.refusal(host, address)
        if reason is None:
            return Hop(url, host, port, _unmapped(address))
        reasons.append(reason)
    raise FetchRefused(f"refusing to fetch {host}: {reasons[0]}")


def human_size(size: int) -> str:
    """``size`` bytes in words (``1.5 MiB``)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


@dataclass(frozen=True)
class FetchLimits:
    """How much a fetch may take.

    Attributes:
        max_bytes: largest body accepted (no larger than the scratch space).
        timeout: seconds one connect or read may take.
        deadline: seconds the whole fetch may take, redirects included.
        max_redirects: redirects followed.
    """

    max_bytes: int = 200 * 1024**3
    timeout: float = 30.0
    deadline: float = 3600.0
    max_redirects: int = 5


class GuardedFetch:
    """GETs that keep to a FetchPolicy on every hop (the shell around ``check_url``)."""

    def __init__(
        self, policy: FetchPolicy, limits: FetchLimits, resolve: Resolver = system_resolver
    ) -> None:
        self.policy, self.limits, self._resolve = policy, limits, resolve

    @contextmanager
    def open(self, url: str) -> Iterator[tuple[httpx.Response, Callable[[], float]]]:
        """GET ``url``, following checked redirects; yields the final response and a
        function giving the seconds left before the deadline.

        Raises:
            FetchRefused: a hop the policy refuses.
            SourceError: too many redirects, an HTTP error status, a timeout or a
                network failure (the message says which, never a local path).
        """
        limits = self.limits
        started = time.monotonic()

        def left() -> float:
            return limits.deadline - (time.monotonic() - started)

        current = url
        with httpx.Client(follow_redirects=False, trust_env=False) as client:
            for _ in range(limits.max_redirects + 1):
                hop = check_url(current, self.policy, self._resolve)
                remaining = left()
                if remaining <= 0:
                    raise SourceError(f"the source took longer than {limits.deadline:g} s")
                timeout = httpx.Timeout(min(limits.timeout, remaining))
                request = client.build_request(
                    "GET", hop.pinned_url, headers={"Host": hop.host_header}, timeout=timeout,
                    extensions={"sni_hostname": hop.host},
                )  # fmt: skip
                try:
                    response = client.send(request, stream=True)
                except httpx.TimeoutException as exc:
                    raise SourceError(f"the source URL timed out ({type(exc).__name__})") from exc
                except httpx.HTTPError as exc:
                    raise SourceError(f"cannot fetch the source URL: {_reason(exc)}") from exc
                try:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise SourceError(
                                f"HTTP {response.status_code} without a Location header"
                            )
                        current = urljoin(current, location)
                        continue
                    if response.status_code >= 400:
                        raise SourceError(f"the source URL answered HTTP {response.status_code}")
                    yield response, left
                    return
                except httpx.TimeoutException as exc:
                    raise SourceError(f"the source URL timed out ({type(exc).__name__})") from exc
                except httpx.HTTPError as exc:
                    raise SourceError(f"cannot fetch the source URL: {_reason(exc)}") from exc
                finally:
                    response.close()
        raise SourceError(f"too many redirects (more than {limits.max_redirects})")

    def download(self, url: str, dest: Path) -> Path:
        """Stream ``url`` to ``dest`` within the limits; ``dest`` is removed on failure."""
        limits = self.limits
        try:
            with self.open(url) as (response, left):
                length = response.headers.get("content-length")
                if length and length.isdigit() and int(length) > limits.max_bytes:
                    size, limit = human_size(int(length)), human_size(limits.max_bytes)
                    raise SourceError(f"the source is {size}, over the limit of {limit}")
                received = 0
                with dest.open("wb") as out:
                    # Chunks as they arrive (a chunk size would wait for a whole MiB of a
                    # trickle, past the deadline): the deadline is looked at after each read.
                    for chunk in response.iter_bytes():
                        received += len(chunk)
                        if received > limits.max_bytes:
                            raise SourceError(
                                f"the source is over the limit of {human_size(limits.max_bytes)}"
                            )
                        if left() <= 0:
                            raise SourceError(
                                f"the source took longer than {limits.deadline:g} s to download "
                                f"({human_size(received)} received)"
                            )
                        out.write(chunk)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return dest

    def preflight(self, url: str) -> None:
        """Check that ``url`` answers (every hop allowed, a 2xx status) without reading it."""
        with self.open(url):
            pass


def _reason(exc: httpx.HTTPError) -> str:
    """A network failure in words, without the library's internals."""
    if isinstance(exc, httpx.ConnectError):
        return "the server refused or did not answer the connection"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server broke off or did not speak HTTP"
    return type(exc).__name__
