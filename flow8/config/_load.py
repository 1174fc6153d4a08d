"""Reading settings: ``.env``, then ``conf/config.yml`` with ``${VAR}`` substitution.

Start-up order (documented in the README): load ``.env`` into the environment without overriding
variables already set, configure logging, then :func:`load_settings`, then open the store, then
build the supervision tree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from dotenv import load_dotenv

from ._settings import SETTINGS, Settings, build_settings
from ._substitute import substitute
from .exceptions import ConfigError

DEFAULT_CONFIG_PATH = Path("conf/config.yml")


def load_env_file(path: Path | None = None) -> bool:
    """Load ``.env`` (or ``path``) into ``os.environ``; variables already set win."""
    return load_dotenv(path or Path(".env"), override=False)


def default_config_text() -> str:
    """The config.yml equivalent to running with no file: every key as ``${VAR:-default}``."""
    tree: dict[str, Any] = {}
    for setting in SETTINGS:
        *parents, leaf = setting.key.split(".")
        node = tree
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = f"${{{setting.env}:-{setting.default}}}"
    return yaml.safe_dump(tree, sort_keys=False)


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Parse and check the configuration.

    ``path`` defaults to ``$FLOW8_CONFIG`` or ``conf/config.yml`` in the working directory; a
    missing default file is fine (the built-in table applies), a missing explicit file is not.
    Raises :class:`ConfigError` naming the key for any bad value or unknown key.
    """
    env = os.environ if env is None else env
    explicit = path is not None or bool(env.get("FLOW8_CONFIG"))
    config_path = path or Path(env.get("FLOW8_CONFIG") or DEFAULT_CONFIG_PATH)
    document: Any = {}
    if config_path.exists():
        try:
            document = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(str(config_path), f"not valid YAML{where}") from None
        if not isinstance(document, dict):
            raise ConfigError(str(config_path), "expected a mapping of settings at the top level")
    elif explicit:
        raise ConfigError("FLOW8_CONFIG", f"config file {config_path} does not exist")

    given = _flatten(document)
    known = {setting.key for setting in SETTINGS}
    for key in given:
        if key not in known:
            raise ConfigError(key, f"unknown setting in {config_path}")
    raw = {
        setting.key: given.get(setting.key, f"${{{setting.env}:-{setting.default}}}")
        for setting in SETTINGS
    }
    values = {key: substitute(value, env, key=key) for key, value in raw.items()}
    return build_settings(values)


def _flatten(node: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat
