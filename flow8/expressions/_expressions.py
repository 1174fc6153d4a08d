"""JSONata expressions inside ``{{ }}``: compiled once per flow version, evaluated bounded.

A string that is exactly one ``{{ expr }}`` yields the expression's typed value; text mixed
with expressions interpolates them as text. Values produced by an evaluation (play input,
step outputs, KV values) are data: they are never parsed for ``{{`` again.

Sandboxing: JSONata evaluates over plain JSON values, so there is no host object to reach.
``$eval`` (parse-and-run a string, which would turn data into code) is removed, regexes run
on RE2 (linear time, no catastrophic backtracking), results must be JSON values (no
functions escape), and names starting with ``__`` (where the evaluator keeps its budget
hooks) cannot be bound. Each evaluation runs under a budget (``_limits``, ``_budget``):
a deadline and a nesting depth checked on every node, and a memory budget charged by
everything it builds; every built-in is guarded (``_builtins``) and the operators that
build data are bounded (``_sandbox``). ``evaluate_async`` keeps the event loop free
(``_offload``); ``evaluate`` is the same evaluation, synchronous, for the CLI and tests.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import re2  # type: ignore[import-untyped]
from jsonata import jexception
from jsonata.functions import Functions
from jsonata.jsonata import Jsonata
from jsonata.regex_engine import RegexFlags
from jsonata.utils import Utils

from ._budget import Budget, LimitHit, Slice, SliceSpent, install
from ._explain import explain
from ._jsontext import NotJson, stringify, to_json
from ._limits import MAX_RANGE, MAX_STRING, expression_limits
from ._offload import run_bounded, run_in_thread
from ._sandbox import Sandboxed
from .exceptions import ExpressionError, ExpressionLimit

__all__ = ["MAX_RANGE", "MAX_STRING", "MISSING", "Expression", "compile_regex", "stringify"]

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
        # re2 gives its reason as bytes: shown as text, never as b'...'.
        reason = e.args[0] if e.args else ""
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise jexception.JException(f"Invalid regular expression /{pattern}/: {reason}", 0) from e


@functools.lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> Any:
    """An RE2 pattern (linear-time) for the ``regex`` filter operator (cached)."""
    return re2.compile(pattern, _RE2_OPTIONS)


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
_RESERVED = re.compile(r"\$\s*__")
MISSING = object()  # what ``Expression.direct`` returns when it cannot tell
_ENTRY = "__evaluate_entry"
_EXIT = "__evaluate_exit"


def _simple_path(source: str) -> tuple[str, tuple[str, ...]] | None:
    """``$var.a.b`` as (var, (a, b)): such paths over objects are looked up directly."""
    m = _SIMPLE_PATH.match(source.strip())
    if m is None:
        return None
    return m.group(1), tuple(p for p in m.group(2).split(".") if p)


@attrs.define(eq=False)
class Expression:
    """One compiled JSONata expression. ``evaluate_async`` is what the engine calls (it
    never holds the event loop for long); ``evaluate`` is synchronous. Both are bounded
    by the configured ``ExpressionLimits``; ``timeout_ms``/``max_depth`` override them
    for this expression."""

    source: str
    uses_kv: bool
    _compiled: Sandboxed
    timeout_ms: int | None = None
    max_depth: int | None = None
    _path: tuple[str, tuple[str, ...]] | None = None
    _home: int = attrs.field(factory=threading.get_ident)
    _local: threading.local = attrs.field(factory=threading.local)

    @classmethod
    def compile(cls, source: str, *, timeout_ms: int | None = None) -> Expression:
        """Parse ``source``; raises :class:`ExpressionError` with the parser's message."""
        if _RESERVED.search(source):
            raise ExpressionError(source, "does not parse: names starting with $__ are reserved")
        try:
            compiled = Sandboxed(source, _re2_engine)
        except Exception as e:  # the parser raises assorted errors on odd input
            raise ExpressionError(source, f"does not parse: {explain(e, source)}") from e
        if compiled.errors:
            first = compiled.errors[0]
            reason = explain(first, source) if isinstance(first, BaseException) else str(first)
            raise ExpressionError(source, f"does not parse: {reason}")
        uses_kv = "$kv" in source
        return cls(source, uses_kv, compiled, timeout_ms=timeout_ms, path=_simple_path(source))

    @property
    def has_direct_path(self) -> bool:
        return self._path is not None

    def evaluate(self, bindings: Mapping[str, Any], context: Any = None) -> Any:
        """Evaluate against ``bindings`` (variable name -> value, without ``$``) on this
        thread, with the whole budget; bare paths such as ``n`` read from ``context``."""
        if self._path is not None and context is None:
            value = self.direct(bindings)
            if value is not MISSING:
                return value
        return self.run(bindings, context, None)

    async def evaluate_async(self, bindings: Mapping[str, Any], context: Any = None) -> Any:
        """Evaluate without holding the event loop: on it within a slice of the budget,
        else again in a worker thread. Raises :class:`ExpressionLimit` when a limit is
        exceeded, :class:`ExpressionError` for any other failure."""
        if self._path is not None and context is None:
            value = self.direct(bindings)
            if value is not MISSING:
                return value
        return await run_bounded(functools.partial(self._run_on, context), bindings)

    async def evaluate_in_thread(self, bindings: Mapping[str, Any], context: Any = None) -> Any:
        """Evaluate in a worker thread (bindings may call back into Trio there)."""
        return await run_in_thread(functools.partial(self._run_on, context), bindings)

    def _run_on(self, context: Any, bindings: Mapping[str, Any], slice_: Slice | None) -> Any:
        return self.run(bindings, context, slice_)

    def run(
        self,
        bindings: Mapping[str, Any],
        context: Any,
        slice_: Slice | None,
        text: bool = False,
    ) -> Any:
        """One bounded evaluation (``slice_``: on the event loop, within it); with ``text``
        the result as interpolated text, written under the same budget."""
        budget = Budget(expression_limits(), slice_, self.timeout_ms, self.max_depth)
        frame: dict[str, Any] = dict(bindings)
        frame[_ENTRY] = budget.enter
        frame[_EXIT] = budget.exit
        compiled = self._instance()
        # jsonata-python dispatches node evaluation to a per-thread "current" instance;
        # make it this one so the sandbox's overrides apply.
        Jsonata.CURRENT.jsonata = compiled
        previous = install(budget)
        # Failures are raised once the evaluation is unwound, without the library's
        # exception as context: its traceback holds the evaluation's frames, and with them
        # everything it built, which would then be freed wherever the error is dropped (the
        # event loop) instead of here.
        failure: ExpressionError | None = None
        try:
            result = compiled.evaluate(context, frame)
            if Functions.is_lambda(result) or Utils.is_function(result):
                failure = ExpressionError(self.source, "returned a function, not a JSON value")
            else:
                value = to_json(result, budget)
                return stringify(value, budget) if text else value
        except SliceSpent:
            raise
        except LimitHit as e:
            failure = ExpressionLimit(self.source, e.limit, e.detail)
        except RecursionError:
            failure = ExpressionLimit(
                self.source, "depth", "it recursed deeper than the interpreter allows"
            )
        except ExpressionError as e:
            failure = e.with_traceback(None)
        except NotJson as e:
            failure = ExpressionError(self.source, str(e))
        except Exception as e:
            # In JSONata's words, never Python's (``_explain``): a user reads this.
            failure = ExpressionError(self.source, "failed: " + explain(e, self.source))
        finally:
            install(previous)
            if slice_ is not None:
                slice_.memory -= budget.used
        assert failure is not None
        try:
            raise failure
        finally:
            # The error's traceback holds this frame; were `failure` still set in it, the
            # two would be a reference cycle, kept (with the evaluation's frames) until a
            # full collection.
            failure = None

    def _instance(self) -> Sandboxed:
        if threading.get_ident() == self._home:
            return self._compiled
        compiled: Sandboxed | None = getattr(self._local, "compiled", None)
        if compiled is None:
            compiled = self._local.compiled = self._compiled.thread_copy()
        return compiled

    def direct(self, bindings: Mapping[str, Any]) -> Any:
        """A ``$var.a.b`` expression's value read directly from ``bindings``, or ``MISSING``
        where the full evaluator is needed. The same result as JSONata for a path through
        objects only; arrays (which JSONata maps over) and anything unusual are MISSING."""
        if self._path is None:
            return MISSING
        name, keys = self._path
        value = bindings.get(name, MISSING)
        if value is MISSING:
            return MISSING
        for key in keys:
            if value is None:
                return None
            if not isinstance(value, dict):
                return MISSING
            value = value.get(key)
        if isinstance(value, dict | list) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            return MISSING
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value


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
