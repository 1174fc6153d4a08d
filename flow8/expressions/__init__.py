"""Expressions: JSONata evaluation, ``{{ }}`` templates and step filters, each bounded.

Pure: values in, values out, no store, no plays. The engine compiles a flow's arguments
and filters with it and evaluates them per step; the ``transform`` module evaluates its
expression. See README.md in this package for the limits and how an evaluation is kept off
the event loop.
"""

from __future__ import annotations

from ._background import background
from ._expressions import Expression, split_template, to_json_value
from ._filters import (
    CompiledFilter,
    FilterError,
    apply_operator,
    cast_value,
    compile_filters,
    filters_pass,
    filters_pass_async,
)
from ._limits import ExpressionLimits, configure_expressions, expression_limits
from ._templates import CompiledValue, compile_value, expression_problems
from .exceptions import ExpressionError, ExpressionLimit

__all__ = [
    "CompiledFilter",
    "CompiledValue",
    "Expression",
    "ExpressionError",
    "ExpressionLimit",
    "ExpressionLimits",
    "FilterError",
    "apply_operator",
    "background",
    "cast_value",
    "compile_filters",
    "compile_value",
    "configure_expressions",
    "expression_limits",
    "expression_problems",
    "filters_pass",
    "filters_pass_async",
    "split_template",
    "to_json_value",
]
