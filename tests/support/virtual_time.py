"""Virtual time: tests that wait run on Trio's autojump clock, with the wall clock following it.

On ``MockClock(autojump_threshold=0)`` time moves only when every task is blocked, straight to
the next deadline, so minutes of leases, delays and polls pass in milliseconds. Two things the
plain clock gets wrong for flow8 are handled here:

* The engine keeps leases, wake-up times and back-offs in wall time (``time.time()``, shared
  between instances through the store) while it sleeps on Trio's clock. A lease would never
  lapse in virtual time; so while a test runs, ``time.time()`` answers the wall time at the
  start plus the virtual time elapsed. (The memory store's TTLs already follow Trio's clock.)
* A task waiting for a worker thread (an argon2 hash, a heavy expression, an expression that
  reads the KV store) is blocked, and the autojump clock would race through every pending
  deadline (the dispatcher's polls, the test's own ``fail_after``) while the thread works. The
  clock holds still while any thread started through ``trio.to_thread.run_sync`` or the
  expressions' background pool is out, so time passes only when nothing else can happen first.
  (Threads started some other way are not seen: tests using them stay on the wall clock.)

Tests on the sqlite store (and real sockets, processes or measured CPU time) are about what
happens in real time: they are marked ``wall_clock`` and run on the real clock, and the
fixtures that would misbehave on virtual time refuse it (``require_wall_clock``). A test
directory makes virtual time its default with ``default_to_virtual_time`` in its conftest.
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
from trio.testing import MockClock

from flow8.expressions import _background

T = TypeVar("T")

WALL_CLOCK = "wall_clock"  # the marker of tests that must run on the real clock


class _StillWhileThreadsRun:
    """Turns the clock's autojump off while any worker thread is out (MockClock cannot be
    subclassed; its threshold may be changed while it runs)."""

    def __init__(self, clock: MockClock) -> None:
        self.clock = clock
        self.threshold = clock.autojump_threshold
        self.out = 0

    @contextmanager
    def thread_out(self) -> Iterator[None]:
        self.out += 1
        self.clock.autojump_threshold = math.inf  # the loop sleeps until a thread wakes it
        try:
            yield
        finally:
            self.out -= 1
            if not self.out:
                self.clock.autojump_threshold = self.threshold

    def around(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.thread_out():
                return await fn(*args, **kwargs)

        return wrapper


@contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(owner, name)  # AttributeError if it moved: better than a silent miss
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def run_on_virtual_time(
    fn: Callable[[], Any], *, clock: trio.abc.Clock | None = None, instruments: Sequence[Any] = ()
) -> Any:
    """``trio.run(fn)`` on an autojump clock (or the test's own MockClock), holding still while
    worker threads run, with ``time.time()`` following it: the ``run`` that pytest-trio calls
    for a test marked ``pytest.mark.trio(run=run_on_virtual_time)``."""
    if clock is None:
        clock = MockClock(autojump_threshold=0)
    if not isinstance(clock, MockClock):
        raise TypeError(f"virtual time needs a MockClock, not {clock!r}")
    virtual = clock
    still = _StillWhileThreadsRun(virtual)
    start = time.time()
    with ExitStack() as patches:
        patches.enter_context(_patched(time, "time", lambda: start + virtual.current_time()))
        patches.enter_context(
            _patched(trio.to_thread, "run_sync", still.around(trio.to_thread.run_sync))
        )
        background = _background.Background
        patches.enter_context(_patched(background, "run", still.around(background.run)))
        return trio.run(fn, clock=virtual, instruments=instruments)


def on_virtual_time() -> bool:
    """Whether the running test's clock is virtual (call from inside the Trio run)."""
    return isinstance(trio.lowlevel.current_clock(), MockClock)


def require_wall_clock(what: str) -> None:
    """Fail a test that put ``what`` (work in unseen threads) on virtual time."""
    if on_virtual_time():
        pytest.fail(
            f"{what} works in threads the virtual clock cannot see: mark the test "
            f"@pytest.mark.{WALL_CLOCK}"
        )


def default_to_virtual_time(directory: Path, items: list[pytest.Item]) -> None:
    """Run the async tests under ``directory`` on virtual time unless marked ``wall_clock``.

    For a conftest's ``pytest_collection_modifyitems`` (which pytest calls with every collected
    item, hence the directory). The marker goes first among the test's own, ahead of the one
    pytest-trio's trio_mode adds, so its ``run`` is the one pytest-trio uses. (Hypothesis tests
    are left alone: pytest-trio runs their examples with ``trio.run`` whatever the marker.)"""
    for item in items:
        if not item.path.is_relative_to(directory) or item.get_closest_marker(WALL_CLOCK):
            continue
        test = getattr(item, "obj", None)
        if inspect.iscoroutinefunction(test) and not hasattr(test, "hypothesis"):
            item.add_marker(pytest.mark.trio(run=run_on_virtual_time), append=False)
