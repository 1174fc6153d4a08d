"""The library's walks over values, checking the deadline as they go.

Some of the evaluator's own steps walk a whole value in Python without evaluating a node
(so without reaching the budget's hooks): deep equality (``=``), membership (``in``), the
truth of an array (conditions, ``and``/``or``, filter predicates), flattening for ``*``
and ``**``, and reading a name from a nested array. Over a large input that is seconds of
work, on the event loop when it happens within the slice. These are the same walks with
the deadline checked every ``_TICK`` steps (which also moves the evaluation off the event
loop when its slice is spent); each gives the library's result.
"""

from __future__ import annotations

from typing import Any

from jsonata.functions import Functions
from jsonata.utils import Utils

from ._budget import Budget

_TICK = 1024
_is_numeric = Utils.is_numeric


class Walk:
    __slots__ = ("budget", "steps")

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.steps = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps % _TICK == 0:
            self.budget.tick()


def deep_equal(lhs: Any, rhs: Any, walk: Walk) -> bool:
    """``Utils.is_deep_equal``: arrays item by item, objects key by key, and a boolean
    never equal to a number."""
    walk.step()
    if isinstance(lhs, list) and isinstance(rhs, list):
        if len(lhs) != len(rhs):
            return False
        return all(deep_equal(a, b, walk) for a, b in zip(lhs, rhs, strict=True))
    if isinstance(lhs, dict) and isinstance(rhs, dict):
        if lhs.keys() != rhs.keys():
            return False
        return all(deep_equal(lhs[key], rhs[key], walk) for key in lhs)
    if lhs == rhs:
        return isinstance(lhs, bool) == isinstance(rhs, bool)
    return False


def includes(lhs: Any, rhs: list[Any], walk: Walk) -> bool:
    """``lhs in rhs`` as the library's ``in``: some item ``== lhs``."""
    for item in rhs:
        walk.step()
        if item == lhs:
            return True
    return False


def to_boolean(arg: Any, walk: Walk) -> Any:
    """``Functions.to_boolean``: JSONata's truth of a value (None for undefined)."""
    if arg is None:
        return None
    if isinstance(arg, list):
        if len(arg) == 1:
            return to_boolean(arg[0], walk)
        for item in arg:
            walk.step()
            if boolize(item, walk):
                return True
        return False
    return Functions.to_boolean(arg)


def boolize(value: Any, walk: Walk) -> bool:
    """``Jsonata.boolize``: the truth of a value, undefined as false."""
    booled = to_boolean(value, walk)
    return False if booled is None else bool(booled)


def all_numbers(value: Any, walk: Walk) -> bool:
    """``Utils.is_array_of_numbers``."""
    if not isinstance(value, list):
        return False
    for item in value:
        walk.step()
        if not _is_numeric(item):
            return False
    return True


def flatten(arg: Any, flattened: list[Any], walk: Walk) -> list[Any]:
    """``Jsonata.flatten``: the leaves of nested arrays, in order."""
    walk.step()
    if isinstance(arg, list):
        for item in arg:
            flatten(item, flattened, walk)
    else:
        flattened.append(arg)
    return flattened


def descendants(value: Any, results: list[Any], walk: Walk) -> None:
    """``Jsonata.recurse_descendants``: every value inside ``value`` (arrays flattened)."""
    walk.step()
    if not isinstance(value, list):
        results.append(value)
    if isinstance(value, list):
        for member in value:
            descendants(member, results, walk)
    elif value is not None and isinstance(value, dict):
        for member in value.values():
            descendants(member, results, walk)


def lookup(value: Any, key: str, walk: Walk) -> Any:
    """``Functions.lookup``: a name's value in an object, or in each item of an array
    (flattened one level at each depth)."""
    if not isinstance(value, list):
        return Functions.lookup(value, key)
    result = Utils.create_sequence()
    for item in value:
        walk.step()
        res = lookup(item, key, walk)
        if res is not None:
            if isinstance(res, list):
                result.extend(res)
            else:
                result.append(res)
    return result
