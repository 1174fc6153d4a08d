"""Filter, sort and projection documents: validated once, then handed to a backend.

``parse_filter`` turns a filter into a small tree (And / Or / Cond) that the sqlite compiler
walks; the MongoDB backend sends the normalised filter document itself. Both therefore accept
and refuse exactly the same input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from ._values import check_key, normalize_value
from .exceptions import InvalidDocument, InvalidQuery

COMPARISONS = frozenset({"$gt", "$gte", "$lt", "$lte"})
OPERATORS = COMPARISONS | {"$eq", "$ne", "$in", "$nin", "$exists"}


@attrs.frozen
class Cond:
    path: str
    op: str  # one of OPERATORS without the '$'
    value: Any


@attrs.frozen
class And:
    items: tuple[Node, ...]


@attrs.frozen
class Or:
    items: tuple[Node, ...]


Node = Cond | And | Or


def check_path(path: object, what: str = "field path") -> str:
    if not isinstance(path, str) or not path:
        raise InvalidQuery(f"{what} must be a non-empty string, got {path!r}")
    for part in path.split("."):
        if not part:
            raise InvalidQuery(f"{what} {path!r} has an empty segment")
        if part.startswith("$"):
            raise InvalidQuery(f"{what} {path!r}: unknown operator or '$' field {part!r}")
        if '"' in part or "\x00" in part:
            raise InvalidQuery(f"{what} {path!r} contains an unsupported character")
    return path


def _value(value: Any, where: str) -> Any:
    try:
        return normalize_value(value, where)
    except InvalidDocument as e:
        raise InvalidQuery(str(e)) from e


def _comparable(value: Any, op: str, path: str) -> Any:
    if isinstance(value, bool | int | float | str | datetime) and value is not None:
        return _value(value, path)
    raise InvalidQuery(
        f"{op} on {path!r}: operand must be a number, string, boolean or datetime, "
        f"got {type(value).__name__}"
    )


def _field(path: str, spec: Any) -> tuple[Any, Node]:
    """Return (normalised spec, node) for one ``path: spec`` entry."""
    if isinstance(spec, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in spec):
        if not spec:
            raise InvalidQuery(f"empty operator document for {path!r}")
        out: dict[str, Any] = {}
        conds: list[Node] = []
        for op, arg in spec.items():
            if op not in OPERATORS:
                raise InvalidQuery(f"unknown or unsupported operator {op!r} on {path!r}")
            if op in COMPARISONS:
                val = _comparable(arg, op, path)
            elif op in ("$in", "$nin"):
                if not isinstance(arg, list | tuple):
                    raise InvalidQuery(f"{op} on {path!r} needs an array")
                val = [_value(v, path) for v in arg]
            elif op == "$exists":
                if not isinstance(arg, bool):
                    raise InvalidQuery(f"$exists on {path!r} needs true or false")
                val = arg
            else:
                val = _value(arg, path)
            out[op] = val
            conds.append(Cond(path, op[1:], val))
        return out, conds[0] if len(conds) == 1 else And(tuple(conds))
    if isinstance(spec, Mapping):
        for k in spec:
            try:
                check_key(k, path)
            except InvalidDocument as e:
                raise InvalidQuery(str(e)) from e
    val = _value(spec, path)
    return val, Cond(path, "eq", val)


def parse_filter(filter: Mapping[str, Any] | None) -> tuple[dict[str, Any], Node]:
    """Validate ``filter``; return (normalised filter document, tree)."""
    if filter is None:
        return {}, And(())
    if type(filter) is dict and len(filter) == 1:
        # By far the commonest filter, a read by id: what the general walk below would make.
        doc_id = filter.get("_id")
        if type(doc_id) is str:
            return {"_id": doc_id}, Cond("_id", "eq", doc_id)
    if not isinstance(filter, Mapping):
        raise InvalidQuery(f"a filter must be a document, got {type(filter).__name__}")
    out: dict[str, Any] = {}
    nodes: list[Node] = []
    for key, spec in filter.items():
        if key in ("$and", "$or"):
            if not isinstance(spec, list | tuple) or not spec:
                raise InvalidQuery(f"{key} needs a non-empty array of filters")
            subs = [parse_filter(s) if isinstance(s, Mapping) else _bad(key) for s in spec]
            out[key] = [d for d, _ in subs]
            kids = tuple(n for _, n in subs)
            nodes.append(And(kids) if key == "$and" else Or(kids))
        elif isinstance(key, str) and key.startswith("$"):
            raise InvalidQuery(f"unknown or unsupported top-level operator {key!r}")
        else:
            path = check_path(key)
            out[path], node = _field(path, spec)
            nodes.append(node)
    return out, nodes[0] if len(nodes) == 1 else And(tuple(nodes))


def _bad(key: str) -> Any:
    raise InvalidQuery(f"{key} entries must be filter documents")


def filter_paths(node: Node) -> set[str]:
    if isinstance(node, Cond):
        return {node.path}
    out: set[str] = set()
    for n in node.items:
        out |= filter_paths(n)
    return out


def equality_seed(node: Node) -> dict[str, Any]:
    """Fields an upsert copies from its filter: top-level (or $and-ed) equalities."""
    out: dict[str, Any] = {}
    if isinstance(node, Cond):
        if node.op == "eq":
            out[node.path] = node.value
    elif isinstance(node, And):
        for n in node.items:
            out.update(equality_seed(n))
    return out


def parse_sort(sort: Sequence[tuple[str, int]] | None) -> list[tuple[str, int]]:
    if sort is None:
        return []
    if isinstance(sort, str | bytes | Mapping) or not isinstance(sort, Sequence):
        raise InvalidQuery("sort must be a list of (field, 1 | -1) pairs")
    out: list[tuple[str, int]] = []
    for item in sort:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise InvalidQuery(f"sort entry {item!r} is not a (field, direction) pair")
        path, direction = item
        check_path(path, "sort field")
        if direction not in (1, -1) or isinstance(direction, bool):
            raise InvalidQuery(f"sort direction for {path!r} must be 1 or -1")
        out.append((path, int(direction)))
    return out


def parse_projection(projection: Mapping[str, Any] | None) -> dict[str, bool] | None:
    if projection is None:
        return None
    if not isinstance(projection, Mapping):
        raise InvalidQuery("projection must be a document of field: 0 | 1")
    out: dict[str, bool] = {}
    for path, flag in projection.items():
        check_path(path, "projection field")
        if flag not in (0, 1):
            raise InvalidQuery(f"projection for {path!r} must be 0/1 or true/false")
        out[path] = bool(flag)
    modes = {v for k, v in out.items() if k != "_id"}
    if len(modes) > 1:
        raise InvalidQuery("projection cannot mix inclusion and exclusion (except for _id)")
    return out


def _get(doc: Mapping[str, Any], parts: list[str]) -> tuple[bool, Any]:
    cur: Any = doc
    for p in parts:
        if not isinstance(cur, Mapping) or p not in cur:
            return False, None
        cur = cur[p]
    return True, cur


def get_path(doc: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    return _get(doc, path.split("."))


def project(doc: dict[str, Any], projection: dict[str, bool] | None) -> dict[str, Any]:
    if not projection:
        return doc
    include = any(v for k, v in projection.items() if k != "_id")
    if include:
        out: dict[str, Any] = {}
        if projection.get("_id", True) and "_id" in doc:
            out["_id"] = doc["_id"]
        for path, flag in projection.items():
            if path == "_id" or not flag:
                continue
            parts = path.split(".")
            found, value = _get(doc, parts)
            if not found:
                continue
            target = out
            for p in parts[:-1]:
                target = target.setdefault(p, {})
            target[parts[-1]] = value
        return out
    out = _deepcopy_dicts(doc)
    for path, flag in projection.items():
        if flag:
            continue
        parts = path.split(".")
        found, _ = _get(out, parts)
        if found:
            parent = _get(out, parts[:-1])[1] if len(parts) > 1 else out
            del parent[parts[-1]]
    return out


def _deepcopy_dicts(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deepcopy_dicts(v) for k, v in value.items()}
    return value
