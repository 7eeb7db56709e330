"""Render THE nginx.conf of the chart for tests and benchmarks.

The file ``charts/kubevod/files/nginx.conf`` holds ``${KUBEVOD_*}`` placeholders
that envsubst fills in the cluster (the official nginx image's template step).
This module does the same substitution in Python, and refuses to leave any
placeholder unfilled or to fill one the file does not have.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "charts" / "kubevod" / "files" / "nginx.conf"
#: The optional TLS + HTTP/2 listener, included by nginx.conf as ``tls*.conf``.
NGINX_TLS_CONF = ROOT / "charts" / "kubevod" / "files" / "nginx-tls.conf"
PLACEHOLDER = re.compile(r"\$\{(KUBEVOD_[A-Z0-9_]+)\}")


def placeholders(text: str | None = None) -> set[str]:
    """Names of every ``${KUBEVOD_*}`` placeholder in the conf."""
    return set(PLACEHOLDER.findall(NGINX_CONF.read_text() if text is None else text))


def render(values: Mapping[str, str], path: Path = NGINX_CONF) -> str:
    """The conf with every placeholder replaced, exactly as envsubst would.

    Args:
        values: a value for each placeholder name (``KUBEVOD_LISTEN`` ...).
        path: the file to render (nginx.conf, or the TLS snippet).

    Returns:
        The complete text.
    """
    text = path.read_text()
    wanted = placeholders(text)
    missing, extra = wanted - set(values), set(values) - wanted
    if missing or extra:
        raise KeyError(f"nginx.conf placeholders missing={sorted(missing)} unknown={sorted(extra)}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def local_values(
    *,
    port: int,
    api: str,
    media: str,
    media_prefix: str,
    access_log: str,
    signing_secret: str = "",
    manifest_ttl: str = "1s",
    metrics_syslog: str = "",
    api_token: str = "",
    fill_port: int | None = None,
) -> dict[str, str]:
    """Placeholder values for nginx on loopback in front of local servers.

    ``metrics_syslog`` (host:port) turns on the copy of the access log to the
    metrics exporter's UDP syslog receiver. ``api_token`` is what write calls
    on /api/ must carry (empty: nginx refuses every write but QoE beacons).
    ``fill_port`` is the internal fill server's port (default: a free one).
    """
    if fill_port is None:
        from tests.fixtures.util import free_port

        fill_port = free_port()
    media_host, media_port = media.rsplit(":", 1)
    return {
        "KUBEVOD_LISTEN": f"127.0.0.1:{port}",
        "KUBEVOD_API_UPSTREAM": api,
        "KUBEVOD_MEDIA_HOST": media_host,
        "KUBEVOD_MEDIA_PORT": media_port,
        "KUBEVOD_MEDIA_SCHEME": "http",
        "KUBEVOD_MEDIA_PREFIX": media_prefix,
        "KUBEVOD_CACHE_MAX_SIZE": "2g",
        "KUBEVOD_MANIFEST_TTL": manifest_ttl,
        "KUBEVOD_SIGNED_URLS": "on" if signing_secret else "off",
        "KUBEVOD_SIGNING_SECRET": signing_secret,
        "KUBEVOD_ACCESS_LOG": access_log,
        "KUBEVOD_METRICS_LOG": "1" if metrics_syslog else "0",
        "KUBEVOD_METRICS_SYSLOG": metrics_syslog or "127.0.0.1:5514",
        "KUBEVOD_API_TOKEN": api_token,
        "KUBEVOD_FILL_LISTEN": f"127.0.0.1:{fill_port}",
    }
