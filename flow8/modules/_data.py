"""Data modules: set, template, transform, json-parse, json-stringify."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from flow8.expressions import Expression, ExpressionError, ExpressionLimit

from ._registry import ModuleContext, ModuleSpec
from .exceptions import ModuleFailure

ANY: dict[str, Any] = {}


async def _set(_ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    return args.get("value")


async def _template(_ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    # The engine has already interpolated the {{ }} parts; data inside stays text.
    return {"text": args["text"]}


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> Expression:
    return Expression.compile(source)


async def _transform(_ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    try:
        expr = _compiled(args["expression"])
        data = args.get("input")
        # Bounded, and off the event loop when it is heavy.
        return await expr.evaluate_async({"input": data, "prev": data}, context=data)
    except ExpressionLimit:
        raise  # the engine reports it as a limit (EXPRESSION_LIMIT), not as a module failure
    except ExpressionError as e:
        raise ModuleFailure(str(e)) from e


def _expression_problems(args: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A transform's expression that does not parse, found when the flow is saved."""
    source = args.get("expression")
    if not isinstance(source, str):
        return []  # the schema reports it
    try:
        _compiled(source)
    except ExpressionError as e:
        return [("expression", f"JSONata {e.message}")]
    return []


async def _json_parse(_ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    try:
        return json.loads(args["text"])
    except (json.JSONDecodeError, RecursionError) as e:
        raise ModuleFailure(f"text is not valid JSON: {e}") from e


async def _json_stringify(_ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    indent = args.get("indent")
    if indent:
        text = json.dumps(args.get("value"), indent=indent, ensure_ascii=False)
    else:
        text = json.dumps(args.get("value"), separators=(",", ":"), ensure_ascii=False)
    return {"text": text}


def data_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec(
            app_id="set",
            category="data",
            description="Output the given value (any JSON); handy for shaping data.",
            args_schema={"type": "object", "properties": {"value": ANY}, "required": ["value"]},
            output_schema=ANY,
            idempotent=True,
            run=_set,
        ),
        ModuleSpec(
            app_id="template",
            category="data",
            description="Render a text with {{ }} expressions; outputs {text}.",
            args_schema={
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
            output_schema={"type": "object", "properties": {"text": {"type": "string"}}},
            idempotent=True,
            run=_template,
        ),
        ModuleSpec(
            app_id="transform",
            category="data",
            description=(
                "Evaluate a JSONata expression (literal, not templated) over `input`, bound "
                "as the context and as $input; outputs its result."
            ),
            args_schema={
                "type": "object",
                "properties": {"expression": {"type": "string", "minLength": 1}, "input": ANY},
                "required": ["expression"],
            },
            output_schema=ANY,
            idempotent=True,
            run=_transform,
            literal_args=("expression",),
            static_check=_expression_problems,
        ),
        ModuleSpec(
            app_id="json-parse",
            category="data",
            description="Parse JSON text; outputs the parsed value.",
            args_schema={
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
            output_schema=ANY,
            idempotent=True,
            run=_json_parse,
        ),
        ModuleSpec(
            app_id="json-stringify",
            category="data",
            description="Serialise a value to JSON text; outputs {text}.",
            args_schema={
                "type": "object",
                "properties": {
                    "value": ANY,
                    "indent": {"type": "integer", "minimum": 0, "maximum": 8},
                },
                "required": ["value"],
            },
            output_schema={"type": "object", "properties": {"text": {"type": "string"}}},
            idempotent=True,
            run=_json_stringify,
        ),
    ]
