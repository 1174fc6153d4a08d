"""Update documents: validation shared by both backends, and MongoDB semantics in Python.

The sqlite backend applies updates here, inside its writer transaction; the MongoDB backend
sends the validated document to the server. ``apply_update`` mirrors MongoDB's rules for the
supported operators, including which failures are errors rather than silent no-ops.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._filters import check_path
from ._values import INT64_MAX, INT64_MIN, normalize_value
from .exceptions import InvalidDocument, InvalidQuery, UpdateFailed

UPDATE_OPERATORS = (
    "$set",
    "$unset",
    "$inc",
    "$push",
    "$addToSet",
    "$pull",
    "$setOnInsert",
)
_PULL_OPS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"})


@attrs.frozen
class ParsedUpdate:
    doc: dict[str, dict[str, Any]]  # normalised update document

    def paths(self) -> dict[str, str]:
        """path -> operator, for every path the update touches."""
        return {p: op for op, fields in self.doc.items() for p in fields}


def _norm(value: Any, where: str) -> Any:
    try:
        return normalize_value(value, where)
    except InvalidDocument as e:
        raise InvalidQuery(str(e)) from e


def _each(op: str, path: str, arg: Any) -> Any:
    if isinstance(arg, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in arg):
        if set(arg) != {"$each"}:
            raise InvalidQuery(f"{op} on {path!r}: only the $each modifier is supported")
        if not isinstance(arg["$each"], list | tuple):
            raise InvalidQuery(f"{op} on {path!r}: $each needs an array")
        return {"$each": [_norm(v, path) for v in arg["$each"]]}
    return _norm(arg, path)


def _pull_cond(path: str, arg: Any) -> Any:
    if isinstance(arg, Mapping):
        keys = list(arg)
        if keys and all(isinstance(k, str) and k.startswith("$") for k in keys):
            out: dict[str, Any] = {}
            for k, v in arg.items():
                if k not in _PULL_OPS:
                    raise InvalidQuery(f"$pull on {path!r}: unsupported operator {k!r}")
                if k in ("$in", "$nin"):
                    if not isinstance(v, list | tuple):
                        raise InvalidQuery(f"$pull on {path!r}: {k} needs an array")
                    out[k] = [_norm(x, path) for x in v]
                else:
                    out[k] = _norm(v, path)
            return out
        raise InvalidQuery(
            f"$pull on {path!r}: matching sub-documents by query is not supported; "
            "pull by value or with $eq/$ne/$gt/$gte/$lt/$lte/$in/$nin"
        )
    return _norm(arg, path)


def parse_update(update: Mapping[str, Any]) -> ParsedUpdate:
    if not isinstance(update, Mapping) or not update:
        raise InvalidQuery("an update must be a non-empty document of update operators")
    out: dict[str, dict[str, Any]] = {}
    seen: list[str] = []
    for op, fields in update.items():
        if op not in UPDATE_OPERATORS:
            if isinstance(op, str) and not op.startswith("$"):
                raise InvalidQuery(
                    f"update field {op!r} is not an operator; replacement updates are not "
                    "supported, use $set"
                )
            raise InvalidQuery(f"unknown or unsupported update operator {op!r}")
        if not isinstance(fields, Mapping) or not fields:
            raise InvalidQuery(f"{op} needs a non-empty document of field: value")
        norm: dict[str, Any] = {}
        for path, arg in fields.items():
            check_path(path, f"{op} field")
            if (path == "_id" or path.startswith("_id.")) and op != "$setOnInsert":
                raise UpdateFailed("the _id field is immutable")
            for other in seen:
                if other == path or other.startswith(path + ".") or path.startswith(other + "."):
                    raise InvalidQuery(f"update paths {other!r} and {path!r} conflict")
            seen.append(path)
            if op == "$inc":
                if isinstance(arg, bool) or not isinstance(arg, int | float):
                    raise InvalidQuery(f"$inc on {path!r} needs a number")
                norm[path] = _norm(arg, path)
            elif op in ("$push", "$addToSet"):
                norm[path] = _each(op, path, arg)
            elif op == "$pull":
                norm[path] = _pull_cond(path, arg)
            elif op == "$unset":
                norm[path] = ""
            else:
                norm[path] = _norm(arg, path)
        out[op] = norm
    return ParsedUpdate(out)


# -- MongoDB value equality and ordering of scalars --------------------------------------------


def _bracket(v: Any) -> int:
    if v is None:
        return 1
    if isinstance(v, bool):
        return 8
    if isinstance(v, int | float):
        return 2
    if isinstance(v, str):
        return 3
    if isinstance(v, dict):
        return 4
    if isinstance(v, list):
        return 5
    if isinstance(v, datetime):
        return 9
    return 99


def values_equal(a: Any, b: Any) -> bool:
    if _bracket(a) != _bracket(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _compare(a: Any, op: str, b: Any) -> bool:
    if op == "$eq":
        return values_equal(a, b)
    if op == "$ne":
        return not values_equal(a, b)
    if op == "$in":
        return any(values_equal(a, x) for x in b)
    if op == "$nin":
        return not any(values_equal(a, x) for x in b)
    if _bracket(a) != _bracket(b) or isinstance(a, dict | list):
        return False
    if op == "$gt":
        return bool(a > b)
    if op == "$gte":
        return bool(a >= b)
    if op == "$lt":
        return bool(a < b)
    return bool(a <= b)


def _pull_matches(element: Any, cond: Any) -> bool:
    if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
        return all(_compare(element, op, arg) for op, arg in cond.items())
    return values_equal(element, cond)


# -- applying an update to a document ---------------------------------------------------------


def _parent(doc: dict[str, Any], path: str, create: bool) -> tuple[dict[str, Any] | None, str]:
    parts = path.split(".")
    cur: Any = doc
    for i, p in enumerate(parts[:-1]):
        if not isinstance(cur, dict):
            raise UpdateFailed(f"cannot use the part {parts[i]!r} of {path!r}: not a document")
        if p not in cur:
            if not create:
                return None, parts[-1]
            cur[p] = {}
        cur = cur[p]
    if not isinstance(cur, dict):
        if create:
            raise UpdateFailed(f"cannot create field {parts[-1]!r} of {path!r}: not a document")
        return None, parts[-1]
    return cur, parts[-1]


def _items(arg: Any) -> list[Any]:
    if isinstance(arg, dict) and set(arg) == {"$each"}:
        return list(arg["$each"])
    return [arg]


def apply_update(
    doc: dict[str, Any], update: ParsedUpdate, *, inserting: bool
) -> tuple[dict[str, Any], bool]:
    """Return (new document, whether it changed); ``doc`` is left untouched.

    This runs in the sqlite writer thread while it holds the GIL, once per updated document,
    so it copies with `_clone` rather than `copy.deepcopy` (~2 us against ~9 for a play) and
    compares only the top-level fields the update names: the others are copies of the same
    values (~1 us against ~10 for comparing whole documents).
    """
    new = _clone(doc)
    touched: set[str] = set()
    for op, fields in update.doc.items():
        if op == "$setOnInsert" and not inserting:
            continue
        for path, arg in fields.items():
            touched.add(path.split(".", 1)[0])
            if op in ("$set", "$setOnInsert"):
                parent, key = _parent(new, path, create=True)
                assert parent is not None
                parent[key] = _clone(arg)
            elif op == "$unset":
                parent, key = _parent(new, path, create=False)
                if parent is not None:
                    parent.pop(key, None)
            elif op == "$inc":
                parent, key = _parent(new, path, create=True)
                assert parent is not None
                cur = parent.get(key, 0)
                if isinstance(cur, bool) or not isinstance(cur, int | float):
                    raise UpdateFailed(f"$inc on {path!r}: the stored value is not a number")
                total = cur + arg
                if isinstance(total, int) and not INT64_MIN <= total <= INT64_MAX:
                    raise UpdateFailed(f"$inc on {path!r} overflows a 64-bit integer")
                parent[key] = total
            elif op in ("$push", "$addToSet"):
                parent, key = _parent(new, path, create=True)
                assert parent is not None
                cur = parent.setdefault(key, [])
                if not isinstance(cur, list):
                    raise UpdateFailed(f"{op} on {path!r}: the stored value is not an array")
                for item in _items(arg):
                    if op == "$push" or not any(values_equal(item, x) for x in cur):
                        cur.append(_clone(item))
            elif op == "$pull":
                parent, key = _parent(new, path, create=False)
                if parent is None or key not in parent:
                    continue
                cur = parent[key]
                if not isinstance(cur, list):
                    raise UpdateFailed(f"$pull on {path!r}: the stored value is not an array")
                parent[key] = [x for x in cur if not _pull_matches(x, arg)]
    return new, any(_differs(new, doc, field) for field in touched)


def _differs(new: dict[str, Any], old: dict[str, Any], field: str) -> bool:
    if (field in new) != (field in old):
        return True
    return field in new and not values_equal(new[field], old[field])


_ATOMS = frozenset({str, int, float, bool, type(None), datetime})


def _clone(value: Any) -> Any:
    """A deep copy of a document's value: dicts and lists rebuilt, immutable atoms shared."""
    kind = type(value)
    if kind is dict:
        return {k: _clone(v) for k, v in value.items()}
    if kind is list:
        return [_clone(v) for v in value]
    if kind in _ATOMS:
        return value
    # A value prepared ahead of storing (a play's output: `prepare_value`) is a dict or list
    # subclass: rebuilt the same way, not by `copy.deepcopy` (about ten times slower).
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return copy.deepcopy(value)


def seed_document(seed: Mapping[str, Any]) -> dict[str, Any]:
    """Build the base document of an upsert from its filter's equality fields."""
    doc: dict[str, Any] = {}
    for path, value in seed.items():
        parent, key = _parent(doc, path, create=True)
        assert parent is not None
        parent[key] = copy.deepcopy(value)
    return doc
