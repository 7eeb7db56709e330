"""Local mode settings: flags > env (KUBEVOD_*) > config file > defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubevod.errors import InvalidInput
from kubevod.local.settings import default_data_dir, load, resolve
from kubevod.models import TranscodePolicy

EAGER, ON_DEMAND = TranscodePolicy.EAGER, TranscodePolicy.ON_DEMAND

HOME = {"HOME": "/home/ada"}


@pytest.mark.parametrize(
    ("flags", "env", "config", "expected"),
    [
        ({}, {}, {}, {"port": 8080, "host": "127.0.0.1", "workers": 1, "watch": None}),
        ({}, {}, {"port": 9000}, {"port": 9000}),
        ({}, {"KUBEVOD_PORT": "9100"}, {"port": 9000}, {"port": 9100}),
        ({"port": 9200}, {"KUBEVOD_PORT": "9100"}, {"port": 9000}, {"port": 9200}),
        ({"port": None}, {"KUBEVOD_PORT": "9100"}, {}, {"port": 9100}),
        ({}, {"KUBEVOD_PORT": ""}, {"port": 9000}, {"port": 9000}),
        ({}, {}, {"local": {"workers": 3}}, {"workers": 3}),
        ({}, {"KUBEVOD_WORKERS": "2"}, {"workers": 3}, {"workers": 2}),
        ({}, {"KUBEVOD_HOST": "0.0.0.0"}, {}, {"host": "0.0.0.0"}),
        ({}, {"KUBEVOD_WATCH": "/srv/in"}, {}, {"watch": Path("/srv/in")}),
        ({}, {}, {"watch_interval": 0.5}, {"watch_interval": 0.5}),
        ({}, {}, {"server": "http://nas:8080/"}, {"server": "http://nas:8080"}),
        ({"server": "http://a:1"}, {"KUBEVOD_SERVER": "http://b:2"}, {}, {"server": "http://a:1"}),
        # Added files are encoded whole unless asked; the watch folder's on demand.
        ({}, {}, {}, {"default_policy": EAGER, "watch_policy": ON_DEMAND}),
        ({}, {"KUBEVOD_DEFAULT_POLICY": "onDemand"}, {}, {"default_policy": ON_DEMAND}),
        ({}, {"KUBEVOD_WATCH_POLICY": "eager"}, {}, {"watch_policy": EAGER}),
        ({}, {}, {"local": {"watch_policy": "eager"}}, {"watch_policy": EAGER}),
        (
            {"default_policy": EAGER},
            {"KUBEVOD_DEFAULT_POLICY": "onDemand"},
            {},
            {"default_policy": EAGER},
        ),
        ({}, {"KUBEVOD_DEFAULT_POLICY": "on-demand"}, {}, {"default_policy": ON_DEMAND}),
        ({}, {}, {"default_policy": "OnDemand"}, {"default_policy": ON_DEMAND}),
    ],
)
def test_precedence_is_flags_then_env_then_config_then_defaults(
    flags: dict[str, Any], env: dict[str, str], config: dict[str, Any], expected: dict[str, Any]
) -> None:
    settings = resolve(flags, {**HOME, **env}, config)
    for key, value in expected.items():
        assert getattr(settings, key) == value, key


def test_data_folder_defaults_to_xdg_data_home_then_home() -> None:
    assert default_data_dir({"HOME": "/home/ada"}) == Path("/home/ada/.local/share/kubevod")
    assert default_data_dir({"HOME": "/h", "XDG_DATA_HOME": "/x"}) == Path("/x/kubevod")
    assert resolve({}, {"XDG_DATA_HOME": "/x"}, {}).data == Path("/x/kubevod")
    assert resolve({}, {**HOME, "KUBEVOD_DATA": "/d"}, {}).data == Path("/d")
    assert resolve({"data": Path("/f")}, {**HOME, "KUBEVOD_DATA": "/d"}, {}).data == Path("/f")


def test_relative_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = resolve({"data": Path("lib"), "watch": Path("in")}, HOME, {})
    assert settings.data == tmp_path / "lib"
    assert settings.watch == tmp_path / "in"


@pytest.mark.parametrize(
    ("flags", "env", "config", "message"),
    [
        ({}, {"KUBEVOD_PORT": "eighty"}, {}, "'port' from environment (KUBEVOD_PORT)"),
        ({"port": 70000}, {}, {}, "'port' from flags"),
        ({}, {}, {"workers": 0}, "'workers' from config file"),
        ({}, {}, {"prot": 80}, "unknown setting(s) prot"),
        ({}, {}, {"server": "nas:8080"}, "http:// or https://"),
        ({}, {}, {"local": 3}, "[local] must be a table"),
        (
            {},
            {"KUBEVOD_DEFAULT_POLICY": "lazy"},
            {},
            "'default_policy' from environment (KUBEVOD_DEFAULT_POLICY): Input should be"
            " 'eager' or 'onDemand'",
        ),
        ({}, {}, {"watch_policy": 1}, "'watch_policy' from config file"),
    ],
)
def test_bad_values_name_the_setting_and_where_it_came_from(
    flags: dict[str, Any], env: dict[str, str], config: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        resolve(flags, {**HOME, **env}, config)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_config_file_in_the_data_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / "kubevod.toml").write_text("port = 9300\nworkers = 2\n")
    env = {**HOME, "KUBEVOD_DATA": str(tmp_path)}
    settings = load({}, env=env)
    assert (settings.port, settings.workers, settings.data) == (9300, 2, tmp_path)
    assert load({"port": 9400}, env=env).port == 9400
    assert load({"data": tmp_path}, env=HOME).port == 9300


def test_explicit_config_file_wins_over_the_data_folder_one(tmp_path: Path) -> None:
    (tmp_path / "kubevod.toml").write_text("port = 9300\n")
    other = tmp_path / "other.toml"
    other.write_text("[local]\nport = 9500\n")
    assert load({"data": tmp_path}, config_file=other, env=HOME).port == 9500
    with pytest.raises(InvalidInput, match="does not exist"):
        load({}, config_file=tmp_path / "missing.toml", env=HOME)


def test_broken_config_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "kubevod.toml").write_text("port = = 1\n")
    with pytest.raises(InvalidInput, match=r"config file .*kubevod.toml"):
        load({"data": tmp_path}, env=HOME)


def test_data_layout_names_every_file(tmp_path: Path) -> None:
    layout = resolve({"data": tmp_path}, HOME, {}).layout
    assert layout.catalog == tmp_path / "catalog.db"
    assert layout.catalog_url() == f"sqlite:///{tmp_path}/catalog.db"
    assert layout.store_url() == f"file://{tmp_path}/media"
    assert layout.server_file == tmp_path / "server.json"
    assert layout.scratch == tmp_path / "scratch"
