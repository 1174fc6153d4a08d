"""``${VAR}`` and ``${VAR:-default}`` substitution inside parsed YAML scalars.

Substitution runs on the parsed document, never on the raw text: an environment value containing
``: `` or a newline stays one string and cannot inject YAML structure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .exceptions import ConfigError

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute(value: Any, env: Mapping[str, str], *, key: str = "") -> Any:
    """Return ``value`` with every ``${VAR}`` / ``${VAR:-default}`` in its strings replaced.

    ``${VAR}`` with VAR unset is an error naming the key; ``${VAR:-default}`` uses the default
    when VAR is unset or empty (shell semantics).
    """
    if isinstance(value, str):
        return _substitute_string(value, env, key)
    if isinstance(value, dict):
        return {
            k: substitute(v, env, key=f"{key}.{k}" if key else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [substitute(v, env, key=f"{key}[{i}]") for i, v in enumerate(value)]
    return value


def _substitute_string(text: str, env: Mapping[str, str], key: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        current = env.get(name)
        if default is not None:
            return current if current else default
        if current is None:
            raise ConfigError(
                key, f"${{{name}}} is not set (use ${{{name}:-default}} for a default)"
            )
        return current

    return _REFERENCE.sub(replace, text)
