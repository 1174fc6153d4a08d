"""Every built-in function an expression can call, each behind a guard.

The sandbox's frame holds exactly the names below (``SANDBOX_FRAME``); the library's own
table is not reachable from it. Each entry is either the library's function (those that
take constant time, or time linear in arguments the evaluator has already paid for) or a
bounded replacement (``_builtins_text``, ``_builtins_regex``, ``_builtins_codec``,
``_builtins_data``, ``_builtins_format``) that refuses, before it runs, a result past the
string cap, the item cap or the memory budget, and checks the deadline as it goes.
Whatever a built-in returns is charged to the evaluation's memory budget unless it is one
of its arguments (or, for ``$lookup``, ``$single`` and ``$reduce``, data the evaluation
already holds). A new built-in in the library fails the import here until it is given a
guard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jsonata import jexception
from jsonata.functions import Functions
from jsonata.jsonata import Jsonata
from jsonata.utils import Utils

from . import _builtins_codec as codec
from . import _builtins_data as data
from . import _builtins_format as fmt
from . import _builtins_regex as regex
from . import _builtins_text as text
from ._budget import current, size_of
from ._explain import blame

_TICK = 256


def _removed(name: str) -> Callable[..., Any]:
    def fail(*_: Any) -> Any:
        raise jexception.JException(f"${name}() is not available in flow expressions", -1)

    return fail


def _library(method: str) -> Callable[..., Any]:
    impl: Callable[..., Any] = getattr(Functions, method)
    return impl


# name -> (implementation, whether its result is charged). Library functions listed here
# take constant time, or time linear in their arguments with no large C-level step.
_GUARDS: dict[str, tuple[Callable[..., Any], bool]] = {
    # numbers: constant time on a float or an int of at most a few thousand digits
    "abs": (_library("abs"), False),
    "ceil": (_library("ceil"), False),
    "floor": (_library("floor"), False),
    "power": (_library("power"), False),  # a float: inf is refused (D3061)
    "round": (_library("round"), False),  # a huge precision is an InvalidOperation
    "sqrt": (_library("sqrt"), False),
    "random": (_library("random"), False),
    "millis": (_library("millis"), False),
    "number": (_library("number"), False),  # float()/int() of <= 10M chars: 11-14 ms
    "formatBase": (_library("format_base"), True),  # at most 1024 bits: 1024 digits
    "formatNumber": (fmt.format_number, True),
    "formatInteger": (fmt.format_integer, True),
    "parseInteger": (fmt.parse_integer, False),
    # reductions
    "count": (_library("count"), False),
    "sum": (data.sum_, False),
    "max": (data.max_, False),
    "min": (data.min_, False),
    "average": (data.average, False),
    # values
    "boolean": (data.to_boolean, False),
    "not": (data.not_, False),
    "exists": (_library("exists"), False),
    "type": (_library("type"), False),
    "error": (_library("error"), False),
    "assert": (_library("assert_fn"), False),
    "string": (text.string, True),
    "clone": (data.clone_, False),  # charged as it is copied
    # strings
    "length": (_library("length"), False),
    "substring": (_library("substring"), True),  # a slice: a copy of at most 10M chars
    "substringBefore": (text.substring_before, True),
    "substringAfter": (text.substring_after, True),
    "lowercase": (text.lowercase, True),
    "uppercase": (text.uppercase, True),
    "trim": (text.trim, True),
    "pad": (text.pad, True),
    "contains": (text.contains, False),
    "split": (text.split, True),
    "join": (text.join, True),
    "match": (regex.match, True),
    "replace": (regex.replace, True),
    "base64encode": (codec.base64encode, True),
    "base64decode": (codec.base64decode, True),
    "encodeUrlComponent": (codec.encode_url_component, True),
    "encodeUrl": (codec.encode_url, True),
    "decodeUrlComponent": (codec.decode_url_component, True),
    "decodeUrl": (codec.decode_url, True),
    # arrays and objects
    "keys": (data.keys, True),
    "lookup": (data.lookup, False),  # values it already holds (an array's: a new list)
    "append": (data.append, True),
    "spread": (data.spread, True),
    "merge": (data.merge, True),
    "reverse": (data.reverse, True),
    "shuffle": (data.shuffle, True),
    "sort": (data.sort, True),
    "distinct": (data.distinct, True),
    "zip": (data.zip_, True),
    # higher-order: the functions they call are evaluated (and checked) node by node, and
    # a built-in passed to them is guarded itself
    "map": (data.map_, True),
    "filter": (_library("filter"), True),
    "single": (_library("single"), False),
    "reduce": (_library("fold_left"), False),
    "each": (data.each, True),
    "sift": (_library("sift"), True),
    # dates
    "now": (fmt.now, True),
    "fromMillis": (fmt.from_millis, True),
    "toMillis": (fmt.to_millis, False),
    # parse-and-run a string would turn data into code
    "eval": (_removed("eval"), False),
}


class _Guarded(Jsonata.JFunction):  # type: ignore[misc]
    """A built-in as the library calls it (same name, signature and arity), running a
    bounded implementation and charging its result."""

    def __init__(
        self, native: Jsonata.JNativeFunction, impl: Callable[..., Any], charged: bool
    ) -> None:
        self.function = None
        self.signature = native.signature
        self.function_name = native.function_name
        self.nargs = native.nargs
        self._impl = impl
        self._charged = charged

    def call(self, _input: Any, args: Any) -> Any:
        call_args = list(args)
        while len(call_args) < self.nargs:
            call_args.append(None)  # as Functions._call: missing arguments are undefined
        budget = current()
        budget.calls += 1
        if budget.calls % _TICK == 0:
            budget.tick()  # built-ins called in a loop by $map, $filter, $sort...
        try:
            res = self._impl(*call_args)
        except Exception as e:
            blame(e, self.function_name, call_args)  # which built-in failed, for its message
            raise
        if Utils.is_numeric(res):
            res = Utils.convert_number(res)
        elif self._charged and res is not None and not any(res is a for a in call_args):
            budget.charge(size_of(res))
        return res

    def get_number_of_args(self) -> int:
        return int(self.nargs)


def _sandbox_frame() -> Jsonata.Frame:
    natives: dict[str, Any] = dict(Jsonata.static_frame.bindings)
    missing = set(natives) - set(_GUARDS)
    if missing:
        raise ImportError(f"jsonata built-ins without a guard: {sorted(missing)}")
    frame = Jsonata.Frame(None)
    for name, native in natives.items():
        impl, charged = _GUARDS[name]
        frame.bind(name, _Guarded(native, impl, charged))
    return frame


SANDBOX_FRAME = _sandbox_frame()
