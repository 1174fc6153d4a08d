"""Utility modules: delay, fail, noop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._registry import ModuleContext, ModuleSpec
from .exceptions import ModuleFailure


async def _delay(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    ms = args.get("ms")
    seconds = float(args["seconds"]) if ms is None else ms / 1000
    await ctx.sleep(seconds)
    return {"delayedMs": round(seconds * 1000)}


def _one_duration(args: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Both ``ms`` and ``seconds``: one of them would be ignored, and which one is a guess."""
    if "ms" in args and "seconds" in args:
        return [("", "give either 'ms' or 'seconds', not both")]
    return []


async def _fail(_ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    raise ModuleFailure(args.get("message") or "failed by the fail module")


async def _noop(_ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    return args.get("value")


def utility_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec(
            app_id="delay",
            category="utility",
            description=(
                "Wait `ms` milliseconds or `seconds` seconds (exactly one of them). Long "
                "waits free the play's actor: the play is persisted and woken by the "
                "dispatcher."
            ),
            args_schema={
                "type": "object",
                # The catalog's readers see the rule; `args_check` enforces it (plain
                # `not` would cost the fast validator and answer in jsonschema's words).
                "description": "Exactly one of `ms` and `seconds`.",
                "properties": {
                    "ms": {"type": "integer", "minimum": 0, "maximum": 31_536_000_000},
                    "seconds": {"type": "number", "minimum": 0, "maximum": 31_536_000},
                },
                "anyOf": [{"required": ["ms"]}, {"required": ["seconds"]}],
            },
            output_schema={"type": "object", "properties": {"delayedMs": {"type": "integer"}}},
            idempotent=True,
            run=_delay,
            args_check=_one_duration,
        ),
        ModuleSpec(
            app_id="fail",
            category="utility",
            description="Fail the step with `message`.",
            args_schema={"type": "object", "properties": {"message": {"type": "string"}}},
            output_schema={},
            idempotent=True,
            run=_fail,
        ),
        ModuleSpec(
            app_id="noop",
            category="utility",
            description="Do nothing; outputs `value` if given, else null.",
            args_schema={"type": "object", "properties": {"value": {}}},
            output_schema={},
            idempotent=True,
            run=_noop,
        ),
    ]
