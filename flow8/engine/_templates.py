"""Compiling flowlet arguments (nested JSON with ``{{ }}`` strings) into evaluators."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._exceptions import ExpressionError
from ._expressions import Expression, split_template, stringify

Bindings = Mapping[str, Any]
_Eval = Callable[[Bindings], Any]


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
        """Evaluate; raises :class:`ExpressionError` located at the failing field."""
        if self._evaluator is None:
            return self.value
        return self._evaluator(bindings)


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


def _located(expr: Expression, path: str) -> _Eval:
    evaluate = expr.evaluate

    def run(bindings: Bindings) -> Any:
        try:
            return evaluate(bindings)
        except ExpressionError as e:
            raise e.at(path) from e.__cause__

    return run


def _compile(value: Any, path: str, found: list[tuple[str, Expression]]) -> _Eval | None:
    if isinstance(value, str):
        return _compile_string(value, path, found)
    if isinstance(value, Mapping):
        items = [(k, v, _compile(v, f"{path}.{k}", found)) for k, v in value.items()]
        if all(ev is None for _, _, ev in items):
            return None
        parts = tuple(items)

        def eval_dict(b: Bindings) -> Any:
            return {k: (v if ev is None else ev(b)) for k, v, ev in parts}

        return eval_dict
    if isinstance(value, list):
        elems = [(v, _compile(v, f"{path}[{i}]", found)) for i, v in enumerate(value)]
        if all(ev is None for _, ev in elems):
            return None
        seq = tuple(elems)

        def eval_list(b: Bindings) -> Any:
            return [v if ev is None else ev(b) for v, ev in seq]

        return eval_list
    return None


def _compile_string(text: str, path: str, found: list[tuple[str, Expression]]) -> _Eval | None:
    try:
        parts = split_template(text)
    except ValueError as e:
        raise ExpressionError(text, str(e), where=path) from e
    if parts is None:
        return None
    compiled: list[str | _Eval] = []
    for part in parts:
        if isinstance(part, str):
            compiled.append(part)
            continue
        source = part[0]
        if not source:
            raise ExpressionError(source, "is empty", where=path)
        try:
            expr = Expression.compile(source)
        except ExpressionError as e:
            raise e.at(path) from e.__cause__
        found.append((path, expr))
        compiled.append(_located(expr, path))
    evaluators = [p for p in compiled if not isinstance(p, str)]
    if len(evaluators) == 1 and all(not p.strip() for p in parts if isinstance(p, str)):
        # One expression, at most whitespace around it: the typed result is the value.
        return evaluators[0]
    pieces = tuple(compiled)

    def interpolate(b: Bindings) -> str:
        return "".join(p if isinstance(p, str) else stringify(p(b)) for p in pieces)

    return interpolate
