"""Settings of the API process, from ``KUBEVOD_*`` environment variables.

One class, validated once at start. Outside ``development`` it refuses
placeholder secrets (an API token or a store/catalog password such as
``changeme`` or ``minioadmin``), so a copy-pasted example never reaches a
real cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    #: Bearer token required by POST, PATCH and DELETE; None leaves them open (local mode).
    api_token: SecretStr | None = None
    #: Origins allowed by CORS (e.g. ``["https://tv.example"]``); empty: same origin only.
    cors_origins: list[str] = Field(default_factory=list)
    #: Largest accepted QoE beacon body, bytes (bigger ones get 413).
    qoe_max_bytes: int = Field(default=8 * 1024, ge=256, le=1024 * 1024)
    #: Seconds a client is told to wait (``Retry-After``) when a backend is down.
    retry_after_s: int = Field(default=5, ge=1, le=3600)
    #: ``max-age`` of a ready video's manifests, seconds (they change only with a new generation).
    manifest_max_age_s: int = Field(default=60, ge=0, le=86_400)
    #: Folder of the web UI; None: the files shipped in the package (``kubevod/api/ui``).
    ui_dir: Path | None = None
    #: Client addresses whose X-Forwarded-* headers uvicorn trusts (the nginx tier).
    forwarded_allow_ips: str = "127.0.0.1"

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> ApiSettings:
        if self.environment == "development":
            return self
        if self.api_token is not None and is_placeholder(self.api_token.get_secret_value()):
            raise ValueError("KUBEVOD_API_TOKEN is a placeholder; set a real secret")
        for name, url in (
            ("KUBEVOD_STORE_URL", self.store_url),
            ("KUBEVOD_CATALOG_URL", self.catalog_url),
        ):
            password = url_password(url)
            if password is not None and is_placeholder(password):
                raise ValueError(f"{name} holds a placeholder password; set a real secret")
        return self

    def resolved_catalog_url(self) -> str:
        """The catalog URL, defaulting to SQLite in ``data_dir``."""
        return self.catalog_url or f"sqlite://{(self.data_dir / 'catalog.db').resolve()}"

    def resolved_store_url(self) -> str:
        """The object store URL, defaulting to a folder in ``data_dir``."""
        return self.store_url or (self.data_dir / "media").resolve().as_uri()
