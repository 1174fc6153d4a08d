"""A fast validator for the JSON Schema subset module args use, falling back to jsonschema.

Validating resolved args is on every step's hot path; jsonschema's general machinery costs
hundreds of microseconds even for trivial schemas. This checks the common keywords directly
and hands any schema using other keywords to jsonschema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]

_SUPPORTED = frozenset(
    {
        "type",
        "properties",
        "required",
        "items",
        "enum",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "anyOf",
        "additionalProperties",
        "description",
        "title",
        "default",
    }
)

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}

Problems = list[tuple[str, str]]


def _supported(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return isinstance(schema, bool)
    if not set(schema) <= _SUPPORTED:
        return False
    if isinstance(schema.get("type"), str) and schema["type"] not in _TYPES:
        return False
    subs: list[Any] = list((schema.get("properties") or {}).values())
    subs += list(schema.get("anyOf") or [])
    if "items" in schema:
        subs.append(schema["items"])
    if isinstance(schema.get("additionalProperties"), Mapping):
        subs.append(schema["additionalProperties"])
    return all(_supported(s) for s in subs)


def _type_name(v: Any) -> str:
    for name, check in _TYPES.items():
        if name != "integer" and check(v):
            return name
    return type(v).__name__


def _check(schema: Any, value: Any, path: str, out: Problems) -> None:
    if schema is True or schema == {}:
        return
    if schema is False:
        out.append((path, "no value is allowed here"))
        return
    t = schema.get("type")
    if t is not None:
        names = [t] if isinstance(t, str) else list(t)
        if not any(_TYPES[n](value) for n in names):
            out.append((path, f"{value!r:.60} is not of type {' or '.join(map(repr, names))}"))
            return
    if "enum" in schema and value not in schema["enum"]:
        out.append((path, f"{value!r:.60} is not one of {schema['enum']!r}"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append((path, f"{value} is less than the minimum of {schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            out.append((path, f"{value} is greater than the maximum of {schema['maximum']}"))
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            out.append((path, f"{value} must be greater than {schema['exclusiveMinimum']}"))
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            out.append((path, f"{value} must be less than {schema['exclusiveMaximum']}"))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append((path, f"{value!r:.60} is shorter than {schema['minLength']}"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append((path, f"{value!r:.60} is longer than {schema['maxLength']}"))
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name in schema.get("required") or ():
            if name not in value:
                out.append((path, f"{name!r} is a required property"))
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if k in props:
                _check(props[k], v, sub, out)
            elif extra is False:
                out.append((path, f"additional property {k!r} is not allowed"))
            elif isinstance(extra, Mapping):
                _check(extra, v, sub, out)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(schema["items"], item, f"{path}.{i}" if path else str(i), out)
    if "anyOf" in schema:
        for option in schema["anyOf"]:
            trial: Problems = []
            _check(option, value, path, trial)
            if not trial:
                break
        else:
            out.append((path, f"{value!r:.60} is not valid under any of the given schemas"))


class ArgsValidator:
    """Validates values against one schema; ``problems`` gives (dotted path, message)."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        self._full = cls(schema)
        self._schema = schema
        self._fast = _supported(schema)

    def problems(self, value: Any) -> Problems:
        if self._fast:
            out: Problems = []
            _check(self._schema, value, "", out)
            return out
        return [
            (".".join(str(p) for p in err.absolute_path), err.message)
            for err in self._full.iter_errors(value)
        ]

    def iter_errors(self, value: Any) -> Any:
        """jsonschema's errors (with paths), for static checks that filter by location."""
        return self._full.iter_errors(value)
