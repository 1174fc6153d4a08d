"""Running a bounded evaluation from the event loop without holding it.

Evaluation is synchronous Python and cannot yield. So it first runs on the Trio thread
within a *slice* of its budget (``ExpressionLimits.slice_ms`` / ``slice_memory_bytes``):
nearly every expression finishes there, at no extra cost. One that outgrows the slice is
abandoned (it is pure, so nothing of it remains) and evaluated again from scratch in a
worker thread with its whole budget, behind a ``CapacityLimiter`` so that heavy
evaluations queue rather than pile up memory. In a worker thread the interpreter hands
the GIL back to the event loop every ``sys.getswitchinterval()`` (5 ms); built-ins are
bounded so that no single C-level call in them holds it for long.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio

from ._background import background
from ._budget import Slice, SliceSpent
from ._limits import expression_limits, thread_limiter

A = TypeVar("A")
T = TypeVar("T")


async def run_bounded(fn: Callable[[A, Slice | None], T], arg: A) -> T:
    """``fn(arg, slice)`` on the event loop; if it spends its slice, ``fn(arg, None)`` (the
    whole budget) in a worker thread. ``fn`` must be pure: it may run twice."""
    try:
        return fn(arg, Slice(expression_limits()))
    except SliceSpent:
        pass
    # In a background thread: at most `threads` at once, at a lower OS priority than the
    # event loop (see _background).
    return await background(expression_limits().threads).run(fn, arg, None)


async def run_in_thread(fn: Callable[[A, Slice | None], T], arg: A) -> T:
    """``fn(arg, None)`` in a worker thread (for evaluations that must not run on the
    loop, such as those reading the KV store through ``trio.from_thread``)."""
    return await trio.to_thread.run_sync(fn, arg, None, limiter=thread_limiter())
