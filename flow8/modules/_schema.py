"""JSON Schema checks of module arguments and play inputs: one compiled validator.

Every step's resolved arguments are checked on the hot path, and the same schema judges a
flow's literal arguments when it is saved, so one validator does both and a fault gets one
wording wherever it is found. jsonschema-rs compiles a schema once into a Rust validator;
measured on the 2-core bench machine against `set`'s schema and a typical step's
arguments, a check costs 0.14 us, against 0.5 us for fastjsonschema's generated code and
1.5 us for the hand-written subset with a `jsonschema` fallback this replaced (whose two
paths worded the same fault differently).

Schemas come from modules and from users (a flow's ``inputSchema``), so:

- remote ``$ref``s are never fetched (``offline``): a schema cannot make the server reach
  the network;
- ``pattern`` runs on the Rust regex engines (linear or step-bounded), so a pattern such as
  ``^(a+)+$`` cannot stall the event loop as Python's backtracking ``re`` could;
- messages quote the offending value, cut to ``MAX_MESSAGE`` characters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema_rs

MAX_MESSAGE = 300

Path = tuple[str | int, ...]


class InvalidSchema(ValueError):
    """The schema itself is not a valid JSON Schema (or refers to what cannot be resolved)."""


class ArgsValidator:
    """Validates values against one schema, compiled once."""

    __slots__ = ("_validator",)

    def __init__(self, schema: Mapping[str, Any] | bool) -> None:
        try:
            plain = dict(schema) if isinstance(schema, Mapping) else schema
            self._validator = jsonschema_rs.validator_for(plain, offline=True)
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise InvalidSchema(first) from None
        except ValueError as e:  # the schema is not JSON (a set, bytes, ...)
            raise InvalidSchema(str(e)) from None

    def errors(self, value: Any) -> list[tuple[Path, str]]:
        """(path inside ``value``, message) for every violation; empty when valid."""
        try:
            if self._validator.is_valid(value):
                return []
            return [
                (tuple(e.instance_path), _short(e.message))
                for e in self._validator.iter_errors(value)
            ]
        except ValueError as e:  # not JSON at all: a set, bytes, a non-string key ...
            return [((), f"is not JSON: {e}")]

    def problems(self, value: Any) -> list[tuple[str, str]]:
        """(dotted path, message) for every violation; empty when valid."""
        try:
            if self._validator.is_valid(value):  # the hot path: no list, no paths
                return []
        except ValueError:
            pass
        return [(dotted(path), message) for path, message in self.errors(value)]


def dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)


def _short(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    return message[: MAX_MESSAGE - 1] + "…"
