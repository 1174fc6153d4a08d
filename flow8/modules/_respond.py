"""The ``respond`` module: a flow shaping the answer a synchronous channel request gets.

A sync http channel route answers the play's output as JSON 200. A flow whose last step is a
``respond`` step answers that step's ``statusCode``, ``headers`` and ``body`` instead (a
webhook that must answer 204, a ``text/plain`` challenge, a redirect). The module itself only
normalises its arguments into its output; the channel listener reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._registry import ModuleContext, ModuleSpec

RESPOND = "respond"


async def _respond(_ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    headers = args.get("headers") or {}
    return {
        "statusCode": int(args.get("statusCode", 200)),
        "headers": {str(k): str(v) for k, v in headers.items()},
        "body": args.get("body"),
    }


def respond_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec(
            app_id=RESPOND,
            category="utility",
            description=(
                "Shape the answer of a synchronous channel request: when a play started by "
                "an http channel route in `sync` mode ends with this step, the caller gets "
                "`statusCode` (default 200), `headers` and `body` (a string is sent as is, "
                "anything else as JSON) instead of the play's output as JSON. Elsewhere the "
                "step just outputs `{statusCode, headers, body}`."
            ),
            args_schema={
                "type": "object",
                "properties": {
                    "statusCode": {"type": "integer", "minimum": 100, "maximum": 599},
                    "headers": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                    },
                    "body": {},
                },
            },
            output_schema={
                "type": "object",
                "properties": {
                    "statusCode": {"type": "integer"},
                    "headers": {"type": "object"},
                    "body": {},
                },
            },
            idempotent=True,
            run=_respond,
            example={
                "statusCode": 201,
                "headers": {"X-Order": "{{ $prev.args.params.id }}"},
                "body": {"received": "{{ $prev.args.body }}"},
            },
        ),
    ]
