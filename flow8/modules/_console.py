"""console-log: a line on the play's log, streamed as an event and kept as the step's
output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._registry import ModuleContext, ModuleSpec

LEVELS = ["debug", "info", "warning", "error"]


async def _log(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    console = await ctx.component("console")
    line = await console.call(
        "log",
        {
            "level": args.get("level") or "info",
            "message": args.get("message", ""),
            "data": args.get("data"),
        },
    )
    ctx.log_line(line)
    return line


def console_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec(
            app_id="console-log",
            category="console",
            description=(
                "Write a line on the play's log (`level`: debug, info, warning, error): "
                "streamed to whoever watches the play (event `play:log`) and kept as the "
                "step's output."
            ),
            args_schema={
                "type": "object",
                "properties": {
                    "level": {"enum": LEVELS},
                    "message": {"type": "string", "maxLength": 10000},
                    "data": {},
                },
                "required": ["message"],
                "additionalProperties": False,
            },
            output_schema={
                "type": "object",
                "properties": {
                    "level": {"type": "string"},
                    "message": {"type": "string"},
                    "data": {},
                    "at": {"type": "number"},
                },
            },
            idempotent=True,
            run=_log,
            components=("console",),
            example={"level": "info", "message": "order {{ $prev.order.id }} received"},
        )
    ]
