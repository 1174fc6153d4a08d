"""Heavy work of one play, done beside the event loop at a lower OS priority.

Expressions that outgrow their slice of the event loop, and big values being checked for
the store (``flow8/engine/_big.py``), run in worker threads: one pool, sized by
``ExpressionLimits.threads``. It lives with expressions, below the engine, so that both can
use it without an upward import. On a machine with few cores those threads compete for CPU
with the event loop that serves everybody else: at equal priority the scheduler shares the
cores out evenly, and requests wait while one tenant's expression runs. Their threads are
therefore niced (``BACKGROUND_NICE``): they get whatever CPU the loop, the store's writer
and everything else leave, and the loop gets a core whenever it wants one.

They are threads of their own, not Trio's shared worker threads: a thread's priority
cannot be raised again without privileges, and Trio hands its threads to store reads too.

Nice decides who gets a core, not who holds the GIL: each time the loop waits for the network
it lets go of the GIL, and getting it back from a busy thread takes up to the interpreter's
switch interval (5 ms by default); a request that waits ten times waited up to 50 ms for the
GIL alone. So while background work runs, the interval is ``BUSY_SWITCH_INTERVAL`` (1 ms)
(measured with the attack suite's bystander beside another tenant's heavy expressions,
`tests/security/test_03_expressions.py`, 2 cores: slowest answers 44-188 ms at 5 ms, 39-64 ms
at 1 ms), and the default again once it is done: kept at 1 ms for good, the API benchmark
served 15-20% fewer requests at 64 connections (the loop and the store's writer thread hand
the GIL to each other five times as often).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import trio

T = TypeVar("T")
BACKGROUND_NICE = 10
BUSY_SWITCH_INTERVAL = 0.001


def _lower_priority() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed: as is
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


class Background:
    """At most ``threads`` pieces of work at once; more wait their turn."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._busy = 0  # pieces of work running or queued (counted on the event loop)
        self._idle_interval = sys.getswitchinterval()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads,
            thread_name_prefix="flow8-background",
            initializer=_lower_priority,
        )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a background thread. Like ``trio.to_thread.run_sync``, a
        cancellation waits for the work to end (it is bounded: an expression's deadline, a
        value's size), so nothing runs on behind the caller's back."""
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def wake(_: concurrent.futures.Future[T]) -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        self._started()
        try:
            future = self._pool.submit(fn, *args)
            future.add_done_callback(wake)
            await done.wait()
        except trio.Cancelled:
            if not future.cancel():  # already running: let it finish, then be cancelled
                with trio.CancelScope(shield=True):
                    await done.wait()
            raise
        finally:
            self._ended()
        return future.result()

    def _started(self) -> None:
        if self._busy == 0:
            self._idle_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(BUSY_SWITCH_INTERVAL, self._idle_interval))
        self._busy += 1

    def _ended(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            sys.setswitchinterval(self._idle_interval)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


_background: Background | None = None


def background(threads: int = 2) -> Background:
    """The process's background threads (created on first use with ``threads``)."""
    global _background
    if _background is None:
        _background = Background(threads)
    return _background


def configure_background(threads: int) -> None:
    """Set how many background threads the process uses (at start-up)."""
    global _background
    if _background is not None and _background.threads == threads:
        return
    if _background is not None:
        _background.shutdown()
    _background = Background(threads)
