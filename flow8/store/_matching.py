"""Filters, sorts, unique keys and TTL evaluated in Python, with the sqlite compiler's semantics.

The memory backend answers queries by walking its documents with these functions, so each one
mirrors what ``_sqlcompile`` makes SQLite do (see that module for the why of each rule):

* a condition on a path matches the value there or, when it is an array, one of its elements;
  a dotted path also reaches one level into arrays of sub-documents, for value conditions only;
* paths the catalog keeps array-free (``CollectionSpec.scalar_fields``) match the value there
  only, as the sqlite compiler's index-friendly branch does;
* comparisons stay within MongoDB's type brackets; ``$ne``/``$nin`` negate the whole positive
  match; null equality matches null and missing;
* sorting orders by (type rank, value) per key, ties kept in insertion order; objects and
  arrays order by their JSON text, as SQLite compares what ``json_extract`` returns.

Where SQLite compares the JSON text of objects and arrays for equality, this follows MongoDB
(the contract suite's oracle) instead: ``[2]`` equals ``[2.0]``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ._catalog import CollectionSpec, IndexSpec
from ._filters import And, Cond, Node, get_path
from ._updates import values_equal
from ._values import dumps, ttl_cutoff

# MongoDB's sort order of types, as ``_sqlcompile.rank_expr`` ranks them.
NULL, NUMBER, STRING, OBJECT, ARRAY, BOOLEAN, DATE = 1, 2, 3, 4, 5, 8, 9


def rank(value: Any) -> int:
    """The type bracket of a value (missing counts as null)."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, datetime):
        return DATE
    return ARRAY if isinstance(value, list) else OBJECT


def _equal(found: bool, value: Any, operand: Any) -> bool:
    if operand is None:
        return not found or value is None
    return found and values_equal(value, operand)


def _compare(value: Any, op: str, operand: Any) -> bool:
    """``$gt``-like comparisons: only within one type bracket (never objects or arrays)."""
    if rank(value) != rank(operand) or isinstance(value, dict | list):
        return False
    if op == "gt":
        return bool(value > operand)
    if op == "gte":
        return bool(value >= operand)
    if op == "lt":
        return bool(value < operand)
    return bool(value <= operand)


def _positive(found: bool, value: Any, op: str, operand: Any) -> bool:
    """``eq``, ``in`` or a comparison against one value source (a path, or an element)."""
    if op == "eq":
        return _equal(found, value, operand)
    if op == "in":
        return any(_equal(found, value, v) for v in operand)
    return found and _compare(value, op, operand)


def _matches(doc: Mapping[str, Any], path: str, op: str, operand: Any, scalar: bool) -> bool:
    found, value = get_path(doc, path)
    if _positive(found, value, op, operand):
        return True
    if scalar:
        return False
    if isinstance(value, list) and any(_positive(True, e, op, operand) for e in value):
        return True
    return _through_arrays(doc, path, op, operand)


def _through_arrays(doc: Mapping[str, Any], path: str, op: str, operand: Any) -> bool:
    """``{"items.sku": "x"}`` matches ``items: [{"sku": "x"}]``: one array level, at any split
    of the path; null equality and ``$exists`` never come here (they see the plain path)."""
    parts = path.split(".")
    if len(parts) < 2 or (op == "eq" and operand is None):
        return False
    if op == "in":
        operand = [v for v in operand if v is not None]
        if not operand:
            return False
    for i in range(1, len(parts)):
        _, array = get_path(doc, ".".join(parts[:i]))
        if not isinstance(array, list):
            continue
        rest = ".".join(parts[i:])
        for element in array:
            if not isinstance(element, dict):
                continue
            found, value = get_path(element, rest)
            if _positive(found, value, op, operand):
                return True
            if isinstance(value, list) and any(_positive(True, e, op, operand) for e in value):
                return True
    return False


def _cond(doc: Mapping[str, Any], cond: Cond, scalars: frozenset[str]) -> bool:
    if cond.op == "exists":
        return get_path(doc, cond.path)[0] is cond.value  # the operand is a bool
    scalar = cond.path in scalars
    if cond.op == "ne":
        return not _matches(doc, cond.path, "eq", cond.value, scalar)
    if cond.op == "nin":
        return not _matches(doc, cond.path, "in", cond.value, scalar)
    return _matches(doc, cond.path, cond.op, cond.value, scalar)


def matches(spec: CollectionSpec, doc: Mapping[str, Any], node: Node) -> bool:
    """Whether ``doc`` meets the parsed filter ``node``."""
    if isinstance(node, Cond):
        return _cond(doc, node, spec.scalar_fields)
    if isinstance(node, And):
        return all(matches(spec, doc, item) for item in node.items)
    return any(matches(spec, doc, item) for item in node.items)


def pinned_id(node: Node) -> str | None:
    """The ``_id`` a filter pins to one string in a condition every match must meet (as
    ``_sqlite.is_point_read`` recognises it): such a query is a dict lookup."""
    if isinstance(node, Cond):
        if node.path == "_id" and node.op == "eq" and isinstance(node.value, str):
            return node.value
        return None
    if isinstance(node, And):
        for item in node.items:
            found = pinned_id(item)
            if found is not None:
                return found
    return None


# -- TTL ---------------------------------------------------------------------------------------


def expiry_cutoff(spec: CollectionSpec, now: datetime) -> datetime | None:
    """Documents whose TTL field holds a date before this are expired (None: no TTL)."""
    ttl = spec.ttl
    if ttl is None:
        return None
    return ttl_cutoff(now, ttl.expire_after_seconds or 0)


def expired(spec: CollectionSpec, doc: Mapping[str, Any], cutoff: datetime | None) -> bool:
    """Only a date expires a document: null, missing or any other type never does."""
    if cutoff is None:
        return False
    assert spec.ttl is not None
    value = get_path(doc, spec.ttl.fields[0])[1]
    return isinstance(value, datetime) and value < cutoff


# -- sorting and unique keys -------------------------------------------------------------------


def _ordered(value: Any) -> tuple[int, Any]:
    """(rank, value) such that values of one rank compare among themselves."""
    r = rank(value)
    if r == NULL:
        return (NULL, 0)
    if r in (OBJECT, ARRAY):
        return (r, dumps(value))
    return (r, value)


def sort_key(doc: Mapping[str, Any], path: str) -> tuple[int, Any]:
    return _ordered(get_path(doc, path)[1])


def sort_documents(
    docs: list[dict[str, Any]], sort: list[tuple[str, int]] | tuple[tuple[str, int], ...]
) -> list[dict[str, Any]]:
    """Sorted by every key in turn; ties keep the order given (insertion order). Python's sort
    is stable, also in reverse, so sorting by the last key first composes the keys."""
    out = list(docs)
    for path, direction in reversed(sort):
        out.sort(key=functools.partial(sort_key, path=path), reverse=direction == -1)
    return out


def unique_key(doc: Mapping[str, Any], index: IndexSpec) -> tuple[Any, ...] | None:
    """The entry ``doc`` makes in a unique index, or None when a field is missing or null:
    SQLite's unique indexes never see two NULLs as equal, so such documents never collide.
    Numbers of equal value collide (``1`` and ``1.0``), values of different types never."""
    key = []
    for path in index.fields:
        found, value = get_path(doc, path)
        if not found or value is None:
            return None
        key.append(_ordered(value))
    return tuple(key)
