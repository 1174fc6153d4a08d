"""Values too big to handle on the event loop.

A step's arguments or output, or a play's input, bigger than ``OFFLOAD_BYTES`` as JSON are
converted and checked for the store in a background thread, where the walk hands the GIL
back every few ms: on the event loop a 1 MB value of small items holds it for 50-100 ms
here. Smaller ones are done inline, where a thread hop costs more. The threads are the ones
heavy expressions run in (flow8/expressions/_background.py): one niced pool, sized by
``ExpressionLimits.threads``, for all heavy work beside the loop; it lives with expressions
because they are below the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from flow8.expressions import background

OFFLOAD_BYTES = 64 * 1024


def json_size(value: Any) -> int | None:
    """Bytes of ``value`` as compact JSON (orjson: about 1 ms a MB), None when no JSON
    encoder takes it as it is (an integer beyond 64 bits, a lone surrogate, odd types)."""
    if value is None or isinstance(value, bool | int | float):
        return 8
    try:
        return len(orjson.dumps(value))
    except orjson.JSONEncodeError:
        return None


async def off_the_loop_if_big(size: int | None, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` inline for a value of ``size`` bytes up to OFFLOAD_BYTES, else (or when
    its size is unknown) in a worker thread."""
    if size is not None and size <= OFFLOAD_BYTES:
        return fn(*args)
    return await background().run(fn, *args)
