"""Flowlet filters: conditions (with cast and and/or chaining) deciding whether a step runs.

``filters_pass_async`` evaluates a step's filters as ``CompiledValue.resolve_async`` does
its arguments: all of them on the event loop within one slice of the budget, or all again
in a worker thread. Comparing or writing out large values (``contains`` over a long array,
a string cast of a big object) is left to the worker thread too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import attrs

from flow8.domain import Cast, FilterMode, FilterOperator, FilterSpec

from ._budget import Budget, LimitHit, Slice, SliceSpent
from ._explain import describe, json_type, shown
from ._expressions import compile_regex
from ._jsontext import is_small, stringify
from ._limits import expression_limits
from ._offload import run_bounded
from ._templates import Bindings, CompiledValue, compile_value
from .exceptions import ExpressionError, ExpressionLimit


class FilterError(ValueError):
    """A filter cannot be applied (bad cast, bad regex). Its message is for a user: values
    as JSON and types by their JSON names, never Python's."""


def _quoted(value: Any) -> str:
    text = shown(value)
    return text if text is not None else describe(value)


def cast_value(value: Any, cast: Cast | None, budget: Budget | None = None) -> Any:
    if cast is None:
        return value
    if cast is Cast.STRING:
        return stringify(value, budget)
    if cast is Cast.NUMBER:
        if isinstance(value, bool):
            return 1 if value else 0
        if isinstance(value, int | float):
            return value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise FilterError(f"cannot cast {_quoted(value)} to a number") from None
            if not math.isfinite(number):
                raise FilterError(f"cannot cast {_quoted(value)} to a finite number")
            return int(number) if number.is_integer() else number
        raise FilterError(f"cannot cast {describe(value)} to a number")
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off", ""):
            return False
        raise FilterError(f"cannot cast {_quoted(value)} to a boolean")
    if value is None:
        return False
    if isinstance(value, bool | int | float):
        return bool(value)
    return len(value) > 0 if isinstance(value, list | dict) else True


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def _ordered(left: Any, right: Any) -> tuple[Any, Any]:
    if isinstance(left, bool) or isinstance(right, bool):
        raise FilterError("booleans cannot be ordered")
    numbers = isinstance(left, int | float) and isinstance(right, int | float)
    strings = isinstance(left, str) and isinstance(right, str)
    if not (numbers or strings):
        raise FilterError(
            f"cannot order {json_type(left)} against {json_type(right)} "
            "(cast both to number or string)"
        )
    return left, right


def apply_operator(op: FilterOperator, left: Any, right: Any, budget: Budget | None = None) -> bool:
    """The truth of ``left <op> right``; raises :class:`FilterError` when meaningless.
    With a ``budget``, values written out as text are bounded by it."""
    if op is FilterOperator.EQ:
        return bool(left == right and isinstance(left, bool) == isinstance(right, bool))
    if op is FilterOperator.NEQ:
        return not apply_operator(FilterOperator.EQ, left, right, budget)
    if op in (FilterOperator.GT, FilterOperator.GTE, FilterOperator.LT, FilterOperator.LTE):
        a, b = _ordered(left, right)
        if op is FilterOperator.GT:
            return bool(a > b)
        if op is FilterOperator.GTE:
            return bool(a >= b)
        if op is FilterOperator.LT:
            return bool(a < b)
        return bool(a <= b)
    if op in (FilterOperator.CONTAINS, FilterOperator.NOT_CONTAINS):
        if isinstance(left, str):
            found = stringify(right, budget) in left
        elif isinstance(left, list):
            found = right in left
        elif isinstance(left, Mapping):
            found = isinstance(right, str) and right in left
        elif left is None:
            found = False
        else:
            raise FilterError(f"'contains' needs a string, array or object, got {describe(left)}")
        return found if op is FilterOperator.CONTAINS else not found
    if op is FilterOperator.IS_EMPTY:
        return _empty(left)
    if op is FilterOperator.NOT_EMPTY:
        return not _empty(left)
    if op is FilterOperator.REGEX:
        if not isinstance(right, str):
            raise FilterError("'regex' needs a pattern string as rightValue")
        try:
            pattern = compile_regex(right)
        except Exception as e:
            raise FilterError(f"invalid regex {_quoted(right)}: {_regex_reason(e)}") from e
        return pattern.search(stringify(left, budget)) is not None
    raise FilterError(f"unknown operator {op!r}")


def _regex_reason(error: Exception) -> str:
    """RE2's reason (bytes, from its C++ parser) as text."""
    reason = error.args[0] if error.args else ""
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    return str(reason) or "it does not compile"


@attrs.frozen
class CompiledFilter:
    spec: FilterSpec
    left: CompiledValue
    right: CompiledValue
    where: str = ""  # the filter in the flow (``ref.filters[0]``), for its errors

    def check(self, bindings: Bindings, slice_: Slice | None = None) -> bool:
        left = self.left.evaluate(bindings, slice_)
        right = self.right.evaluate(bindings, slice_)
        budget = None
        if not (is_small(left) and is_small(right)):
            if slice_ is not None:
                raise SliceSpent()  # comparing or writing out big values: in a worker thread
            budget = Budget(expression_limits(), None)
        left = cast_value(left, self.spec.cast, budget)
        if self.spec.operator not in (FilterOperator.REGEX,) and right is not None:
            right = cast_value(right, self.spec.cast, budget)
        return apply_operator(self.spec.operator, left, right, budget)


def compile_filters(specs: tuple[FilterSpec, ...], where: str) -> tuple[CompiledFilter, ...]:
    return tuple(
        CompiledFilter(
            s,
            compile_value(s.left_value, f"{where}.filters[{i}].leftValue"),
            compile_value(s.right_value, f"{where}.filters[{i}].rightValue"),
            f"{where}.filters[{i}]",
        )
        for i, s in enumerate(specs)
    )


def filters_pass(
    filters: tuple[CompiledFilter, ...], bindings: Bindings, slice_: Slice | None = None
) -> bool:
    """Evaluate left to right; each filter's ``mode`` joins it to the result so far.

    Raises :class:`FilterError` or :class:`ExpressionError` naming the filter.
    """
    result = True
    for i, f in enumerate(filters):
        try:
            value = f.check(bindings, slice_)
        except FilterError as e:
            raise FilterError(f"{f.where or f'filters[{i}]'} ({f.spec.operator}): {e}") from e
        except LimitHit as e:
            raise ExpressionLimit(
                str(f.spec.left_value), e.limit, e.detail, where=f.where or f"filters[{i}]"
            ) from None
        except ExpressionError:
            raise
        if i == 0:
            result = value
        elif f.spec.mode is FilterMode.OR:
            result = result or value
        else:
            result = result and value
    return result


async def filters_pass_async(filters: tuple[CompiledFilter, ...], bindings: Bindings) -> bool:
    """``filters_pass`` without holding the event loop (see ``_offload``)."""
    if not filters:
        return True
    return await run_bounded(functools.partial(filters_pass, filters), bindings)
