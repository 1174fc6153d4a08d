"""Rendering answers: attrs objects -> camelCase JSON data; datetimes as RFC 3339 UTC; enums by
value; mappings and sequences element by element.

Every type is looked at once: its dumper is chosen (for an attrs class, a function generated
with one line per field) and cached, so rendering an answer costs one dict lookup and one call
per value instead of walking `attrs.fields` and an `isinstance` chain each time.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs

from ._schema import JsonData, camel

Dumper = Callable[[Any], Any]

_DUMPERS: dict[type, Dumper] = {}


def dump(value: Any) -> Any:
    """attrs objects -> camelCase JSON data; datetimes as RFC 3339 UTC; enums by value."""
    cls = value.__class__
    dumper = _DUMPERS.get(cls)
    if dumper is None:
        dumper = _DUMPERS[cls] = _dumper_for(cls)
    return dumper(value)


def _same(value: Any) -> Any:
    # A StrEnum/IntEnum member is a str/int: the JSON encoder writes its value.
    return value


def _datetime(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _enum(value: enum.Enum) -> Any:
    return value.value


def _mapping(value: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): dump(v) for k, v in value.items()}


def _sequence(value: Any) -> list[Any]:
    return [dump(v) for v in value]


def _dumper_for(cls: type) -> Dumper:
    if cls is type(None) or issubclass(cls, str | int | float | bool):
        return _same
    if attrs.has(cls):
        return _attrs_dumper(cls)
    if issubclass(cls, datetime):
        return _datetime
    if issubclass(cls, enum.Enum):
        return _enum
    if issubclass(cls, Mapping):
        return _mapping
    if issubclass(cls, list | tuple | set | frozenset):
        return _sequence
    return _same


def _attrs_dumper(cls: type) -> Dumper:
    """`def dump_X(v): return {"fieldName": <v.field_name, rendered>, ...}`, compiled once.

    A field whose declared type JSON writes as it is (str, int, float, bool, a str/int enum,
    or None of those) is read as it is, without a call; a datetime field is formatted
    inline; anything else goes through `dump`.
    """
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # unresolvable annotations: every field goes through dump
        hints = {}
    entries = "".join(
        f"{camel(a.name)!r}: {_render(hints.get(a.name, a.type), f'v.{a.name}')}, "
        for a in attrs.fields(cls)
    )
    source = f"def dump_attrs(v):\n    return {{{entries}}}\n"
    namespace: dict[str, Any] = {"dump": dump, "_datetime": _datetime}
    exec(compile(source, f"<flow8 dumper for {cls.__qualname__}>", "exec"), namespace)
    dumper: Dumper = namespace["dump_attrs"]
    return dumper


def _render(tp: Any, expr: str) -> str:
    """The expression rendering `expr`, a value declared as `tp`."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    optional = len(args) < len(typing.get_args(tp))
    inner = args[0] if optional and len(args) == 1 else tp
    if isinstance(inner, type) and issubclass(inner, str | int | float | bool):
        return expr  # JSON writes it as it is (StrEnum and IntEnum members included)
    if tp is JsonData:
        # Data a user gave (a play's input and output, a layer's arguments, a KV value) is
        # JSON already: handed to the encoder as it is, not walked here item by item (a
        # 300,000-item input took 50 ms of the event loop per answer).
        return expr
    if inner is datetime:
        if optional:
            return f"(None if {expr} is None else _datetime({expr}))"
        return f"_datetime({expr})"
    return f"dump({expr})"
