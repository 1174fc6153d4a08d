"""Control modules: router, iterator, aggregator, subflow, enumeration.

``iterator`` and ``aggregator`` shape the play: the engine runs the steps between them once
per item and hands the aggregator every iteration's outputs (as ``iterations``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import trio

from ._registry import ModuleContext, ModuleSpec
from .exceptions import ModuleFailure

MAX_ENUMERATION = 100_000
ITERATOR = "iterator"
AGGREGATOR = "aggregator"
SUBFLOW = "subflow"


def _truthy(value: Any) -> bool:
    # JSONata truthiness: empty string/array/object, 0, false and null are false.
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


async def _router(_ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    matched = [r["label"] for r in args["routes"] if _truthy(r.get("condition"))]
    if not matched and args.get("default") is not None:
        matched = [args["default"]]
    if args.get("mode", "first") == "first":
        matched = matched[:1]
    return {"route": matched[0] if matched else None, "routes": matched}


# Items a control module handles between two checkpoints: long lists are built in pieces so
# that other plays and requests are served meanwhile (10,000 items take a few ms here).
CHUNK = 10_000


async def _iterator(_ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    items = list(args["items"])
    size = args.get("batchSize")
    if size:
        batches = []
        for start in range(0, len(items), size * CHUNK):
            part = items[start : start + size * CHUNK]
            batches += [part[i : i + size] for i in range(0, len(part), size)]
            await trio.lowlevel.checkpoint()
        items = batches
    return {"items": items, "total": len(items)}


def read_path(value: Any, path: list[str]) -> Any:
    """Follow ``path`` through objects (keys) and arrays (integer indexes); None if absent."""
    for part in path:
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isascii() and part.lstrip("-").isdigit():
            idx = int(part)
            value = value[idx] if -len(value) <= idx < len(value) else None
        else:
            return None
    return value


async def _aggregator(_ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    iterations: list[Mapping[str, Any]] = args.get("iterations") or []
    field = args.get("field")
    if field:
        ref, *rest = field.split(".")
    else:
        ref, rest = args.get("lastRef") or "", []
    items = []
    for n, outputs in enumerate(iterations, 1):
        if ref in outputs:  # else the step was filtered (or routed away) in this iteration
            items.append(read_path(outputs[ref], rest))
        if n % CHUNK == 0:
            await trio.lowlevel.checkpoint()
    return {"items": items, "count": len(items)}


async def _subflow(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    return await ctx.run_subflow(
        args["flowId"],
        args.get("args"),
        wait=not args.get("async", False),
        timeout=args.get("timeout"),
    )


async def _enumeration(_ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    start, stop = args["from"], args["to"]
    step = args.get("step", 1 if stop >= start else -1)
    if step == 0:
        raise ModuleFailure("step must not be 0")
    count = math.floor((stop - start) / step) + 1
    if count > MAX_ENUMERATION:
        raise ModuleFailure(f"enumeration of {count} items exceeds {MAX_ENUMERATION}")
    items: list[Any] = []
    for first in range(0, max(count, 0), CHUNK):
        part = (start + i * step for i in range(first, min(first + CHUNK, count)))
        items += [int(x) if float(x).is_integer() else x for x in part]
        await trio.lowlevel.checkpoint()
    return {"items": items}


_NUM = {"type": "number"}


def control_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec(
            app_id="router",
            category="control",
            description=(
                "Label the route: `routes` [{condition, label}] in order, `mode` first (default)"
                " or all, optional `default` label; outputs {route, routes}. Later steps "
                "filter on $prev.<ref>.route."
            ),
            args_schema={
                "type": "object",
                "properties": {
                    "routes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"condition": {}, "label": {"type": "string"}},
                            "required": ["condition", "label"],
                        },
                    },
                    "mode": {"enum": ["first", "all"]},
                    "default": {"type": "string"},
                },
                "required": ["routes"],
            },
            output_schema={"type": "object"},
            idempotent=True,
            run=_router,
        ),
        ModuleSpec(
            app_id=ITERATOR,
            category="control",
            description=(
                "Run the following steps, up to the matching aggregator, once per item of "
                "`items` (or per batch of `batchSize`); each sees $prev.<ref> = "
                "{item, index, total, isLast}."
            ),
            args_schema={
                "type": "object",
                "properties": {
                    "items": {"type": "array"},
                    "batchSize": {"type": "integer", "minimum": 1},
                },
                "required": ["items"],
            },
            output_schema={"type": "object"},
            idempotent=True,
            run=_iterator,
        ),
        ModuleSpec(
            app_id=AGGREGATOR,
            category="control",
            description=(
                "Collect, per iteration of iterator `sourceRef`, the value at `field` (e.g. "
                "`sq.v`; default: the output of the last step before the aggregator); "
                "outputs {items, count}."
            ),
            args_schema={
                "type": "object",
                "properties": {
                    "sourceRef": {"type": "string", "minLength": 1},
                    "field": {"type": "string"},
                    "iterations": {"type": "array"},
                    "lastRef": {"type": "string"},
                },
                "required": ["sourceRef"],
            },
            output_schema={"type": "object"},
            idempotent=True,
            run=_aggregator,
            literal_args=("sourceRef", "field"),
        ),
        ModuleSpec(
            app_id=SUBFLOW,
            category="control",
            description=(
                "Start flow `flowId` as a child play with `args`; waits for it unless `async`"
                " (bounded by `timeout` seconds) and fails if it fails (a retry starts it "
                "again); outputs {state, playId, out}, or with `async` {state, playId} at once."
            ),
            args_schema={
                "type": "object",
                "properties": {
                    "flowId": {"type": "string", "minLength": 1},
                    "args": {},
                    "async": {"type": "boolean"},
                    "timeout": {"type": "number", "exclusiveMinimum": 0},
                },
                "required": ["flowId"],
            },
            output_schema={"type": "object"},
            # The child play is keyed by parent play + step (+ attempt), so a re-run finds
            # the same child.
            idempotent=True,
            run=_subflow,
            starts_plays=True,
        ),
        ModuleSpec(
            app_id="enumeration",
            category="control",
            description="Numbers `from`..`to` inclusive by `step`; outputs {items}.",
            args_schema={
                "type": "object",
                "properties": {"from": _NUM, "to": _NUM, "step": _NUM},
                "required": ["from", "to"],
            },
            output_schema={"type": "object"},
            idempotent=True,
            run=_enumeration,
        ),
    ]
