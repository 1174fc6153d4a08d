"""Mapping domain models to and from their two boundaries.

* storage: snake_case documents (the attribute names), through :data:`storage`;
* API / flow files: camelCase, through :data:`api` for output and
  :func:`parse_flow_definition` for input (hand-written so that every structural problem
  is reported at once, with its path).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from . import _limits as limits
from ._flow import (
    COMPONENT_KINDS,
    Cast,
    ExecutionSettings,
    FilterMode,
    FilterOperator,
    FilterSpec,
    FlowDefinition,
    Flowlet,
    KvConflict,
    RetryPolicy,
)
from .exceptions import FlowValidationError, Problem


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


storage = cattrs.Converter()
"""snake_case documents for the store (attribute names as they are)."""

api = cattrs.Converter()
"""camelCase dictionaries for the REST API, WebSocket events and flow files."""


def _is_attrs(cls: Any) -> bool:
    return attrs.has(cls)


def _enum_value(e: enum.Enum) -> Any:
    return e.value


def _is_enum(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, enum.Enum)


for _conv in (storage, api):
    # Plain values, so documents and JSON never carry enum instances.
    _conv.register_unstructure_hook_factory(_is_enum, lambda _cls: _enum_value)
    # StrEnum is also a str, whose identity hook would otherwise win in dispatch order.
    _conv.register_unstructure_hook(enum.StrEnum, _enum_value)


def _renames(cls: Any) -> dict[str, Any]:
    return {a.name: override(rename=_camel(a.name)) for a in attrs.fields(cls)}


api.register_unstructure_hook_factory(
    _is_attrs, lambda cls: make_dict_unstructure_fn(cls, api, **_renames(cls))
)
api.register_structure_hook_factory(
    _is_attrs, lambda cls: make_dict_structure_fn(cls, api, **_renames(cls))
)


def flow_definition_to_api(definition: FlowDefinition) -> dict[str, Any]:
    """The camelCase form of a flow definition (what a flow file contains)."""
    out: dict[str, Any] = api.unstructure(definition)
    return out


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))


def _number(c: _Collector, data: Mapping[str, Any], key: str, path: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        c.add(f"{path}.{key}", "must be a number")
        return None
    if value < 0:
        c.add(f"{path}.{key}", "must not be negative")
        return None
    return float(value)


def _int(c: _Collector, data: Mapping[str, Any], key: str, path: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        c.add(f"{path}.{key}", "must be an integer")
        return default
    if value < 0:
        c.add(f"{path}.{key}", "must not be negative")
        return default
    return value


def _bool(c: _Collector, data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        c.add(f"{path}.{key}", "must be true or false")
        return default
    return value


def _enum(c: _Collector, cls: Any, value: Any, path: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        c.add(path, f"{value!r} is not one of {allowed}")
        return None


def _at_most(c: _Collector, value: int, limit: int, path: str, what: str = "") -> int:
    if value > limit:
        c.add(path, f"must be at most {limit}{what}")
        return limit
    return value


def _retry(c: _Collector, data: Any, path: str) -> RetryPolicy:
    if data is None:
        return RetryPolicy()
    if not isinstance(data, Mapping):
        c.add(path, "must be an object")
        return RetryPolicy()
    mult = _number(c, data, "backoffMultiplier", path)
    if mult is not None and not 1 <= mult <= limits.MAX_BACKOFF_MULTIPLIER:
        c.add(
            f"{path}.backoffMultiplier", f"must be between 1 and {limits.MAX_BACKOFF_MULTIPLIER:g}"
        )
        mult = None
    count = _at_most(c, _int(c, data, "count", path, 0), limits.MAX_RETRY_COUNT, f"{path}.count")
    delay = _int(c, data, "delayMs", path, 1000)
    max_delay = _int(c, data, "maxDelayMs", path, 300_000)
    hour = " (one hour)"
    return RetryPolicy(
        count=count,
        delay_ms=_at_most(c, delay, limits.MAX_RETRY_DELAY_MS, f"{path}.delayMs", hour),
        backoff_multiplier=2.0 if mult is None else mult,
        jitter=_bool(c, data, "jitter", path, False),
        max_delay_ms=_at_most(c, max_delay, limits.MAX_RETRY_DELAY_MS, f"{path}.maxDelayMs", hour),
    )


def _text(
    c: _Collector, data: Mapping[str, Any], key: str, path: str, limit: int, default: str = ""
) -> str:
    """An optional string field of at most ``limit`` characters."""
    value = data.get(key, default)
    if value is None:
        return default
    where = f"{path}.{key}" if path else key
    if not isinstance(value, str):
        c.add(where, "must be a string")
        return default
    if len(value) > limit:
        c.add(where, f"must be at most {limit} characters")
        return value[:limit]
    return value


def _filter(c: _Collector, data: Any, path: str) -> FilterSpec | None:
    if not isinstance(data, Mapping):
        c.add(path, "must be an object")
        return None
    op = _enum(c, FilterOperator, data.get("operator"), f"{path}.operator")
    cast = None
    if data.get("cast") is not None:
        cast = _enum(c, Cast, data.get("cast"), f"{path}.cast")
    mode = _enum(c, FilterMode, data.get("mode", "and"), f"{path}.mode")
    if op is None or mode is None:
        return None
    return FilterSpec(
        left_value=data.get("leftValue"),
        operator=op,
        right_value=data.get("rightValue"),
        cast=cast,
        mode=mode,
    )


def _component_config_ids(c: _Collector, data: Any, path: str) -> dict[str, str]:
    """Component kind -> config id. Kinds are a closed set, so a typo (``"reqest"``) is
    refused when the flow is saved instead of being silently ignored when it runs."""
    if not data:  # absent, null or empty: the step names no config
        return {}
    if not isinstance(data, Mapping):
        c.add(path, "must be an object mapping component kinds to config ids")
        return {}
    if len(data) > limits.MAX_COMPONENT_CHOICES:
        # One problem, not one per entry: the list of problems stays small.
        c.add(path, f"must name at most {limits.MAX_COMPONENT_CHOICES} component kinds")
        return {}
    kinds = ", ".join(COMPONENT_KINDS)
    out: dict[str, str] = {}
    for kind, config_id in data.items():
        if kind not in COMPONENT_KINDS:
            # The path stays ``componentConfigIds``: an unknown key may be any length.
            c.add(path, f"{kind!r:.60} is not a component kind (one of {kinds})")
            continue
        where = f"{path}.{kind}"
        if not isinstance(config_id, str):
            c.add(where, "must be a string (the id of a component config)")
        elif not config_id.strip():
            c.add(where, "must not be empty")
        elif len(config_id) > limits.MAX_NAME_LENGTH:
            c.add(where, f"must be at most {limits.MAX_NAME_LENGTH} characters")
        else:
            out[kind] = config_id
    return out


def _flowlet(c: _Collector, data: Any, path: str) -> Flowlet | None:
    if not isinstance(data, Mapping):
        c.add(path, "must be an object")
        return None
    ok = True
    ref = data.get("ref")
    if not isinstance(ref, str) or not ref:
        c.add(f"{path}.ref", "is missing")
        ok = False
    elif len(ref) > limits.MAX_REF_LENGTH:
        c.add(f"{path}.ref", f"must be at most {limits.MAX_REF_LENGTH} characters")
        ok = False
    elif not ref.replace("_", "a").replace("-", "a").isalnum():
        c.add(f"{path}.ref", f"{ref!r} may contain only letters, digits, '_' and '-'")
        ok = False
    elif ref == "args":
        c.add(f"{path}.ref", "'args' is reserved for the play input ($prev.args)")
        ok = False
    app_id = data.get("appId")
    if not isinstance(app_id, str) or not app_id:
        c.add(f"{path}.appId", "is missing")
        ok = False
    default_name = ref if ok and isinstance(ref, str) else ""  # a bad ref is reported once
    name = _text(c, data, "name", path, limits.MAX_NAME_LENGTH, default_name)
    index = data.get("index")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
        c.add(f"{path}.index", "must be an integer")
        index = None
    args = data.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        c.add(f"{path}.args", "must be an object")
        args = {}
    filters_raw = data.get("filters") or []
    filters: list[FilterSpec] = []
    if not isinstance(filters_raw, list):
        c.add(f"{path}.filters", "must be a list")
    elif len(filters_raw) > limits.MAX_FILTERS:
        c.add(f"{path}.filters", f"must have at most {limits.MAX_FILTERS} filters")
    else:
        for i, f in enumerate(filters_raw):
            spec = _filter(c, f, f"{path}.filters[{i}]")
            if spec is not None:
                filters.append(spec)
    cci = _component_config_ids(c, data.get("componentConfigIds"), f"{path}.componentConfigIds")
    timeout = _number(c, data, "timeout", path)
    if timeout == 0:
        c.add(f"{path}.timeout", "must be positive")
    if not ok:
        return None
    assert isinstance(ref, str)
    assert isinstance(app_id, str)
    return Flowlet(
        ref=ref,
        app_id=app_id,
        name=name,
        index=index,
        args=dict(args),
        timeout=timeout or None,
        retry=_retry(c, data.get("retry"), f"{path}.retry"),
        filters=tuple(filters),
        needs_approval=_bool(c, data, "needsApproval", path, False),
        component_config_ids=dict(cci),
    )


def parse_flow_definition(data: Any) -> FlowDefinition:
    """Build a :class:`FlowDefinition` from its camelCase JSON form.

    Raises :class:`FlowValidationError` listing every structural problem. Semantic checks
    (known modules, argument schemas, expressions, reference order) are the engine's
    ``validate_flow``.
    """
    c = _Collector()
    if not isinstance(data, Mapping):
        raise FlowValidationError([Problem("", "a flow must be a JSON object")])
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        c.add("name", "is missing")
        name = ""
    elif len(name) > limits.MAX_NAME_LENGTH:
        c.add("name", f"must be at most {limits.MAX_NAME_LENGTH} characters")
    description = _text(c, data, "description", "", limits.MAX_DESCRIPTION_LENGTH)
    input_schema = data.get("inputSchema")
    if input_schema is not None and not isinstance(input_schema, Mapping):
        c.add("inputSchema", "must be a JSON Schema object")
        input_schema = None
    execution_raw = data.get("execution") or {}
    if not isinstance(execution_raw, Mapping):
        c.add("execution", "must be an object")
        execution_raw = {}
    timeout_s = _number(c, execution_raw, "timeoutSeconds", "execution")
    execution = ExecutionSettings(
        timeout_seconds=timeout_s or None,
        max_concurrent=_int(c, execution_raw, "maxConcurrent", "execution", 0),
    )
    kv_conflict = _enum(c, KvConflict, data.get("kvConflict", "child"), "kvConflict")
    group = _text(c, data, "group", "", limits.MAX_NAME_LENGTH) or None
    flowlets_raw = data.get("flowlets")
    flowlets: list[Flowlet] = []
    if not isinstance(flowlets_raw, list):
        c.add("flowlets", "must be a list")
    elif len(flowlets_raw) > limits.MAX_FLOWLETS:
        c.add("flowlets", f"must have at most {limits.MAX_FLOWLETS} flowlets")
    else:
        for i, raw in enumerate(flowlets_raw):
            fl = _flowlet(c, raw, f"flowlets[{i}]")
            if fl is not None:
                flowlets.append(fl)
    if c.problems:
        raise FlowValidationError(c.problems)
    return FlowDefinition(
        name=name,
        flowlets=tuple(flowlets),
        description=description,
        input_schema=dict(input_schema) if input_schema is not None else None,
        execution=execution,
        kv_inherit=_bool(c, data, "kvInherit", "", True),
        kv_conflict=kv_conflict or KvConflict.CHILD,
        group=group,
    )
