"""Configuration: the settings table, ``conf/config.yml`` loading and ``${VAR}`` substitution."""

from ._load import DEFAULT_CONFIG_PATH, default_config_text, load_env_file, load_settings
from ._settings import (
    SETTINGS,
    PortRange,
    RetentionDefault,
    Setting,
    Settings,
    build_settings,
    parse_workers,
)
from .exceptions import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "SETTINGS",
    "ConfigError",
    "PortRange",
    "RetentionDefault",
    "Setting",
    "Settings",
    "build_settings",
    "default_config_text",
    "load_env_file",
    "load_settings",
    "parse_workers",
]
