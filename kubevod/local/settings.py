"""Settings of local mode (``kubevod serve``, ``kubevod add``, ``list``/``show``/``rm``).

Precedence, highest first: command-line flags, environment (``KUBEVOD_*``), a
TOML config file (``--config FILE``, else ``<data>/kubevod.toml``), defaults.
The merge is a pure function (:func:`resolve`) so every rule is table-tested;
:func:`load` is the thin shell that reads the real environment and file.

The data folder holds everything local mode owns (see :class:`DataLayout`).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kubevod.errors import InvalidInput
from kubevod.lists import split_list
from kubevod.models import TranscodePolicy

ENV_PREFIX = "KUBEVOD_"
CONFIG_NAME = "kubevod.toml"

#: Settings that may come from flags, env or the config file, with their env names.
ENV_NAMES: dict[str, str] = {
    "data": "KUBEVOD_DATA",
    "host": "KUBEVOD_HOST",
    "port": "KUBEVOD_PORT",
    "workers": "KUBEVOD_WORKERS",
    "watch": "KUBEVOD_WATCH",
    "watch_interval": "KUBEVOD_WATCH_INTERVAL",
    "server": "KUBEVOD_SERVER",
    "token": "KUBEVOD_API_TOKEN",
    "allowed_hosts": "KUBEVOD_ALLOWED_HOSTS",
    "default_policy": "KUBEVOD_DEFAULT_POLICY",
    "watch_policy": "KUBEVOD_WATCH_POLICY",
    "promote_after_seconds": "KUBEVOD_PROMOTE_AFTER_SECONDS",
}


def default_data_dir(env: Mapping[str, str]) -> Path:
    """``$XDG_DATA_HOME/kubevod``, else ``~/.local/share/kubevod`` (the XDG default)."""
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local/share")
    return Path(base) / "kubevod"


class LocalSettings(BaseModel):
    """Everything local mode can be told; every field says its unit and default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The folder that holds the catalog, the media and scratch space.
    data: Path
    #: Interface the server listens on; loopback by default so nothing is exposed by accident.
    host: str = "127.0.0.1"
    #: TCP port of the server (API, player and media).
    port: int = Field(default=8080, ge=0, le=65535)
    #: Concurrent transcodes. One ffmpeg already uses every core, so 1 is the sane default.
    workers: int = Field(default=1, ge=1, le=64)
    #: Folder watched for new video files (None: no watching).
    watch: Path | None = None
    #: Seconds between two scans of the watch folder; a file is picked up once its
    #: size and mtime are unchanged across two scans.
    watch_interval: float = Field(default=2.0, gt=0, le=3600)
    #: URL of a running server for ``add``/``list``/``show``/``rm`` (None: find one).
    server: str | None = None
    #: Bearer token that state-changing calls need (``Authorization: Bearer``). None: on a
    #: loopback bind, none is needed; on any other bind, ``serve`` generates one at start.
    token: str | None = Field(default=None, min_length=16, max_length=256, repr=False)
    #: Extra Host names the server answers to (a name, an address or a CIDR range), beside
    #: loopback names and the bind address; others get 421 (DNS rebinding). From the
    #: environment or a flag: comma-separated.
    allowed_hosts: list[str] = Field(default_factory=list, max_length=100)
    default_policy: TranscodePolicy = Field(
        default=TranscodePolicy.EAGER,
        description=(
            "How the server transcodes a video added without a policy of its own (``kubevod"
            " add`` without --on-demand/--eager, ``POST /api/videos`` without ``policy``)."
            " eager (the default): the whole video at once; onDemand: register it now (probe,"
            " poster, the first seconds) and encode the rest when it is watched."
            " ``serve --on-demand``, KUBEVOD_DEFAULT_POLICY, ``default_policy`` in the config."
        ),
    )
    watch_policy: TranscodePolicy = Field(
        default=TranscodePolicy.ON_DEMAND,
        description=(
            "How files found by the watch folder are transcoded. onDemand (the default): each"
            " is registered at once (probe, poster, the first seconds) and the rest is encoded"
            " when it is watched, so a folder of hundreds of films is browsable right away"
            " instead of after days of encoding; eager: every file is encoded whole, in turn."
            " KUBEVOD_WATCH_POLICY, ``watch_policy`` in the config."
        ),
    )

    promote_after_seconds: float = Field(
        default=600.0,
        ge=1.0,
        le=1_000_000.0,
        description=(
            "An on-demand video whose viewers reached this many seconds of it (the chunks"
            " they asked for, summed) is popular: its other chunks are then encoded in the"
            " background, at the lowest priority. KUBEVOD_PROMOTE_AFTER_SECONDS."
        ),
    )

    @field_validator("data", "watch", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().absolute()

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _host_list(cls, value: object) -> object:
        return split_list(value) if isinstance(value, str) else value

    @field_validator("default_policy", "watch_policy", mode="before")
    @classmethod
    def _policy_name(cls, value: object) -> object:
        """Accept any spelling of a policy a person may type (``on-demand``, ``ONDEMAND``)."""
        if isinstance(value, str) and not isinstance(value, TranscodePolicy):
            folded = value.strip().lower().replace("-", "").replace("_", "")
            for policy in TranscodePolicy:
                if policy.value.lower() == folded:
                    return policy
        return value

    @field_validator("token", mode="before")
    @classmethod
    def _blank_token(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("server", mode="after")
    @classmethod
    def _server_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def layout(self) -> DataLayout:
        """Where things live under :attr:`data`."""
        return DataLayout(self.data)


@dataclass(frozen=True)
class DataLayout:
    """The data folder: ``catalog.db``, ``media/``, ``scratch/``, ``server.json``,
    ``api-token``, config."""

    root: Path

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.db"

    @property
    def media(self) -> Path:
        return self.root / "media"

    @property
    def scratch(self) -> Path:
        return self.root / "scratch"

    @property
    def server_file(self) -> Path:
        return self.root / "server.json"

    @property
    def token_file(self) -> Path:
        """The running server's API token (mode 0600), for ``kubevod add/list/rm``."""
        return self.root / "api-token"

    @property
    def config(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def watch_index(self) -> Path:
        return self.root / "watch.json"

    def catalog_url(self) -> str:
        return f"sqlite:///{self.catalog}"

    def store_url(self) -> str:
        return f"file://{self.media}"


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    return {key: env[name] for key, name in ENV_NAMES.items() if env.get(name, "") != ""}


def resolve(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    config: Mapping[str, Any],
) -> LocalSettings:
    """Merge the three sources into validated settings (pure).

    Args:
        flags: values given on the command line; ``None`` means "not given".
        env: the process environment (only ``KUBEVOD_*`` names in :data:`ENV_NAMES` count).
        config: the parsed TOML config file (top level, or its ``[local]`` table).

    Returns:
        The settings; the data folder defaults to :func:`default_data_dir`.

    Raises:
        InvalidInput: a value is malformed or the config file names an unknown key; the
            message names the setting and where it came from.
    """
    table = config.get("local", config)
    if not isinstance(table, Mapping):
        raise InvalidInput("config file: [local] must be a table")
    unknown = sorted(set(table) - set(ENV_NAMES))
    if unknown:
        raise InvalidInput(f"config file: unknown setting(s) {', '.join(unknown)}")
    layers: list[tuple[str, Mapping[str, Any]]] = [
        ("config file", table),
        ("environment", _from_env(env)),
        ("flags", {k: v for k, v in flags.items() if v is not None}),
    ]
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, layer in layers:
        for key, value in layer.items():
            merged[key] = value
            origin[key] = name
    merged.setdefault("data", default_data_dir(env))
    try:
        return LocalSettings.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "?"
        where = origin.get(key, "defaults")
        hint = f" ({ENV_NAMES[key]})" if where == "environment" and key in ENV_NAMES else ""
        raise InvalidInput(f"setting {key!r} from {where}{hint}: {err['msg']}") from None


def read_config(path: Path) -> dict[str, Any]:
    """Parse a TOML config file; a missing file is an empty config."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"config file {path}: {exc}") from None


def load(
    flags: Mapping[str, Any],
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> LocalSettings:
    """Settings from flags, the real environment and the config file.

    The config file is ``config_file`` when given (it must exist), else
    ``<data>/kubevod.toml`` of the data folder chosen by flags or env.
    """
    env = os.environ if env is None else env
    if config_file is not None:
        if not config_file.is_file():
            raise InvalidInput(f"config file {config_file} does not exist")
        config = read_config(config_file)
    else:
        data = flags.get("data") or env.get(ENV_NAMES["data"]) or default_data_dir(env)
        config = read_config(Path(data).expanduser() / CONFIG_NAME)
    return resolve(flags, env, config)


def read_server_file(layout: DataLayout) -> dict[str, Any] | None:
    """``server.json`` of a server that is still alive, else None (``serve`` writes it; the
    CLI reads it to find the server without importing it)."""
    try:
        info = json.loads(layout.server_file.read_text())
        pid = int(info["pid"])
        url = str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return {"pid": pid, "url": url}
