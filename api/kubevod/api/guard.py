"""Requests a browser was tricked into sending: unknown Host names, cross-origin writes.

Two checks in one pure ASGI middleware, before any route runs:

- **Host** (when ``ApiSettings.allowed_hosts`` is set, as local mode does): a
  name outside the list gets 421. A page on ``evil.example`` that rebinds its
  name to 127.0.0.1 still sends ``Host: evil.example``, so DNS rebinding
  reaches nothing. Loopback names (``localhost``, ``*.localhost``) and loopback
  addresses are always allowed; an entry may be a name, an address or a CIDR
  range (an IP-literal Host cannot come from rebinding: the page's own origin
  would be that address).
- **Origin** (always, on POST, PUT, PATCH and DELETE): a request whose
  ``Origin`` is neither this server's own (compared with the Host header) nor
  one of ``cors_origins`` gets 403, as does ``Origin: null`` and, without an
  Origin, ``Sec-Fetch-Site: cross-site``/``same-site``. Without either header
  (curl, the CLI) nothing is refused here; the token check still applies.
  QoE beacons are exempt: players embedded anywhere send them, they change
  nothing but counters, and ``kubevod.api.qoe_limits`` bounds them (also, a
  proxy such as nginx with ``Host $host`` drops a non-default port that the
  page's Origin keeps).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from kubevod.api.errors import error_response
from starlette.types import ASGIApp, Receive, Scope, Send

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def split_host(value: str) -> tuple[str, str]:
    """``(name, port)`` of a Host header or netloc, lowercased, IPv6 brackets and a final dot
    removed; port "" when absent (pure)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    else:  # a bare name, or a bare IPv6 address
        name, port = value, ""
    return name.rstrip("."), port


class HostAllowlist:
    """The Host names one server answers to (see the module docstring)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.names: set[str] = set()
        self.networks: list[IpNetwork] = []
        for entry in entries:
            entry = entry.strip().lower()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.names.add(split_host(entry)[0])

    def allows(self, host_header: str) -> bool:
        """True when a request with this Host header may be answered (pure)."""
        name, _ = split_host(host_header)
        if not name:
            return False
        if name == "localhost" or name.endswith(".localhost") or name in self.names:
            return True
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.is_loopback or any(ip in net for net in self.networks)


def _netloc(origin_or_host: str, scheme: str) -> str:
    name, port = split_host(origin_or_host)
    if port == _DEFAULT_PORTS.get(scheme):
        port = ""
    if ":" in name:
        name = f"[{name}]"
    return f"{name}:{port}" if port else name


def cross_origin_reason(headers: Mapping[str, str], allowed_origins: Iterable[str]) -> str | None:
    """Why a state-changing request looks sent by another site's page, None when it does not.

    The Origin's host and port are compared with the Host header's, a default port
    counting as none: behind a proxy ending TLS, the scheme here is not the page's.

    Args:
        headers: the request headers, names lowercased.
        allowed_origins: ``cors_origins``, which may write from their pages.

    Returns:
        A one-line reason for the 403, or None.
    """
    origin = headers.get("origin")
    if origin is not None:
        origin = origin.strip()
        if origin.lower() == "null":
            return "a page with an opaque origin (Origin: null) may not change anything here"
        if origin.rstrip("/") in {o.rstrip("/") for o in allowed_origins}:
            return None
        parts = urlsplit(origin)
        own = _netloc(headers.get("host", ""), parts.scheme)
        if parts.scheme in _DEFAULT_PORTS and _netloc(parts.netloc, parts.scheme) == own:
            return None
        return (
            f"cross-origin request from {origin[:100]} refused:"
            " only this site's own pages may change it"
        )
    site = headers.get("sec-fetch-site")
    if site in ("cross-site", "same-site"):
        return f"request from another site (Sec-Fetch-Site: {site}) refused"
    return None


class RequestGuard:
    """Pure ASGI middleware applying the Host allowlist and the Origin check."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: list[str] | None,
        cors_origins: list[str],
        any_origin_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.hosts = HostAllowlist(allowed_hosts) if allowed_hosts is not None else None
        self.cors_origins = list(cors_origins)
        self.any_origin_paths = any_origin_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        unsafe = scope["method"] in UNSAFE_METHODS and scope["path"] not in self.any_origin_paths
        if self.hosts is None and not unsafe:
            await self.app(scope, receive, send)  # nothing to check: no header decoded
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.hosts is not None and not self.hosts.allows(headers.get("host", "")):
            name = split_host(headers.get("host", ""))[0][:100] or "(none)"
            detail = (
                f"this server does not answer to the host name {name!r}; if it is yours,"
                " add it to KUBEVOD_ALLOWED_HOSTS (kubevod serve --allowed-host)"
            )
            await error_response(421, "misdirected", detail)(scope, receive, send)
            return
        if unsafe:
            reason = cross_origin_reason(headers, self.cors_origins)
            if reason is not None:
                await error_response(403, "cross_origin", reason)(scope, receive, send)
                return
        await self.app(scope, receive, send)
