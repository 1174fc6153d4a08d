import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flow8.config import (
    SETTINGS,
    ConfigError,
    PortRange,
    default_config_text,
    load_settings,
)

SHIPPED = Path(__file__).parents[2] / "conf" / "config.yml"


def _flatten(node: dict[str, object], prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_shipped_config_spells_out_exactly_the_builtin_table() -> None:
    shipped = _flatten(yaml.safe_load(SHIPPED.read_text()))
    builtin = _flatten(yaml.safe_load(default_config_text()))
    assert shipped == builtin
    assert set(shipped) == {s.key for s in SETTINGS}


def test_defaults_without_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no conf/config.yml here: the built-in table applies
    settings = load_settings(None, env={})
    assert settings.server_port == 4454
    assert settings.mcp_port == 4445
    assert settings.channel_port_range == PortRange(7701, 7799)
    assert len(settings.channel_port_range) == 99
    assert settings.store_durability == "full"
    assert settings.admin_token is None
    assert settings.trusted_proxies == ()
    assert settings.data_dir == Path("./data").resolve()
    assert settings.store_url == f"sqlite:///{Path('./data').resolve() / 'flow8.db'}"


def test_environment_overrides_and_empty_means_default(tmp_path: Path) -> None:
    env = {
        "SERVER_PORT": "5000",
        "MCP_PORT": "",
        "FLOW8_DATA_DIR": str(tmp_path),
        "CHANNEL_PORT_RANGE": "7801-7899",
        "ALLOWED_ORIGINS": "https://a.example.com, https://b.example.com/",
        "PUBLIC_URL": "https://flow8.example.com/",
        "FLOW8_STORE_DURABILITY": "NORMAL",
    }
    settings = load_settings(SHIPPED, env=env)
    assert settings.server_port == 5000
    assert settings.mcp_port == 4445
    assert settings.channel_port_range == PortRange(7801, 7899)
    assert settings.allowed_origins == ("https://a.example.com", "https://b.example.com")
    assert settings.public_url == "https://flow8.example.com"
    assert settings.store_durability == "normal"
    assert settings.store_url == f"sqlite:///{tmp_path / 'flow8.db'}"
    assert settings.secure_cookies is False
    assert load_settings(SHIPPED, env={"SECURE_COOKIES": "true"}).secure_cookies is True


def test_file_values_with_substitution_and_partial_file(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("server:\n  port: ${MY_PORT:-6000}\nstore:\n  url: ${URL}\n")
    settings = load_settings(config, env={"URL": "mongodb://db.internal/flow8"})
    assert settings.server_port == 6000
    assert settings.store_url == "mongodb://db.internal/flow8"
    assert settings.mcp_port == 4445  # left out of the file: the table's default


def test_substituted_values_cannot_inject_yaml(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("security:\n  admin_token: ${TOKEN}\n")
    settings = load_settings(config, env={"TOKEN": "a: b\nserver: {port: 1}"})
    assert settings.admin_token == "a: b\nserver: {port: 1}"
    assert settings.server_port == 4454


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SERVER_PORT": "http"}, "config error: server.port (SERVER_PORT): expected a TCP port"),
        ({"MCP_PORT": "70000"}, "config error: mcp.port (MCP_PORT): expected a TCP port between"),
        (
            {"CHANNEL_PORT_RANGE": "7799-7701"},
            "channels.port_range (CHANNEL_PORT_RANGE): the range",
        ),
        ({"CHANNEL_PORT_RANGE": "7701"}, "expected a range like 7701-7799"),
        ({"FLOW8_STORE_DURABILITY": "maybe"}, "store.durability (FLOW8_STORE_DURABILITY)"),
        ({"FLOW8_STORE_URL": "postgres://x"}, "store.url (FLOW8_STORE_URL): expected sqlite"),
        ({"SHUTDOWN_GRACE_SECONDS": "-1"}, "expected a positive number of seconds"),
        ({"FLOW8_INVITATION_TTL_DAYS": "0"}, "expected a positive number of days"),
        ({"ALLOWED_ORIGINS": "ftp://x"}, "server.allowed_origins (ALLOWED_ORIGINS)"),
        ({"SECURE_COOKIES": "maybe"}, "server.secure_cookies (SECURE_COOKIES): expected true"),
        ({"PUBLIC_URL": "flow8.example.com"}, "server.public_url (PUBLIC_URL): expected a URL"),
        ({"PUBLIC_URL": "https://flow8.example.com/?x=1"}, "(PUBLIC_URL): expected a URL"),
        (
            {"TRUSTED_PROXIES": "10.0.0.1, 10.0.0.0/33"},
            "server.trusted_proxies (TRUSTED_PROXIES): expected IP addresses or CIDR networks "
            "like 10.0.0.1, 10.0.0.0/8 or fd00::/8, got '10.0.0.0/33'",
        ),
        ({"TRUSTED_PROXIES": "proxy.internal"}, "got 'proxy.internal'"),
        ({"TRUSTED_PROXIES": "fd00::/129"}, "(TRUSTED_PROXIES): expected IP addresses"),
        (
            {"TRUSTED_PROXIES": "10.0.0.1/8"},
            "(TRUSTED_PROXIES): '10.0.0.1/8' has host bits set: write the network (10.0.0.0/8)",
        ),
    ],
)
def test_bad_values_name_the_key_in_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(SHIPPED, env=env)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text


def test_unknown_key_and_unset_variable_and_bad_yaml(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("server:\n  prot: 1\n")
    with pytest.raises(ConfigError, match=r"server\.prot: unknown setting"):
        load_settings(config, env={})
    config.write_text("server:\n  port: ${NOPE}\n")
    with pytest.raises(ConfigError, match=r"server\.port: \$\{NOPE\} is not set"):
        load_settings(config, env={})
    config.write_text("server: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_settings(config, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={"FLOW8_CONFIG": str(tmp_path / "missing.yml")})


def test_secrets_are_not_in_repr() -> None:
    settings = load_settings(
        SHIPPED,
        env={"FLOW8_ADMIN_TOKEN": "canary-admin-token", "FLOW8_ENCRYPTION_KEYS": "k1:Y2FuYXJ5"},
    )
    assert settings.admin_token == "canary-admin-token"
    assert "canary-admin-token" not in repr(settings)
    assert "Y2FuYXJ5" not in repr(settings)


def test_readme_configuration_table_lists_every_setting_with_its_default() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for setting in SETTINGS:
        default = f"`{setting.default}`" if setting.default else "(empty)"
        row = f"| `{setting.env}` | `{setting.key}` | {default} |"
        assert row in readme, f"README configuration table is missing or wrong for {setting.env}"


def test_trusted_proxies_parse_addresses_and_networks_of_both_versions(tmp_path: Path) -> None:
    settings = load_settings(
        SHIPPED, env={"TRUSTED_PROXIES": " 10.0.0.5, 192.168.0.0/16,,2001:db8::/32 , ::1"}
    )
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.5/32"),
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("::1/128"),
    )
    config = tmp_path / "c.yml"  # a YAML list is accepted as well as one string
    config.write_text("server:\n  trusted_proxies: [10.1.0.0/16, 'fd00::/8']\n")
    listed = load_settings(config, env={})
    assert listed.trusted_proxies == (
        ipaddress.ip_network("10.1.0.0/16"),
        ipaddress.ip_network("fd00::/8"),
    )


def test_serve_refuses_a_bad_trusted_proxy_with_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOW8_", "SERVER_"))}
    env.update(
        FLOW8_DATA_DIR=str(tmp_path / "data"),
        FLOW8_CONFIG=str(SHIPPED),
        TRUSTED_PROXIES="10.0.0.0/8,10.300.0.0/16",
    )
    result = subprocess.run(
        [sys.executable, "-m", "flow8.cli", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "config error: server.trusted_proxies (TRUSTED_PROXIES):" in result.stderr
    assert "'10.300.0.0/16'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # stopped before opening anything
