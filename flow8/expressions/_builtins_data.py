"""Array and object built-ins, bounded: arrays a built-in builds stop at ``MAX_ITEMS``,
reductions over long input arrays run ``ITEM_CHUNK`` items per C-level call, and the
library's super-linear ones are replaced by linear versions with the same results:

* ``$distinct`` compared every item with every kept one (``el not in results``):
  quadratic. Here items are bucketed by a structural hash consistent with Python's ``==``
  (which the library's ``in`` uses), and compared with ``==`` only within a bucket.
* ``$spread`` (of an array) and ``$keys`` (of nested arrays) copied their result once per
  item (``Functions.append``): quadratic. Here the result grows in place; where the
  library's copy reset the sequence flags (which decide whether a one-item result is
  unwrapped) the flags are reset the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from jsonata.functions import Functions
from jsonata.utils import Utils

from . import _walks as walks
from ._budget import ITEM_BYTES, Budget, current
from ._jsontext import clone
from ._limits import ITEM_CHUNK, MAX_ITEMS

_TICK = 256
_JList = Utils.JList


def _chunks(items: Any, budget: Budget) -> Any:
    for start in range(0, len(items), ITEM_CHUNK):
        if start:
            budget.tick()
        yield items[start : start + ITEM_CHUNK]


def sum_(args: Any = None) -> Any:
    if not isinstance(args, list) or len(args) <= ITEM_CHUNK:
        return Functions.sum(args)
    # sum(piece, total) continues the left-to-right sum exactly where it stopped.
    total: Any = 0
    for piece in _chunks(args, current()):
        total = sum(piece, total)
    return total


def _fold(library: Callable[[Any], Any], pick: Callable[..., Any]) -> Callable[[Any], Any]:
    def run(args: Any = None) -> Any:
        if not isinstance(args, list) or len(args) <= ITEM_CHUNK:
            return library(args)
        best: Any = None
        for piece in _chunks(args, current()):
            # pick(chain([best], piece)) continues the same left-to-right comparison.
            best = pick(piece) if best is None else pick(itertools.chain((best,), piece))
        return best

    return run


max_ = _fold(Functions.max, max)
min_ = _fold(Functions.min, min)


def average(args: Any = None) -> Any:
    if not isinstance(args, list) or len(args) <= ITEM_CHUNK:
        return Functions.average(args)
    return sum_(args) / len(args)


def to_boolean(arg: Any = None) -> Any:
    return walks.to_boolean(arg, walks.Walk(current()))


def not_(arg: Any = None) -> Any:
    if arg is None:
        return None
    return not walks.to_boolean(arg, walks.Walk(current()))


def _capped(what: str, library: Callable[..., Any]) -> Callable[..., Any]:
    """A built-in whose result has as many items as its first argument."""

    def run(arr: Any = None, *rest: Any) -> Any:
        if isinstance(arr, list | dict) and len(arr) > 1:
            current().items(what, len(arr))
        return library(arr, *rest)

    return run


map_ = _capped("$map", Functions.map)
each = _capped("$each", Functions.each)
reverse = _capped("$reverse", Functions.reverse)
shuffle = _capped("$shuffle", Functions.shuffle)
sort = _capped("$sort", Functions.sort)  # a comparator's calls are checked as it runs


def append(arg1: Any = None, arg2: Any = None) -> Any:
    if arg1 is not None and arg2 is not None:
        count = (len(arg1) if isinstance(arg1, list) else 1) + (
            len(arg2) if isinstance(arg2, list) else 1
        )
        current().items("$append", count)
    return Functions.append(arg1, arg2)


def zip_(*args: Any) -> Any:
    if args and all(a is not None for a in args):
        rows = min(len(a) if isinstance(a, list) else 1 for a in args)
        budget = current()
        budget.items("$zip", rows)
        budget.charge(rows * (56 + ITEM_BYTES * len(args)))
    return Functions.zip(*args)


def keys(arg: Any = None) -> Any:
    """$keys: the keys of an object, or the distinct keys of the objects in an array (at
    any depth), in order of first appearance."""
    if not isinstance(arg, list):
        if isinstance(arg, dict):
            current().items("$keys", len(arg))
        return Functions.keys(arg)
    budget = current()
    seen: dict[Any, str] = {}
    visits = [0]

    def collect(item: Any) -> None:
        visits[0] += 1
        if visits[0] % _TICK == 0:
            budget.tick()
        if isinstance(item, list):
            for inner in item:
                collect(inner)
        elif isinstance(item, dict):
            for key in item:
                seen[key] = ""
            if len(seen) > MAX_ITEMS:
                budget.items("$keys", len(seen))

    collect(arg)
    return Utils.create_sequence_from_iter(seen.keys())


def lookup(input: Any = None, key: Any = None) -> Any:
    """$lookup: the value under ``key``, or for an array the values of its items, flattened
    one level at each depth (as a path step does)."""
    if not isinstance(input, list):
        return Functions.lookup(input, key)
    return walks.lookup(input, key, walks.Walk(current()))


def spread(arg: Any = None) -> Any:
    """$spread: each key/value pair of an object as an object of its own; an array's items
    spread and concatenated."""
    budget = current()
    visits = [0]

    def spread_one(item: Any) -> Any:
        visits[0] += 1
        if visits[0] % _TICK == 0:
            budget.tick()
        if isinstance(item, list):
            result = Utils.create_sequence()
            copied = False
            for inner in item:
                part = spread_one(inner)
                if part is None:
                    continue  # Functions.append(result, None) is result itself
                if not copied:  # Functions.append copies into a JList without flags
                    result = _JList(result)
                    copied = True
                if isinstance(part, list):
                    result.extend(part)
                else:
                    result.append(part)
                if len(result) > MAX_ITEMS:
                    budget.items("$spread", len(result))
            return result
        if isinstance(item, dict):
            budget.items("$spread", len(item))
            budget.charge(200 * len(item))
            result = Utils.create_sequence()
            for k, v in item.items():
                result.append({k: v})
            return result
        return item

    return spread_one(arg)


def merge(arg: Any = None) -> Any:
    if not isinstance(arg, list) or sum(len(o) for o in arg if isinstance(o, dict)) <= ITEM_CHUNK:
        return Functions.merge(arg)
    budget = current()
    result: dict[Any, Any] = {}
    for index, obj in enumerate(arg):
        if index % _TICK == 0:
            budget.tick()
        for k, v in obj.items():
            result[k] = v
        if len(result) > MAX_ITEMS:
            budget.items("$merge", len(result), "keys")
    return result


def distinct(arr: Any = None) -> Any:
    """$distinct in linear time, keeping the first of equal items in order (Python's
    ``==``, as the library's ``in``)."""
    if arr is None:
        return None
    if not isinstance(arr, list) or len(arr) <= 1:
        return arr
    budget = current()
    budget.work(len(arr))
    budget.charge(ITEM_BYTES * len(arr))  # the buckets
    results = Utils.create_sequence() if isinstance(arr, _JList) else []
    # hash -> the first item kept with it; hash -> all of them once a second one has that
    # hash (few: an object per kept item would give the collector work on big arrays).
    first: dict[int, Any] = {}
    more: dict[int, list[Any]] = {}
    hasher = _Hasher(budget)
    for el in arr:
        key = hasher.hash(el)
        kept = first.get(key, _NONE)
        if kept is _NONE:
            first[key] = el
        elif kept is el or kept == el:
            continue
        else:
            others = more.setdefault(key, [])
            if any(other is el or other == el for other in others):
                continue
            others.append(el)
        results.append(el)
        if len(results) > MAX_ITEMS:
            budget.items("$distinct", len(results))
    return results


_NONE = object()


class _Hasher:
    """A hash of a value such that values equal under ``==`` hash equal: numbers by
    Python's hash (equal for ``1``, ``1.0`` and ``true``), arrays by their items in order,
    objects by their pairs in any order."""

    __slots__ = ("budget", "nodes")

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.nodes = 0

    def hash(self, value: Any) -> int:
        self.nodes += 1
        if self.nodes % _TICK == 0:
            self.budget.tick()
        if isinstance(value, list | tuple):
            return hash((0x5B, *(self.hash(v) for v in value)))
        if isinstance(value, dict):
            h = 0x7B
            for k, v in value.items():
                h ^= hash((hash(k), self.hash(v)))
            return h
        try:
            return hash(value)
        except TypeError:
            return id(type(value))  # unhashable: compared with == in one bucket


def clone_(arg: Any = None) -> Any:
    """$clone: ``json.loads($string(arg))`` without the text."""
    value = arg[0] if isinstance(arg, _JList) and arg.outer_wrapper and arg else arg
    if not isinstance(value, list | dict):
        return Functions.function_clone(arg)
    return clone(value, current())
