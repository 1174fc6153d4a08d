"""Bounded walks over values: JSON text, deep copies and the final conversion to JSON.

``json.dumps`` is one C-level call: over a large structure it holds the GIL (and so the
event loop) for as long as it runs, and it builds its whole result before anything can be
checked. Here a value is written piece by piece, with the string cap and the memory budget
checked as the text grows, the deadline checked every ``_TICK`` nodes, and long strings
escaped ``STRING_CHUNK`` characters at a time. Small values (most of them) still go to the
C encoder in one call. The text is the same as the library's ``$string`` (and as
``json.dumps``) character for character; the tests hold the two against each other.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from jsonata.functions import Functions
from jsonata.jsonata import Jsonata
from jsonata.parser import Parser
from jsonata.utils import Utils

from ._budget import Budget, LimitHit, size_of
from ._limits import MAX_STRING, STRING_CHUNK

_TICK = 1024
_BLOCK = 4096
_SMALL_NODES = 256
_SMALL_CHARS = 65_536

_NULL = Utils.NULL_VALUE
_FUNCTIONS = (Jsonata.JFunction, Parser.Symbol)
_escape_ascii: Callable[[str], str] = json.encoder.encode_basestring_ascii
_escape: Callable[[str], str] = json.encoder.encode_basestring


def _float_text(value: float) -> str:
    if value != value:
        return "NaN"
    if value == math.inf:
        return "Infinity"
    if value == -math.inf:
        return "-Infinity"
    return float.__repr__(value)


def is_small(value: Any) -> bool:
    """Whether ``value`` is small enough for one C-level call (walks at most
    ``_SMALL_NODES`` nodes to find out)."""
    stack = [value]
    nodes = 0
    chars = 0
    while stack:
        item = stack.pop()
        nodes += 1
        if nodes > _SMALL_NODES:
            return False
        if isinstance(item, str):
            chars += len(item)
            if chars > _SMALL_CHARS:
                return False
        elif isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(item.keys())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return True


class _Writer:
    """Writes JSON text in pieces, refusing to grow it past the cap or the budget."""

    __slots__ = (
        "blocks",
        "budget",
        "cap",
        "default",
        "escape",
        "indent",
        "item_sep",
        "key_sep",
        "length",
        "nodes",
        "pieces",
        "what",
    )

    def __init__(
        self,
        budget: Budget,
        what: str,
        *,
        ascii_only: bool,
        indent: str | None,
        default: Callable[[Any], Any] | None,
    ) -> None:
        self.budget = budget
        self.what = what
        self.escape = _escape_ascii if ascii_only else _escape
        self.indent = indent
        self.item_sep = ","
        self.key_sep = ":" if indent is None else ": "
        self.default = default
        self.pieces: list[str] = []
        self.blocks: list[str] = []
        self.length = 0
        self.nodes = 0
        self.cap = min(MAX_STRING, max(0, budget.room()))

    def put(self, text: str) -> None:
        self.length += len(text)
        if self.length > self.cap:
            if self.length > MAX_STRING:
                raise LimitHit(
                    "string",
                    f"{self.what} would build a string longer than the {MAX_STRING} "
                    "characters allowed",
                )
            self.budget.charge(self.length)  # over the memory budget: raises
        self.pieces.append(text)
        if len(self.pieces) >= _BLOCK:
            self.blocks.append("".join(self.pieces))
            self.pieces = []

    def text(self) -> str:
        if self.blocks:
            self.blocks.append("".join(self.pieces))
            return "".join(self.blocks)
        return "".join(self.pieces)

    def string(self, value: str) -> None:
        if len(value) <= STRING_CHUNK:
            self.put(self.escape(value))
            return
        # Escaping is per character, so pieces of the string escape independently.
        self.put('"')
        for start in range(0, len(value), STRING_CHUNK):
            self.budget.tick()
            self.put(self.escape(value[start : start + STRING_CHUNK])[1:-1])
        self.put('"')

    def value(self, value: Any, level: int) -> None:
        self.nodes += 1
        if self.nodes % _TICK == 0:
            self.budget.tick()
        if isinstance(value, str):
            self.string(value)
        elif value is None:
            self.put("null")
        elif value is True:
            self.put("true")
        elif value is False:
            self.put("false")
        elif isinstance(value, int):
            self.put(int.__repr__(value))
        elif isinstance(value, float):
            self.put(_float_text(value))
        elif isinstance(value, list | tuple):
            self.array(value, level)
        elif isinstance(value, dict):
            self.object(value, level)
        elif self.default is not None:
            self.value(self.default(value), level)
        else:
            raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    def array(self, items: list[Any] | tuple[Any, ...], level: int) -> None:
        if not items:
            self.put("[]")
            return
        if self.indent is None:
            self.put("[")
            first = True
            for item in items:
                if not first:
                    self.put(",")
                first = False
                self.value(item, level)
            self.put("]")
            return
        inner = "\n" + self.indent * (level + 1)
        self.put("[" + inner)
        first = True
        for item in items:
            if not first:
                self.put("," + inner)
            first = False
            self.value(item, level + 1)
        self.put("\n" + self.indent * level + "]")

    def object(self, obj: dict[Any, Any], level: int) -> None:
        if not obj:
            self.put("{}")
            return
        inner = "" if self.indent is None else "\n" + self.indent * (level + 1)
        self.put("{" + inner)
        first = True
        for key, item in obj.items():
            if not first:
                self.put("," + inner)
            first = False
            self.key(key)
            self.put(self.key_sep)
            self.value(item, level + 1)
        self.put("}" if self.indent is None else "\n" + self.indent * level + "}")

    def key(self, key: Any) -> None:
        if isinstance(key, str):
            self.string(key)
        elif isinstance(key, float):
            self.string(_float_text(key))
        elif key is True:
            self.put('"true"')
        elif key is False:
            self.put('"false"')
        elif key is None:
            self.put('"null"')
        elif isinstance(key, int):
            self.put('"' + int.__repr__(key) + '"')
        else:
            raise TypeError(
                f"keys must be str, int, float, bool or None, not {key.__class__.__name__}"
            )


def _jsonata_default(value: Any) -> Any:
    # The library's encoder: JSONata null is null, functions are written as "".
    if value is _NULL:
        return None
    if isinstance(value, _FUNCTIONS):
        return ""
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def jsonata_string(arg: Any, prettify: Any, budget: Budget, what: str = "$string") -> Any:
    """The library's ``$string(arg, prettify)``, bounded."""
    if isinstance(arg, Utils.JList) and arg.outer_wrapper:
        arg = arg[0]
    if arg is None or isinstance(arg, str) or not isinstance(arg, list | tuple | dict):
        return Functions.string(arg, prettify)  # scalars and functions: constant time
    budget.work(0)
    if is_small(arg):
        text = Functions.string(arg, prettify)
    else:
        writer = _Writer(
            budget,
            what,
            ascii_only=True,
            indent="  " if prettify else None,
            default=_jsonata_default,
        )
        writer.value(arg, 0)
        text = writer.text()
    budget.string(what, len(text))
    budget.charge(size_of(text))
    return text


def stringify(value: Any, budget: Budget | None = None) -> str:
    """How a value is written into interpolated text (and cast to a string by filters):
    JSON with non-ASCII characters kept; strings as they are, null as nothing."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if budget is None or is_small(value):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    writer = _Writer(budget, "the text", ascii_only=False, indent=None, default=None)
    writer.value(value, 0)
    text = writer.text()
    budget.charge(size_of(text))
    return text


class _Walk:
    """A counter of visited nodes that checks the deadline every ``_TICK`` of them."""

    __slots__ = ("budget", "nodes")

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.nodes = 0

    def visit(self) -> None:
        self.nodes += 1
        if self.nodes % _TICK == 0:
            self.budget.tick()


def clone(value: Any, budget: Budget) -> Any:
    """``json.loads($string(value))`` as the library's ``$clone`` and transforms compute it,
    without the text: a deep copy with JSONata null as null and functions as ""."""
    walk = _Walk(budget)

    def copy(item: Any) -> Any:
        walk.visit()
        if item is None or item is _NULL:
            return None
        if isinstance(item, str | bool | int):
            return item
        if isinstance(item, float):
            return item if math.isfinite(item) else float(_float_text(item))
        if isinstance(item, list | tuple):
            out = [copy(v) for v in item]
            budget.charge(size_of(out))
            return out
        if isinstance(item, dict):
            obj = {_key(k): copy(v) for k, v in item.items()}
            budget.charge(size_of(obj))
            return obj
        if isinstance(item, _FUNCTIONS):
            return ""
        raise TypeError(f"Object of type {type(item).__name__} is not JSON serializable")

    return copy(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, float):
        return _float_text(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {key.__class__.__name__}")


_PLAIN = frozenset({str, int, bool})


class NotJson(TypeError):
    """A result holds something that is not a JSON value."""


def to_json(value: Any, budget: Budget, where: str = "result") -> Any:
    """An evaluation's raw result as plain JSON: JSONata null as None, integral floats as
    ints, sequences as lists; ``NotJson`` for anything else (functions, non-finite
    numbers). The same as ``to_json_value`` after the library's null conversion."""
    if value is None or value.__class__ in _PLAIN:
        return value  # most results: nothing to walk
    walk = _Walk(budget)

    def convert(item: Any) -> Any:
        walk.visit()
        if item is None or item is _NULL:
            return None
        if isinstance(item, bool | str):
            return item
        if isinstance(item, int):
            return item
        if isinstance(item, float):
            if not math.isfinite(item):
                raise NotJson(f"{where} is not a finite number")
            return int(item) if item.is_integer() and abs(item) < 2**53 else item
        if isinstance(item, Mapping):
            obj = {str(k): convert(v) for k, v in item.items()}
            budget.charge(size_of(obj))
            return obj
        if isinstance(item, list | tuple):
            out = [convert(v) for v in item]
            budget.charge(size_of(out))
            return out
        # Functions are the only other values an evaluation makes; a user reads this.
        raise NotJson(f"{where} holds a function, not a JSON value")

    return convert(value)
