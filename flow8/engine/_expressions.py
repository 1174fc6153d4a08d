"""JSONata expressions inside ``{{ }}``: compiled once per flow version, evaluated bounded.

A string that is exactly one ``{{ expr }}`` yields the expression's typed value; text mixed
with expressions interpolates them as text. Values produced by an evaluation (play input,
step outputs, KV values) are data: they are never parsed for ``{{`` again.

Sandboxing: JSONata evaluates over plain JSON values, so there is no host object to reach.
On top of that each evaluation gets a wall-clock deadline and a nesting-depth limit
(checked on every AST node), range operators are capped, ``$eval`` (parse-and-run a string,
which would turn data into code) is removed, regexes run on RE2 (linear time, no
catastrophic backtracking), and results must be JSON values (no functions escape).
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import re2  # type: ignore[import-untyped]
from jsonata import jexception
from jsonata.functions import Functions
from jsonata.jsonata import Jsonata
from jsonata.regex_engine import RegexFlags
from jsonata.utils import Utils

from ._exceptions import ExpressionError

DEFAULT_TIMEOUT_MS = 250
DEFAULT_MAX_DEPTH = 150
MAX_RANGE = 100_000
# Longest string an expression may build. The time budget alone does not bound memory: one
# $pad or a few doublings with & allocate hundreds of MB within a single step.
MAX_STRING = 10_000_000

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def _re2_engine(pattern: str, flags: RegexFlags) -> Any:
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = not flags.case_insensitive
    options.never_nl = False
    prefix = "(?m)" if flags.multiline else ""
    try:
        return re2.compile(prefix + pattern, options)
    except re2.error as e:
        raise jexception.JException(f"invalid regular expression /{pattern}/: {e}", 0) from e


@functools.lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> Any:
    """An RE2 pattern (linear-time) for the ``regex`` filter operator (cached)."""
    return re2.compile(pattern, _RE2_OPTIONS)


class _Sandboxed(Jsonata):  # type: ignore[misc]
    """Jsonata with a range cap far below the library's 10 million entries, and a cap on the
    length of strings built with ``&``."""

    def evaluate_string_concat(self, lhs: Any, rhs: Any) -> Any:
        result = super().evaluate_string_concat(lhs, rhs)
        if len(result) > MAX_STRING:
            raise jexception.JException(
                f"a string of {len(result)} characters is longer than the {MAX_STRING} allowed", -1
            )
        return result

    def evaluate_range_expression(self, lhs: Any, rhs: Any) -> Any:
        if (
            isinstance(lhs, int)
            and isinstance(rhs, int)
            and not isinstance(lhs, bool)
            and not isinstance(rhs, bool)
            and rhs - lhs + 1 > MAX_RANGE
        ):
            raise jexception.JException(
                f"range [{lhs}..{rhs}] is larger than the {MAX_RANGE} items allowed", -1
            )
        return super().evaluate_range_expression(lhs, rhs)


def _removed(name: str) -> Jsonata.JLambda:
    def fail(*_: Any) -> Any:
        raise jexception.JException(f"${name}() is not available in flow expressions", -1)

    return Jsonata.JLambda(fail)


def _capped_pad(string: Any = None, width: Any = None, char: Any = None) -> Any:
    if isinstance(width, int | float) and not isinstance(width, bool) and abs(width) > MAX_STRING:
        raise jexception.JException(
            f"$pad to {int(width)} characters is longer than the {MAX_STRING} allowed", -1
        )
    return Functions.pad(string, width, char)


def _too_long(what: str, length: int) -> Any:
    return jexception.JException(
        f"{what} would build a string of {length} characters, longer than the {MAX_STRING} allowed",
        -1,
    )


def _capped_join(strs: Any = None, separator: Any = None) -> Any:
    """$join, refusing before it allocates a result longer than MAX_STRING."""
    if isinstance(strs, list) and all(isinstance(s, str) for s in strs):
        sep = separator if isinstance(separator, str) else ""
        length = sum(map(len, strs)) + len(sep) * max(0, len(strs) - 1)
        if length > MAX_STRING:
            raise _too_long("$join", length)
    return Functions.join(strs, separator)


def _capped_replace(
    string: Any = None, pattern: Any = None, replacement: Any = None, limit: Any = None
) -> Any:
    """$replace, refusing before it allocates a result longer than MAX_STRING.

    Each match adds at most the replacement's length, plus (for ``$0``..``$9`` references)
    the text of the match itself; matches do not overlap, so all references together add at
    most the input's length once per reference in the replacement. A function replacement
    is checked as its results come in.
    """
    if not isinstance(string, str) or pattern is None or pattern == "":
        return Functions.replace(string, pattern, replacement, limit)
    if isinstance(replacement, str):
        matches = (
            string.count(pattern)
            if isinstance(pattern, str)
            else sum(1 for _ in pattern.finditer(string))
        )
        if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
            matches = min(matches, limit)
        if matches:
            length = len(string) + matches * len(replacement)
            length += replacement.count("$") * len(string)
            if length > MAX_STRING:
                raise _too_long("$replace", length)
        return Functions.replace(string, pattern, replacement, limit)
    if not isinstance(pattern, str) and limit is None and replacement is not None:
        # A function replacement (as the library applies it), counting what it produces.
        produced = [len(string)]

        def replace_fn(match: Any) -> str:
            out = Functions.func_apply(replacement, [Functions.to_jsonata_match(match)])
            if not isinstance(out, str):
                raise jexception.JException("D3012", -1)
            produced[0] += len(out)
            if produced[0] > MAX_STRING:
                raise _too_long("$replace", produced[0])
            return out

        return pattern.sub(replace_fn, string)
    result = Functions.replace(string, pattern, replacement, limit)
    if isinstance(result, str) and len(result) > MAX_STRING:
        raise _too_long("$replace", len(result))
    return result


_REMOVED = {
    "eval": _removed("eval"),
    "pad": Jsonata.JFunction(Jsonata.JLambda(_capped_pad), "<s-ns?:s>"),
    "join": Jsonata.JFunction(Jsonata.JLambda(_capped_join), "<a<s>s?:s>"),
    "replace": Jsonata.JFunction(Jsonata.JLambda(_capped_replace), "<s-(sf)(sf)n?:s>"),
}


class _Budget:
    """Per-evaluation deadline and depth, checked on every node entry."""

    __slots__ = ("deadline", "depth", "max_depth", "timeout_ms")

    def __init__(self, timeout_ms: int, max_depth: int) -> None:
        self.deadline = time.monotonic() + timeout_ms / 1000.0
        self.timeout_ms = timeout_ms
        self.depth = 0
        self.max_depth = max_depth

    def enter(self, _expr: Any, _input: Any, env: Any) -> None:
        if env.is_parallel_call:
            return
        self.depth += 1
        if self.depth > self.max_depth:
            raise jexception.JException(
                f"expression nested deeper than {self.max_depth} levels", -1
            )
        if time.monotonic() > self.deadline:
            raise jexception.JException(f"expression ran longer than {self.timeout_ms} ms", -1)

    def exit(self, _expr: Any, _input: Any, env: Any, _res: Any) -> None:
        if not env.is_parallel_call:
            self.depth -= 1


def to_json_value(value: Any, where: str = "value") -> Any:
    """Normalise a JSONata result into plain JSON types, rejecting anything else."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{where} is not a finite number")
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v, where) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v, where) for v in value]
    raise TypeError(f"{where} is a {type(value).__name__}, not a JSON value")


_SIMPLE_PATH = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)$")
_MISSING = object()


def _simple_path(source: str) -> tuple[str, tuple[str, ...]] | None:
    """``$var.a.b`` as (var, (a, b)): such paths over objects are looked up directly."""
    m = _SIMPLE_PATH.match(source.strip())
    if m is None:
        return None
    return m.group(1), tuple(p for p in m.group(2).split(".") if p)


@attrs.define(eq=False)
class Expression:
    """One compiled JSONata expression; ``evaluate`` is synchronous and bounded."""

    source: str
    uses_kv: bool
    _compiled: _Sandboxed
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    max_depth: int = DEFAULT_MAX_DEPTH
    _path: tuple[str, tuple[str, ...]] | None = None

    @classmethod
    def compile(cls, source: str, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Expression:
        """Parse ``source``; raises :class:`ExpressionError` with the parser's message."""
        try:
            compiled = _Sandboxed(source, _re2_engine)
        except jexception.JException as e:
            raise ExpressionError(source, f"does not parse: {e}") from e
        except Exception as e:  # the parser raises assorted errors on odd input
            raise ExpressionError(source, f"does not parse: {e}") from e
        if compiled.errors:
            raise ExpressionError(source, f"does not parse: {compiled.errors[0]}")
        uses_kv = "$kv" in source
        return cls(source, uses_kv, compiled, timeout_ms=timeout_ms, path=_simple_path(source))

    def evaluate(self, bindings: Mapping[str, Any], context: Any = None) -> Any:
        """Evaluate against ``bindings`` (variable name -> value, without ``$``); bare paths
        such as ``n`` read from ``context``."""
        if self._path is not None and context is None:
            value = self._lookup(bindings)
            if value is not _MISSING:
                return value
        budget = _Budget(self.timeout_ms, self.max_depth)
        frame: dict[str, Any] = dict(bindings)
        frame.update(_REMOVED)
        frame["__evaluate_entry"] = budget.enter
        frame["__evaluate_exit"] = budget.exit
        # jsonata-python dispatches node evaluation to a per-thread "current" instance; make
        # it this one so the sandbox overrides apply.
        Jsonata.CURRENT.jsonata = self._compiled
        try:
            result = self._compiled.evaluate(context, frame)
        except RecursionError as e:
            raise ExpressionError(self.source, "recursion too deep") from e
        except Exception as e:
            raise ExpressionError(self.source, "failed: " + _message(e)) from e
        if isinstance(result, Jsonata.JFunctionCallable) or Utils.is_function(result):
            raise ExpressionError(self.source, "returned a function, not a JSON value")
        try:
            return to_json_value(result, "result")
        except TypeError as e:
            raise ExpressionError(self.source, str(e)) from e

    def _lookup(self, bindings: Mapping[str, Any]) -> Any:
        # Same result as JSONata for a path through objects only; arrays (which JSONata maps
        # over) and anything unusual take the full evaluator.
        assert self._path is not None
        name, keys = self._path
        value = bindings.get(name, _MISSING)
        if value is _MISSING:
            return _MISSING
        for key in keys:
            if value is None:
                return None
            if not isinstance(value, dict):
                return _MISSING
            value = value.get(key)
        if isinstance(value, dict | list) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            return _MISSING
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value


def _message(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:500]


# --- templates -----------------------------------------------------------------------------

Evaluator = Callable[[Mapping[str, Any]], Any]


def split_template(text: str) -> list[str | tuple[str]] | None:
    """Split ``text`` into literal parts (str) and expressions (1-tuples of their source).

    Returns None when ``text`` holds no ``{{``. Braces and quotes inside an expression are
    balanced so that ``{{ {"a": {"b": 1}} }}`` is one expression. Raises ValueError for an
    unterminated ``{{``.
    """
    if "{{" not in text:
        return None
    parts: list[str | tuple[str]] = []
    i = 0
    n = len(text)
    while i < n:
        start = text.find("{{", i)
        if start < 0:
            parts.append(text[i:])
            break
        if start > i:
            parts.append(text[i:start])
        j = start + 2
        depth = 0
        quote: str | None = None
        while j < n:
            ch = text[j]
            if quote:
                if ch == "\\":
                    j += 2
                    continue
                if ch == quote:
                    quote = None
            elif ch in "\"'`":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                if depth == 0 and text.startswith("}}", j):
                    break
                depth -= 1
            j += 1
        else:
            raise ValueError(f"unterminated '{{{{' at position {start}")
        parts.append((text[start + 2 : j].strip(),))
        i = j + 2
    return parts


def stringify(value: Any) -> str:
    """How a value is written into interpolated text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
