"""Key-value modules: kv-set, kv-get, kv-append, kv-delete.

Values are stored encrypted at rest; an entry marked secret is also masked in the records
of the plays that use it (see ``flow8.engine._redact``). ``scope`` is ``global`` (the
company), ``flow_group`` (the flow's group; refused in a flow without one) or ``flow``
(default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flow8.domain import no_flow_group

from ._registry import ModuleContext, ModuleSpec
from .exceptions import ModuleFailure

SCOPES = ["global", "flow_group", "flow"]
_KEY = {"type": "string", "minLength": 1, "maxLength": 256}
_SCOPE = {"enum": SCOPES}
_TTL = {"type": "number", "exclusiveMinimum": 0}


def _scope(ctx: ModuleContext, args: Mapping[str, Any]) -> str:
    scope = str(args.get("scope") or "flow")
    if scope == "flow_group" and ctx.kv.group is None:
        # A literal scope is refused when the flow is saved; one that came from an
        # expression fails here, in the same words, rather than using another scope.
        raise ModuleFailure(no_flow_group(ctx.ref))
    return scope


async def _kv_set(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    scope = _scope(ctx, args)
    await ctx.kv.set(
        scope, args["key"], args.get("value"), args.get("ttlSeconds"), args.get("secret")
    )
    return {"key": args["key"], "scope": scope}


async def _kv_get(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    found, value = await ctx.kv.get(_scope(ctx, args), args["key"])
    return {"value": value if found else args.get("default"), "found": found}


async def _kv_append(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    count = await ctx.kv.append(
        _scope(ctx, args), args["key"], args.get("value"), args.get("ttlSeconds")
    )
    return {"key": args["key"], "count": count}


async def _kv_delete(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    deleted = await ctx.kv.delete(_scope(ctx, args), args["key"])
    return {"key": args["key"], "deleted": deleted}


def kv_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec(
            app_id="kv-set",
            category="kv",
            description=(
                "Store `value` under `key` (optional `ttlSeconds`); `secret: true` marks the "
                "entry secret: masked (***) in every play's records from then on."
            ),
            args_schema={
                "type": "object",
                "properties": {
                    "key": _KEY,
                    "value": {},
                    "scope": _SCOPE,
                    "ttlSeconds": _TTL,
                    "secret": {"type": "boolean"},
                },
                "required": ["key", "value"],
            },
            output_schema={"type": "object"},
            idempotent=True,
            run=_kv_set,
        ),
        ModuleSpec(
            app_id="kv-get",
            category="kv",
            description="Read `key`; outputs {value, found} (`default` when not found).",
            args_schema={
                "type": "object",
                "properties": {"key": _KEY, "scope": _SCOPE, "default": {}},
                "required": ["key"],
            },
            output_schema={
                "type": "object",
                "properties": {"value": {}, "found": {"type": "boolean"}},
            },
            idempotent=True,
            run=_kv_get,
        ),
        ModuleSpec(
            app_id="kv-append",
            category="kv",
            description="Append `value` to the list under `key`; outputs {key, count}.",
            args_schema={
                "type": "object",
                "properties": {"key": _KEY, "value": {}, "scope": _SCOPE, "ttlSeconds": _TTL},
                "required": ["key", "value"],
            },
            output_schema={"type": "object"},
            # Appending twice appends twice: never re-run after a crash.
            idempotent=False,
            run=_kv_append,
        ),
        ModuleSpec(
            app_id="kv-delete",
            category="kv",
            description="Delete `key`; outputs {key, deleted}.",
            args_schema={
                "type": "object",
                "properties": {"key": _KEY, "scope": _SCOPE},
                "required": ["key"],
            },
            output_schema={"type": "object"},
            idempotent=True,
            run=_kv_delete,
        ),
    ]
