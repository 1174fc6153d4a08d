"""Compiling flowlet arguments (nested JSON with ``{{ }}`` strings) into evaluators.

A compiled value is resolved in one go: ``resolve_async`` runs all its expressions on the
event loop within one slice of the budget, or all of them again in a worker thread (each
with its whole budget) when the slice is spent; ``resolve`` runs them on this thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._budget import Slice
from ._expressions import MISSING, Expression, split_template
from ._jsontext import stringify
from ._limits import MAX_STRING
from ._offload import run_bounded, run_in_thread
from .exceptions import ExpressionError, ExpressionLimit

Bindings = Mapping[str, Any]
_Eval = Callable[[Bindings, Slice | None], Any]


@attrs.frozen
class CompiledValue:
    """A value tree whose ``{{ }}`` strings are compiled; ``resolve`` evaluates them.

    Constant subtrees are returned as they are (shared, so callers must not mutate them).
    """

    value: Any
    expressions: tuple[tuple[str, Expression], ...]
    _evaluator: _Eval | None

    @property
    def constant(self) -> bool:
        return self._evaluator is None

    @property
    def uses_kv(self) -> bool:
        return any(e.uses_kv for _, e in self.expressions)

    def resolve(self, bindings: Bindings) -> Any:
        """Evaluate on this thread; raises :class:`ExpressionError` (or its subclass
        :class:`ExpressionLimit`) located at the failing field."""
        if self._evaluator is None:
            return self.value
        return self._evaluator(bindings, None)

    def evaluate(self, bindings: Bindings, slice_: Slice | None) -> Any:
        """Evaluate within ``slice_`` (on the event loop) or, with None, the whole budget."""
        if self._evaluator is None:
            return self.value
        return self._evaluator(bindings, slice_)

    async def resolve_async(self, bindings: Bindings) -> Any:
        """Evaluate without holding the event loop (see ``_offload``)."""
        evaluator = self._evaluator
        if evaluator is None:
            return self.value
        return await run_bounded(evaluator, bindings)

    async def resolve_in_thread(self, bindings: Bindings) -> Any:
        """Evaluate in a worker thread: for bindings that call back into Trio (``$kv``)."""
        evaluator = self._evaluator
        if evaluator is None:
            return self.value
        return await run_in_thread(evaluator, bindings)


def compile_value(value: Any, where: str) -> CompiledValue:
    """Compile ``value`` found at ``where`` (e.g. ``parse.args``).

    Raises :class:`ExpressionError` (located) for the first expression that does not parse;
    use :func:`expression_problems` to collect all of them.
    """
    found: list[tuple[str, Expression]] = []
    evaluator = _compile(value, where, found)
    return CompiledValue(value, tuple(found), evaluator)


def expression_problems(value: Any, where: str) -> list[ExpressionError]:
    """Every expression in ``value`` that does not parse (for flow validation)."""
    problems: list[ExpressionError] = []

    def walk(v: Any, path: str) -> None:
        if isinstance(v, str):
            try:
                _compile(v, path, [])
            except ExpressionError as e:
                problems.append(e)
        elif isinstance(v, Mapping):
            for k, item in v.items():
                walk(item, f"{path}.{k}")
        elif isinstance(v, list):
            for i, item in enumerate(v):
                walk(item, f"{path}[{i}]")

    walk(value, where)
    return problems


def _located(expr: Expression, path: str, text: bool) -> _Eval:
    run = expr.run
    direct = expr.direct if expr.has_direct_path else None

    def evaluate(bindings: Bindings, slice_: Slice | None) -> Any:
        if direct is not None:
            value = direct(bindings)
            if value is not MISSING:
                return stringify(value) if text else value
        try:
            return run(bindings, None, slice_, text)
        except ExpressionError as e:
            raise e.at(path) from e.__cause__

    return evaluate


def _compile(value: Any, path: str, found: list[tuple[str, Expression]]) -> _Eval | None:
    if isinstance(value, str):
        return _compile_string(value, path, found)
    if isinstance(value, Mapping):
        items = [(k, v, _compile(v, f"{path}.{k}", found)) for k, v in value.items()]
        if all(ev is None for _, _, ev in items):
            return None
        parts = tuple(items)

        def eval_dict(b: Bindings, s: Slice | None) -> Any:
            return {k: (v if ev is None else ev(b, s)) for k, v, ev in parts}

        return eval_dict
    if isinstance(value, list):
        elems = [(v, _compile(v, f"{path}[{i}]", found)) for i, v in enumerate(value)]
        if all(ev is None for _, ev in elems):
            return None
        seq = tuple(elems)

        def eval_list(b: Bindings, s: Slice | None) -> Any:
            return [v if ev is None else ev(b, s) for v, ev in seq]

        return eval_list
    return None


def _compile_string(text: str, path: str, found: list[tuple[str, Expression]]) -> _Eval | None:
    try:
        parts = split_template(text)
    except ValueError as e:
        raise ExpressionError(text, str(e), where=path) from e
    if parts is None:
        return None
    sources: list[str | Expression] = []
    for part in parts:
        if isinstance(part, str):
            sources.append(part)
            continue
        source = part[0]
        if not source:
            raise ExpressionError(source, "is empty", where=path)
        try:
            expr = Expression.compile(source)
        except ExpressionError as e:
            raise e.at(path) from e.__cause__
        found.append((path, expr))
        sources.append(expr)
    exprs = [p for p in sources if isinstance(p, Expression)]
    if len(exprs) == 1 and all(not p.strip() for p in sources if isinstance(p, str)):
        # One expression, at most whitespace around it: the typed result is the value.
        return _located(exprs[0], path, text=False)
    pieces = tuple(p if isinstance(p, str) else _located(p, path, text=True) for p in sources)

    def interpolate(b: Bindings, s: Slice | None) -> str:
        out = [p if isinstance(p, str) else p(b, s) for p in pieces]
        length = sum(map(len, out))
        if length > MAX_STRING:
            raise ExpressionLimit(
                text,
                "string",
                f"the text would be {length} characters, longer than the {MAX_STRING} allowed",
                where=path,
            )
        return "".join(out)

    return interpolate
