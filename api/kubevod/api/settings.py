"""Settings of the API process, from ``KUBEVOD_*`` environment variables.

One class, validated once at start. Outside ``development`` it refuses
placeholder secrets (an API token, the URL-signing secret or a store/catalog
password such as ``changeme`` or ``minioadmin``), so a copy-pasted example
never reaches a real cluster.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kubevod.lists import split_list
from kubevod.signing import UrlSigner

#: Values that are never a real secret (compared case-insensitively).
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "admin",
        "change-me",
        "changeit",
        "changeme",
        "minioadmin",
        "password",
        "placeholder",
        "secret",
        "test",
        "token",
        "xxx",
    }
)

#: Characters that would break the quoted ``secure_link_md5`` string in nginx.conf.
_NGINX_UNSAFE = re.compile(r"[\s\"'$\\{};]")


def is_placeholder(secret: str) -> bool:
    """True when ``secret`` is a well-known placeholder rather than a real secret."""
    return secret.strip().lower() in PLACEHOLDER_SECRETS


def url_password(url: str) -> str | None:
    """The password embedded in ``url``, if any (percent-decoded)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password is not None else None


class ApiSettings(BaseSettings):
    """Everything the API can be told; each field says its unit and default."""

    model_config = SettingsConfigDict(env_prefix="KUBEVOD_", extra="ignore", frozen=True)

    #: ``development`` allows placeholder secrets; anything else refuses them.
    environment: Literal["development", "production"] = "development"
    #: Interface uvicorn listens on (``kubevod-api``); loopback unless told otherwise.
    host: str = "127.0.0.1"
    #: TCP port uvicorn listens on.
    port: int = Field(default=8000, ge=0, le=65535)
    #: Folder for the embedded defaults when no catalog/store URL is given.
    data_dir: Path = Path("kubevod-data")
    #: ``sqlite:///abs/file.db`` or ``mongodb://host:port/db``; empty: SQLite in ``data_dir``.
    catalog_url: str = ""
    #: ``file:///abs/dir`` or ``s3://KEY:SECRET@host:port/bucket``; empty: a folder in ``data_dir``.
    store_url: str = ""
    #: Where manifests point players for media: the API's own ``/media`` or an nginx/CDN URL.
    media_base_url: str = "/media"
    #: Bearer token required by every state-changing call (POST, PATCH, PUT, DELETE; QoE
    #: beacons aside); None leaves them open, which only ``development`` allows.
    api_token: SecretStr | None = None
    #: A second bearer token that may read a private library but never write (share it
    #: with viewers); None: only ``api_token`` opens a private library.
    viewer_token: SecretStr | None = None
    #: With signed URLs on and a token set, the library listing, a video's details and
    #: its manifests need a bearer token (or a valid signature, for manifests and media)
    #: unless this is true. Default false: a signature is handed only to token holders.
    public_library: bool = False
    #: True in the cluster: videos are declared by VideoAssets, and the operator deletes a
    #: video's media and entry when its VideoAsset goes (the API's store user may only
    #: read). A DELETE then says so (409) instead of failing half-way.
    managed_by_operator: bool = False
    #: Host header names (or IP literals) the app answers to; any other Host gets 421,
    #: which defeats DNS rebinding. None: every Host (the cluster's Ingress routes by
    #: Host already). Local mode fills it (loopback names, the bind address, extras).
    #: From the environment: a comma-separated list (``KUBEVOD_ALLOWED_HOSTS=tv.lan,nas``).
    allowed_hosts: Annotated[list[str] | None, NoDecode] = None
    #: Origins allowed by CORS (e.g. ``["https://tv.example"]``); empty: same origin only.
    cors_origins: list[str] = Field(default_factory=list)
    #: Largest accepted QoE beacon body, bytes (bigger ones get 413).
    qoe_max_bytes: int = Field(default=8 * 1024, ge=256, le=1024 * 1024)
    #: How long a request for a segment of an on-demand video that is being encoded
    #: waits for it before a 503 (players retry), seconds.
    on_demand_wait_s: float = Field(default=25.0, ge=0.0, le=120.0)
    #: Where the chunk workers encode on-demand videos (the cluster): a video whose
    #: encoded chunks span this many seconds is popular, and its other chunks are asked
    #: for in the background (local mode's pool has its own, ``promote_after_seconds``).
    on_demand_promote_after_s: float = Field(default=600.0, ge=1.0)
    #: Seconds a client is told to wait (``Retry-After``) when a backend is down.
    retry_after_s: int = Field(default=5, ge=1, le=3600)
    #: ``max-age`` of a ready video's manifests, seconds (they change only with a new generation).
    manifest_max_age_s: int = Field(default=60, ge=0, le=86_400)
    #: Folder of the web UI; None: the files shipped in the package (``kubevod/api/ui``).
    ui_dir: Path | None = None
    #: Client addresses whose X-Forwarded-* headers uvicorn trusts (the nginx tier).
    forwarded_allow_ips: str = "127.0.0.1"
    #: Secret shared with nginx's secure_link (docs/architecture.md §7); set: playback URLs are
    #: signed and expire. None or empty: unsigned URLs (nginx must then not require them).
    signing_secret: SecretStr | None = None
    #: Least lifetime of a signed URL, seconds (default 6 h: a long film with pauses).
    signing_ttl_s: int = Field(default=6 * 3600, ge=60, le=30 * 86_400)
    #: QoE intake, per client address: beacons per second refilled into its bucket
    #: (a player sends one every 30 s; 1/s leaves room for a household behind one NAT).
    qoe_rate_per_s: float = Field(default=1.0, gt=0, le=1000)
    #: QoE intake, per client address: bucket size, beacons (a burst beyond it gets 429).
    qoe_burst: int = Field(default=20, ge=1, le=10_000)
    #: Client addresses whose buckets are remembered (least recently seen are dropped).
    qoe_max_clients: int = Field(default=10_000, ge=1, le=1_000_000)
    #: Playback sessions counted per video; beacons of further new sessions are accepted
    #: (204) but not recorded, and counted in ``kubevod_qoe_beacons_dropped_total``.
    qoe_max_sessions_per_video: int = Field(default=10_000, ge=1, le=10_000_000)
    #: Startup times above this many milliseconds are recorded as this (60 s).
    qoe_max_startup_ms: float = Field(default=60_000, gt=0, le=600_000)
    #: A session's watch and stall totals are clamped to this many seconds (6 h).
    qoe_max_session_s: float = Field(default=6 * 3600, gt=0, le=86_400)
    #: A session's stall and quality-switch counts are clamped to this.
    qoe_max_events: int = Field(default=1_000, ge=1, le=100_000)

    @field_validator("signing_secret", mode="after")
    @classmethod
    def _signing_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if _NGINX_UNSAFE.search(value.get_secret_value()):
            # nginx.conf gets the secret by envsubst inside a quoted string.
            raise ValueError("KUBEVOD_SIGNING_SECRET must not hold spaces, quotes, $ or \\")
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _host_list(cls, value: object) -> object:
        return split_list(value) if isinstance(value, str) else value

    @field_validator("api_token", "viewer_token", mode="after")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # an empty KUBEVOD_API_TOKEN= means "none", never "the empty token"
        return value

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> ApiSettings:
        if self.environment == "development":
            return self
        for name, secret in (
            ("KUBEVOD_API_TOKEN", self.api_token),
            ("KUBEVOD_VIEWER_TOKEN", self.viewer_token),
            ("KUBEVOD_SIGNING_SECRET", self.signing_secret),
        ):
            if secret is not None and is_placeholder(secret.get_secret_value()):
                raise ValueError(f"{name} is a placeholder; set a real secret")
        for name, url in (
            ("KUBEVOD_STORE_URL", self.store_url),
            ("KUBEVOD_CATALOG_URL", self.catalog_url),
        ):
            password = url_password(url)
            if password is not None and is_placeholder(password):
                raise ValueError(f"{name} holds a placeholder password; set a real secret")
        if self.api_token is None:
            raise ValueError(
                "KUBEVOD_ENVIRONMENT=production needs KUBEVOD_API_TOKEN: without it anyone"
                " who reaches the API may edit and delete videos"
            )
        return self

    def private_library(self) -> bool:
        """True when reading the library and its manifests needs a token or a signature.

        Signed URLs on, a token to check against, and not declared public: the listing
        would otherwise hand a valid signature for every video to anyone.
        """
        return (
            self.signing_secret is not None
            and self.api_token is not None
            and not (self.public_library)
        )

    def url_signer(self) -> UrlSigner | None:
        """What signs playback URLs; None when no signing secret is set."""
        if self.signing_secret is None:
            return None
        return UrlSigner(self.signing_secret.get_secret_value(), self.signing_ttl_s)

    def resolved_catalog_url(self) -> str:
        """The catalog URL, defaulting to SQLite in ``data_dir``."""
        return self.catalog_url or f"sqlite://{(self.data_dir / 'catalog.db').resolve()}"

    def resolved_store_url(self) -> str:
        """The object store URL, defaulting to a folder in ``data_dir``."""
        return self.store_url or (self.data_dir / "media").resolve().as_uri()
