"""The JSON Schema (OpenAPI 3.1) of API bodies and query models, from their attrs classes.

What a model accepts is declared once, on its fields (``flow8.domain.field`` / ``rules``),
and read both here and by the API converter (``flow8.domain.api``) that validates what
clients send and renders what the server answers, so the document and the validation can
never disagree. Python fields are snake_case; JSON is camelCase.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from flow8.domain import BoundaryField, JsonData, api_fields, optional_inner

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


def field_schema(f: BoundaryField, comps: Components) -> dict[str, Any]:
    """The schema of one field: its type's, with its rules; `null` allowed where the API
    reads it as "left out"."""
    rules = dict(f.rules.schema)
    description = rules.pop("description", None)
    sub = _apply_rules(type_schema(f.type, comps), rules)
    if f.rules.null_as_default and "anyOf" not in sub:
        sub = {"anyOf": [sub, {"type": "null"}]}
    if description is not None:
        sub = {**sub, "description": description}
    return sub


def object_schema(cls: type, comps: Components) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in api_fields(cls):
        props[f.key] = field_schema(f, comps)
        if f.required:
            required.append(f.key)
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
    optional, inner = optional_inner(tp)
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
