"""One source of truth for API bodies: attrs classes give the JSON Schema (OpenAPI 3.1), the
validation of what clients send, and the shape of what the server answers.

Python fields are snake_case; JSON is camelCase. Constraints live in field metadata (see
`field()`), so the schema and the validator can never disagree.
"""

from __future__ import annotations

import enum
import functools
import math
import re
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from .exceptions import ValidationFailed

_META = "flow8_json"
T = typing.TypeVar("T")

JsonData = typing.NewType("JsonData", object)
"""A field holding JSON data as a user gave it (a play's input, a layer's output, a KV
value): any JSON in the schema, and answered as it is, without a walk (see ``_dump``)."""


@functools.cache
def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def field(
    *,
    default: Any = attrs.NOTHING,
    factory: Any = None,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    fmt: str | None = None,
    min_items: int | None = None,
    max_items: int | None = None,
    description: str | None = None,
) -> Any:
    rules = {
        "minLength": min_length,
        "maxLength": max_length,
        "pattern": pattern,
        "minimum": minimum,
        "maximum": maximum,
        "format": fmt,
        "minItems": min_items,
        "maxItems": max_items,
        "description": description,
    }
    meta = {_META: {k: v for k, v in rules.items() if v is not None}}
    if factory is not None:
        return attrs.field(factory=factory, metadata=meta)
    return attrs.field(default=default, metadata=meta)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # Resolving string annotations compiles them: once per class, not once per request.
    return typing.get_type_hints(cls)


def _optional_inner(tp: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != len(typing.get_args(tp)):
            inner = args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007
            return True, inner
    return False, tp


# -- schema ----------------------------------------------------------------------------------


class Components:
    """Collects named schemas for `#/components/schemas`."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}

    def ref(self, cls: type) -> dict[str, Any]:
        name = cls.__name__
        if name not in self.schemas:
            self.schemas[name] = {}  # reserve the name first: a self-referencing model ends here
            self.schemas[name] = object_schema(cls, self)
        return {"$ref": f"#/components/schemas/{name}"}


def _rules(a: attrs.Attribute[Any]) -> dict[str, Any]:
    return dict(a.metadata.get(_META, {}))


def object_schema(cls: type, comps: Components) -> dict[str, Any]:
    hints = _hints(cls)
    props: dict[str, Any] = {}
    required: list[str] = []
    for a in attrs.fields(cls):
        sub = type_schema(hints[a.name], comps)
        rules = _rules(a)
        if "description" in rules:
            sub = {**sub, "description": rules.pop("description")}
        sub = _apply_rules(sub, rules)
        props[camel(a.name)] = sub
        if a.default is attrs.NOTHING:
            required.append(camel(a.name))
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    # Cross-field rules a class states in JSON Schema terms (e.g. if/then); the handler
    # enforces the same rule.
    schema.update(getattr(cls, "__json_schema_extra__", {}))
    return schema


def _apply_rules(sub: dict[str, Any], rules: dict[str, Any]) -> dict[str, Any]:
    if not rules:
        return sub
    if "anyOf" in sub:  # Optional[...]: constraints belong to the non-null branch
        branches = [_apply_rules(b, rules) if b.get("type") != "null" else b for b in sub["anyOf"]]
        return {**sub, "anyOf": branches}
    return {**sub, **rules}


def type_schema(tp: Any, comps: Components) -> dict[str, Any]:
    optional, inner = _optional_inner(tp)
    if optional:
        return {"anyOf": [type_schema(inner, comps), {"type": "null"}]}
    if tp is Any or tp is object or tp is JsonData:
        return {}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is type(None):
        return {"type": "null"}
    if tp is datetime:
        return {"type": "string", "format": "date-time"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"type": "string", "enum": [m.value for m in tp]}
    if isinstance(tp, type) and attrs.has(tp):
        return comps.ref(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple, frozenset, set):
        return {"type": "array", "items": type_schema(args[0], comps) if args else {}}
    if origin in (dict, Mapping):
        value = args[1] if len(args) == 2 else Any
        return {"type": "object", "additionalProperties": type_schema(value, comps)}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [type_schema(a, comps) for a in args]}
    raise TypeError(f"no JSON schema for {tp!r}")


# -- validation ------------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append({"field": path or "(body)", "message": message})


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _check_rules(value: Any, rules: Mapping[str, Any], path: str, errors: _Errors) -> None:
    if isinstance(value, str):
        if "minLength" in rules and len(value) < rules["minLength"]:
            errors.add(path, f"must be at least {rules['minLength']} characters")
        if "maxLength" in rules and len(value) > rules["maxLength"]:
            errors.add(path, f"must be at most {rules['maxLength']} characters")
        if "pattern" in rules and not re.search(rules["pattern"], value):
            errors.add(path, f"must match {rules['pattern']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in rules and value < rules["minimum"]:
            errors.add(path, f"must be >= {rules['minimum']}")
        if "maximum" in rules and value > rules["maximum"]:
            errors.add(path, f"must be <= {rules['maximum']}")
    if isinstance(value, list | tuple):
        if "minItems" in rules and len(value) < rules["minItems"]:
            errors.add(path, f"must have at least {rules['minItems']} items")
        if "maxItems" in rules and len(value) > rules["maxItems"]:
            errors.add(path, f"must have at most {rules['maxItems']} items")


def _convert(tp: Any, value: Any, path: str, errors: _Errors) -> Any:
    optional, inner = _optional_inner(tp)
    if value is None:
        if optional or tp is Any or tp is type(None):
            return None
        errors.add(path, "must not be null")
        return None
    tp = inner
    if tp is Any or tp is object or tp is JsonData:
        return value
    if tp is datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            errors.add(path, "must be an RFC 3339 date-time with offset")
        return moment
    if tp is str:
        if not isinstance(value, str):
            errors.add(path, "must be a string")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            errors.add(path, "must be a boolean")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.add(path, "must be an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.add(path, "must be a number")
            return value
        if not math.isfinite(value):
            errors.add(path, "must be finite")
        return float(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            errors.add(path, f"must be one of {[m.value for m in tp]}")
            return None
    if isinstance(tp, type) and attrs.has(tp):
        return _build(tp, value, path, errors)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        if value not in args:
            errors.add(path, f"must be one of {list(args)}")
        return value
    if origin in (list, tuple, frozenset, set):
        if not isinstance(value, list):
            errors.add(path, "must be an array")
            return value
        items = [_convert(args[0], v, _join(path, i), errors) for i, v in enumerate(value)]
        return origin(items) if origin is not list else items
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            errors.add(path, "must be an object")
            return value
        vt = args[1] if len(args) == 2 else Any
        return {k: _convert(vt, v, _join(path, k), errors) for k, v in value.items()}
    raise TypeError(f"cannot validate {tp!r}")


@functools.cache
def _by_json_name(cls: type) -> dict[str, attrs.Attribute[Any]]:
    return {camel(a.name): a for a in attrs.fields(cls)}


def _build(cls: type, value: Any, path: str, errors: _Errors) -> Any:
    if not isinstance(value, dict):
        errors.add(path, "must be an object")
        return None
    hints = _hints(cls)
    fields = _by_json_name(cls)
    for key in value:
        if key not in fields:
            errors.add(_join(path, key), "unknown field")
    kwargs: dict[str, Any] = {}
    for key, a in fields.items():
        sub = _join(path, key)
        if key not in value:
            if a.default is attrs.NOTHING:
                errors.add(sub, "required")
            continue
        before = len(errors.items)
        converted = _convert(hints[a.name], value[key], sub, errors)
        if len(errors.items) == before and converted is not None:
            _check_rules(converted, _rules(a), sub, errors)
        kwargs[a.name] = converted
    if errors.items:
        return None
    return cls(**kwargs)


def parse(cls: type[T], value: Any) -> T:
    """Validate `value` (decoded JSON) against `cls`, listing every bad field at once."""
    errors = _Errors()
    result = _build(cls, value, "", errors)
    if errors.items:
        raise ValidationFailed(errors.items)
    return typing.cast(T, result)
