"""What went wrong in an expression, said in JSONata's terms.

A user reads these messages (in a layer's error), so they must not show the Python
underneath. The library reports a failure in one of three ways, each wrong for a user:

* a ``JException`` with a JSONata code, whose message template was mangled in the port (a
  blanket rename made every "function" an "Object"), whose values are Python reprs
  (``None``, ``{'a': 1}``), and for some codes with its arguments missing or misplaced;
* a ``JException`` whose code is the message itself (``JSonataException ...``);
* a plain Python exception from inside a built-in or an operator (``could not convert
  string to float``, ``'<' not supported between instances of 'str' and 'int'``).

:func:`explain` is the one place that maps all of them: JSONata's wording with its code
(``... must evaluate to a number, not a string ("abc") [T2001]``), values as JSON, types by
their JSON names. A built-in's own Python errors are told apart from the errors of the
expressions it calls by :func:`blame`, which the built-in guard calls as an error passes
it, so that the mapping knows which function failed on which arguments. Nothing here runs
unless an expression has already failed.
"""

from __future__ import annotations

import contextlib
import decimal
import json
import math
import re
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from jsonata import constants, jexception
from jsonata.jsonata import Jsonata
from jsonata.utils import Utils

from ._budget import LimitHit, SliceSpent
from ._jsontext import is_small

__all__ = [
    "MISSING",
    "ArgumentMismatch",
    "NotAFunction",
    "blame",
    "describe",
    "explain",
    "json_type",
    "shown",
]

MISSING = object()  # an argument not given at all (``ArgumentMismatch.value``)
_NULL = Utils.NULL_VALUE
_SHOWN = 60  # the most characters of a value quoted in a message
_LONGEST = 500  # the most characters of a message
_BLAMED = "_flow8_builtin"  # the attribute `blame` sets: (built-in name, its arguments)

# The library's templates with the port's rename undone ("a Object" was "a function").
_TEMPLATES: dict[str, str] = {
    code: text.replace("a Object", "a function").replace("Object", "function")
    for code, text in jexception.JException.error_codes.items()
}
# The library raises this one without the radix it was given.
_TEMPLATES["D3100"] = "The radix of the formatBase function must be between 2 and 36"
# Codes the library raises with the message in place of the code.
_BY_MESSAGE = {
    "Second argument of replace function cannot be an empty string": "D3010",
    "Fourth argument of replace function must evaluate to a positive number": "D3011",
}
# The library's date and integer picture errors are RuntimeErrors with JSONata's texts.
_RUNTIME_CODES = {
    constants.Constants.ERR_MSG_SEQUENCE_UNSUPPORTED: "D3130",
    constants.Constants.ERR_MSG_DIFF_DECIMAL_GROUP: "D3131",
    constants.Constants.ERR_MSG_NO_CLOSING_BRACKET: "D3135",
    constants.Constants.ERR_MSG_UNKNOWN_COMPONENT_SPECIFIER: "D3132",
    constants.Constants.ERR_MSG_INVALID_NAME_MODIFIER: "D3133",
    constants.Constants.ERR_MSG_TIMEZONE_FORMAT: "D3134",
    constants.Constants.ERR_MSG_MISSING_FORMAT: "D3136",
}
_PICTURE_ARGUMENT = {"fromMillis": 1, "toMillis": 1, "formatInteger": 1, "parseInteger": 1}
_PLACEHOLDER = re.compile(r"\{\{\{?(\w+)\}?\}\}")
_CODE = re.compile(r"^[STD]\d{4}$")
_TYPES = {
    "s": "a string",
    "n": "a number",
    "b": "a boolean",
    "l": "null",
    "a": "an array",
    "o": "an object",
    "f": "a function",
    "j": "a JSON value",
    "x": "a value",
}
_PLURALS = {
    "s": "strings",
    "n": "numbers",
    "b": "booleans",
    "l": "nulls",
    "a": "arrays",
    "o": "objects",
    "f": "functions",
}


class ArgumentMismatch(jexception.JException):  # type: ignore[misc]
    """A built-in or lambda given an argument its signature refuses (T0410, T0411, T0412),
    with the argument JSONata names, what was expected and what came."""

    def __init__(
        self, code: str, function: str | None, index: int, value: Any, expected: str | None
    ) -> None:
        super().__init__(code, -1, index, function, expected or "")
        self.function = function
        self.index = index
        self.value = value
        self.expected_type = expected  # a signature symbol ("s", "(sn)", "a<n>"), or None


class NotAFunction(jexception.JException):  # type: ignore[misc]
    """A value that is not a function was called (T1006)."""

    def __init__(self, value: Any) -> None:
        super().__init__("T1006", -1)
        self.value = value


def json_type(value: Any) -> str:
    """The JSON type of a value as JSONata has it: string, number, boolean, null, array,
    object or function."""
    if value is None or value is _NULL:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "function"  # lambdas, built-ins, regexes: the only other values an expression has


def describe(value: Any) -> str:
    """A value for a message: its JSON type, and the value itself as JSON when it is short
    (``a string ("abc")``, ``an object``, ``null``)."""
    kind = json_type(value)
    if kind in ("null", "function"):
        return "null" if kind == "null" else "a function"
    article = "an" if kind in ("array", "object") else "a"
    text = shown(value)
    return f"{article} {kind} ({text})" if text is not None else f"{article} {kind}"


def shown(value: Any) -> str | None:
    """A value as JSON text for a message; None when it is too long to quote whole (a
    partly quoted secret would escape the masking of secrets, which matches whole texts)."""
    if value is None or value is _NULL:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, str) and len(value) > _SHOWN:
        return None  # before writing out what may be megabytes
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return None  # writing a huge integer out is itself slow
    if isinstance(value, list | tuple | dict) and not is_small(value):
        return None
    try:
        text = json.dumps(value, ensure_ascii=False, default=_not_json)
    except (TypeError, ValueError):
        return None
    return text if len(text) <= _SHOWN else None


def _not_json(value: Any) -> Any:
    if value is _NULL:
        return None
    raise TypeError  # a function inside a value: the value is described, not quoted


def blame(error: BaseException, function: str, args: Sequence[Any]) -> None:
    """Note on ``error``, as it leaves the guard of built-in ``function`` called with
    ``args``, that the built-in raised it itself: not an expression the built-in evaluated
    (an operator inside the function ``$map`` applies), whose error is its own."""
    if isinstance(error, LimitHit | SliceSpent | RecursionError) or hasattr(error, _BLAMED):
        return
    if not _raised_by_evaluator(error.__traceback__):
        with contextlib.suppress(AttributeError):  # an exception without a __dict__
            setattr(error, _BLAMED, (function, tuple(args)))


def _raised_by_evaluator(tb: TracebackType | None) -> bool:
    while tb is not None:
        if tb.tb_frame.f_code in _EVALUATOR:
            return True
        tb = tb.tb_next
    return False


_EVALUATOR = frozenset({Jsonata.eval.__code__, Jsonata._eval.__code__})


def explain(error: BaseException, source: str = "") -> str:
    """``error``, raised parsing or evaluating the expression ``source``, in JSONata's
    terms."""
    called: tuple[str, tuple[Any, ...]] | None = getattr(error, _BLAMED, None)
    if isinstance(error, jexception.JException):
        text = _jsonata_error(error, called, source)
    elif called is not None:
        text = _builtin_error(error, *called)
    else:
        text = _evaluator_error(error)
    # One line of a bounded length: ``$error()`` writes whatever the expression gives it.
    lines = text[:_LONGEST].splitlines()
    return lines[0] if lines else text[:_LONGEST]


# --- JSONata codes -------------------------------------------------------------------------


def _jsonata_error(error: Any, called: tuple[str, tuple[Any, ...]] | None, source: str) -> str:
    code = str(error.error)
    if not _CODE.match(code):
        code = _BY_MESSAGE.get(code, code)
        if not _CODE.match(code):
            return code.removeprefix("JSonataException ")  # a message of its own
    if code in ("D3137", "D3141"):  # $error(), $assert(): the expression's own message
        return str(error.current) if isinstance(error.current, str) else _TEMPLATES[code]
    if isinstance(error, ArgumentMismatch):
        return _argument_mismatch(error)
    if code == "T1006":
        return _not_a_function(error, source)
    if code == "T0410" and called is not None:  # a built-in refusing an argument itself
        name, args = called
        return _with_code(
            f"Argument 1 of function ${name} does not match function signature: "
            f"{describe(args[0] if args else None)} is not accepted",
            code,
        )
    if code in ("T2001", "T2002"):
        side = "left" if code == "T2001" else "right"
        return _with_code(
            f"The {side} side of the {error.current} operator must evaluate to a number, "
            f"not {describe(error.expected)}",
            code,
        )
    if code == "D1002":
        return _with_code(f"Cannot negate a non-numeric value: {describe(error.expected)}", code)
    message = _render(code, [error.current, error.expected, error.extra])
    if code == "T2009":
        message += f" (here {_a(error.current)} and {_a(error.expected)})"
    if code.startswith("S") and isinstance(error.location, int) and error.location >= 0:
        message += f" at position {error.location}"
    return _with_code(message, code)


def _a(value: Any) -> str:
    kind = json_type(value)
    return kind if kind == "null" else ("an " if kind[0] in "ao" else "a ") + kind


def _render(code: str, values: Sequence[Any]) -> str:
    """The code's template filled with ``values`` in order: values (``{{value}}``) as JSON,
    tokens, argument numbers and types as they are."""
    template = _TEMPLATES.get(code)
    if template is None:
        return f"error {code}"
    static = code.startswith("S")  # the parser's: tokens of the source, never data
    position = iter(values)

    def fill(match: re.Match[str]) -> str:
        value = next(position, None)
        if value is None or value is _NULL:
            # The literal null (S0213), or an argument the library left out.
            return "null" if match.group(1) == "value" else ""
        if match.group(1) in ("value", "value2", "exp") and not static:
            text = shown(value)
            return text if text is not None else describe(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return _PLACEHOLDER.sub(fill, template).rstrip(": ")


def _with_code(message: str, code: str) -> str:
    return f"{message} [{code}]"


def _argument_mismatch(error: ArgumentMismatch) -> str:
    name = f"function ${error.function}" if error.function else "the function"
    code = str(error.error)
    if code == "T0412":
        kind = str(error.expected_type or "")
        items = _PLURALS.get(kind[:1], "values of its type")
        return _with_code(
            f"Argument {error.index} of {name} must be an array of {items}, "
            f"not {describe(error.value)}",
            code,
        )
    if code == "T0411":
        return _with_code(
            f"Context value is not a compatible type with argument {error.index} of "
            f"{name}: it is {describe(error.value)}",
            code,
        )
    head = f"Argument {error.index} of {name} does not match function signature"
    if error.expected_type is None:
        if error.value is MISSING:
            return _with_code(head, code)
        most = error.index - 1
        return _with_code(
            f"{head}: it takes at most {most} argument{'' if most == 1 else 's'}", code
        )
    expected = _expected(error.expected_type)
    if error.value is MISSING:
        return _with_code(f"{head}: expected {expected}, but none was given", code)
    return _with_code(f"{head}: expected {expected}, got {describe(error.value)}", code)


def _expected(symbol: str) -> str:
    """A signature symbol in words: ``s`` a string, ``(sn)`` a string or a number,
    ``a<n>`` an array of numbers."""
    if symbol.startswith("("):
        kinds = list(dict.fromkeys(_TYPES.get(s, "a value") for s in symbol.strip("()")))
        return ", ".join(kinds[:-1]) + " or " + kinds[-1] if len(kinds) > 1 else kinds[0]
    if symbol.startswith("a<"):
        return f"an array of {_PLURALS.get(symbol[2:3], 'values')}"
    return _TYPES.get(symbol[:1], "a value")


def _not_a_function(error: Any, source: str) -> str:
    name = error.current if isinstance(error.current, str) else _name_before(error, source)
    what = "the value called"
    if name:
        # A variable is written with its $, a field (``$o.f()``) without.
        what = f"${name}" if f"${name}" in source else name
    detail = "not defined"
    if isinstance(error, NotAFunction):
        detail = describe(error.value)
    return _with_code(f"Attempted to invoke a non-function: {what} is {detail}", "T1006")


_CALLEE = re.compile(r"\$?([A-Za-z_][A-Za-z0-9_]*)\s*\($")


def _name_before(error: Any, source: str) -> str | None:
    """The name called, read from the source before the ``(`` the error points after."""
    location = error.location
    if not isinstance(location, int) or not 0 < location <= len(source):
        return None
    found = _CALLEE.search(source[:location])
    return found.group(1) if found else None


# --- Python errors -------------------------------------------------------------------------


def _builtin_error(error: BaseException, name: str, args: tuple[Any, ...]) -> str:
    """A built-in's own Python error: what JSONata says for it, with its code where it
    has one, else which function could not take which arguments."""

    def arg(index: int) -> Any:
        return args[index] if len(args) > index else None

    if isinstance(error, RuntimeError):
        code = _runtime_code(str(error))
        if code is not None:
            return _with_code(_render(code, [arg(_PICTURE_ARGUMENT.get(name, 0))]), code)
    if name == "number":
        return _with_code(f"Unable to cast value to a number: {_quoted(arg(0))}", "D3030")
    if name == "power":
        return _with_code(_render("D3061", [arg(0), arg(1)]), "D3061")
    if name in ("fromMillis", "now", "toMillis") and isinstance(error, KeyError):
        return _with_code(_render("D3132", [error.args[0] if error.args else None]), "D3132")
    if name == "toMillis" and isinstance(error, ValueError | OverflowError):
        if arg(1) is None:
            return _with_code(_render("D3110", [arg(0)]), "D3110")
        return (
            f"The timestamp {_quoted(arg(0))} is not a valid date and time in the picture "
            f"{_quoted(arg(1))}"
        )
    if name.startswith(("encodeUrl", "decodeUrl")) and isinstance(error, UnicodeError):
        return _with_code(f"Malformed URL passed to ${name}(): {_quoted(arg(0))}", "D3140")
    if name == "sort" and isinstance(error, TypeError):
        if arg(1) is not None:
            return "The comparison function passed to $sort must return a boolean"
        return _with_code(_render("D3070", []), "D3070")
    if name == "replace" and isinstance(error, IndexError | KeyError | ValueError):
        return (
            "Argument 3 of function $replace refers to a capture group that the pattern "
            "does not have"
        )
    if name == "round" and isinstance(error, decimal.InvalidOperation | ValueError):
        return f"Argument 2 of function $round is out of range: {_quoted(arg(1))}"
    given = ", ".join(_quoted(a) for a in args if a is not None)
    return f"The {name} function cannot be applied to " + (
        f"the arguments {given}" if given else "no arguments"
    )


def _runtime_code(message: str) -> str | None:
    for text, code in _RUNTIME_CODES.items():
        if message.startswith(text.split("%s", 1)[0]):
            return code
    return _PLAIN_TEXTS.get(message)


# Texts the library also raises as RuntimeErrors, word for word (S0401, S0402).
_PLAIN_TEXTS = {text: code for code, text in _TEMPLATES.items() if "{" not in text}


def _quoted(value: Any) -> str:
    text = shown(value)
    return text if text is not None else describe(value)


def _evaluator_error(error: BaseException) -> str:
    """A Python error from the evaluator itself (from an operator): JSONata's code."""
    if isinstance(error, ZeroDivisionError):
        return _with_code("Number out of range: division by zero", "D1001")
    if isinstance(error, ArithmeticError) or (
        isinstance(error, ValueError) and "math domain" in str(error)
    ):
        return _with_code("Number out of range: the result is not a finite number", "D1001")
    if isinstance(error, RuntimeError):
        code = _runtime_code(str(error))
        if code is not None:
            return _with_code(_render(code, []), code)
    # A failure JSONata has no words for: say so rather than pass on Python's.
    return "the JSONata engine failed on it unexpectedly"
