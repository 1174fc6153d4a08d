"""Masking of secret values before anything reaches the audit trail."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# Field names whose values are secrets wherever they appear (camelCase, snake_case or
# kebab-case, as HTTP headers such as X-Api-Key in a flow's arguments are).
_SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|authorization|cookie|credential|api[_-]?key|"
    r"private[_-]?key|key[_-]?hash|csrf|password[_-]?hash",
    re.IGNORECASE,
)
# Values shaped like flow8 API keys are masked even under innocent field names.
_API_KEY_VALUE = re.compile(r"f8k_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{20,}")


def is_secret_key(name: str) -> bool:
    return _SECRET_KEY.search(name) is not None


def mask(value: Any, extra_secret_keys: frozenset[str] = frozenset()) -> Any:
    """A copy of `value` with every secret-named field replaced by `***`."""
    if isinstance(value, Mapping):
        return {
            str(k): MASK
            if is_secret_key(str(k)) or str(k) in extra_secret_keys
            else mask(v, extra_secret_keys)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask(v, extra_secret_keys) for v in value]
    if isinstance(value, str):
        # The substring test is much cheaper than the regex and rules out nearly every value.
        return _API_KEY_VALUE.sub(MASK, value) if "f8k_" in value else value
    return value
