"""The budget of one evaluation: deadline, depth and estimated bytes allocated.

The evaluator calls ``enter``/``exit`` around every expression node (jsonata-python's
``__evaluate_entry``/``__evaluate_exit`` hooks); built-ins and the sandbox's operators
reach the budget of the evaluation running on their thread with ``current()``.

Memory is charged cumulatively, as estimated bytes of what was built: the result of every
node that builds something new (paths, array and object constructors, filters, group-by,
wildcards, descendants), every string joined with ``&``, every range, and the result of
every built-in. Lookups of variables and names return references to existing data and
are not charged. Sizes are ``sys.getsizeof`` of the new container or string (constant
time) plus ``ITEM_BYTES`` per element of a new sequence, which covers a reference and, for
numbers built by arithmetic, the number itself (and ``JLIST_BYTES`` for the library's
list subclass, whose flags live in an attribute dict).

Going over a limit raises ``LimitHit`` (a ``JException``, so that the library's handlers
let it through unchanged); going over the *slice* of an evaluation running on the event
loop raises ``SliceSpent``, and the evaluation is run again in a worker thread.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import Any

from jsonata import jexception
from jsonata.utils import Utils

from ._limits import (
    LOOP_WORK,
    MAX_ITEMS,
    MAX_STRING,
    ExpressionLimits,
    describe_bytes,
)

ITEM_BYTES = 40
TUPLE_BYTES = 280  # a tuple-stream element is a small dict of bindings
YIELD_EVERY = 0.001  # seconds of evaluation in a worker thread between two yields
YIELD_SLEEP = 0.00005
JLIST_BYTES = 360  # the library's lists carry five flags in an attribute dict (304 bytes)
# How much longer than its budget a worker-thread evaluation may take on the clock while
# the thread waited for the GIL or a core (see ``_late``).
WALL_FACTOR = 10

_JList = Utils.JList
_getsizeof = sys.getsizeof
_monotonic = time.monotonic
_thread_time = time.thread_time
_MAIN_IDENT = threading.main_thread().ident


class LimitHit(jexception.JException):  # type: ignore[misc]
    """A limit was exceeded; ``limit`` names it, ``detail`` says how."""

    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(detail, -1)
        self.limit = limit
        self.detail = detail


class SliceSpent(jexception.JException):  # type: ignore[misc]
    """The evaluation outgrew its slice on the event loop: run it again in a thread."""

    def __init__(self) -> None:
        super().__init__("slice spent", -1)


class Slice:
    """What one pass over the event loop may still spend (shared by the expressions of a
    value tree or a filter list resolved in one go)."""

    __slots__ = ("deadline", "memory")

    def __init__(self, limits: ExpressionLimits) -> None:
        self.deadline = _monotonic() + limits.slice_ms / 1000.0
        self.memory = limits.slice_memory_bytes


class Budget:
    """Per-evaluation deadline, depth and memory."""

    __slots__ = (
        "calls",
        "cpu_start",
        "deadline",
        "depth",
        "limit",
        "max_depth",
        "memory_bytes",
        "memory_in_slice",
        "next_yield",
        "time_in_slice",
        "timeout_ms",
        "used",
        "wall_cap",
    )

    def __init__(
        self,
        limits: ExpressionLimits,
        slice_: Slice | None,
        timeout_ms: int | None = None,
        max_depth: int | None = None,
    ) -> None:
        self.timeout_ms = limits.timeout_ms if timeout_ms is None else timeout_ms
        self.max_depth = limits.max_depth if max_depth is None else max_depth
        self.memory_bytes = limits.memory_bytes
        self.deadline = _monotonic() + self.timeout_ms / 1000.0
        self.limit = self.memory_bytes
        self.time_in_slice = False
        self.memory_in_slice = False
        if slice_ is not None:
            if slice_.deadline < self.deadline:
                self.deadline = slice_.deadline
                self.time_in_slice = True
            if slice_.memory < self.limit:
                self.limit = max(0, slice_.memory)
                self.memory_in_slice = True
        self.depth = 0
        self.used = 0
        self.calls = 0
        # In a worker thread, give the GIL away now and then (see ``_yield``) and count the
        # time the thread itself ran (see ``_late``); never on the thread running the event
        # loop, which would only be slowed down.
        on_worker = slice_ is None and threading.get_ident() != _MAIN_IDENT
        self.next_yield = _monotonic() + YIELD_EVERY if on_worker else math.inf
        self.cpu_start = _thread_time() if on_worker else None
        self.wall_cap = self.deadline + (WALL_FACTOR - 1) * self.timeout_ms / 1000.0

    # -- node hooks --------------------------------------------------------------------

    def enter(self, _expr: Any, _input: Any, _env: Any) -> None:
        # Every entry has its exit (evaluation is sequential), so the depth is exact. The
        # library's own Timebox skips "parallel" calls, whose flag is left set on the frame
        # and made its count drift (150 small array constructors in a $map used to fail).
        self.depth += 1
        if self.depth > self.max_depth:
            raise LimitHit("depth", f"it nested deeper than {self.max_depth} levels")
        now = _monotonic()
        if now > self.deadline:
            self._late()
        if now > self.next_yield:
            self._yield()

    def exit(self, expr: Any, _input: Any, _env: Any, result: Any) -> None:
        self.depth -= 1
        if result is None or result.__class__ in _SCALARS:
            return
        if (
            expr.type in _BUILDS
            or getattr(expr, "predicate", None) is not None
            or getattr(expr, "group", None) is not None
        ):
            self.charge(size_of(result))

    # -- checks ------------------------------------------------------------------------

    def tick(self) -> None:
        """Check the deadline (long loops inside built-ins call this every so often)."""
        now = _monotonic()
        if now > self.deadline:
            self._late()
        if now > self.next_yield:
            self._yield()

    def _yield(self) -> None:
        # A thread running Python holds the GIL until the interpreter takes it away, after
        # sys.getswitchinterval() (5 ms) of another thread waiting for it; the event loop
        # waits for it each time it wakes up, which adds up to tens of ms per request.
        # Sleeping a moment every millisecond hands it over at once (measured: 20 loop
        # wake-ups next to a busy thread took 5.3 ms at the median and 21 ms at most, with
        # this 0.1-0.2 ms; it costs the evaluation about 5% of its speed).
        time.sleep(YIELD_SLEEP)
        self.next_yield = _monotonic() + YIELD_EVERY

    def _late(self) -> None:
        if self.time_in_slice:
            raise SliceSpent()
        if self.cpu_start is not None:
            # The budget is the time the evaluation itself runs. On the clock, a worker
            # thread also waits: for the GIL while the event loop serves requests, for a
            # core while other processes run, and in its own yields. So past the deadline
            # it is charged its thread's CPU time, and the deadline moves by what is left of
            # that, up to ``WALL_FACTOR`` times the budget on the clock (under load on 2
            # cores, a 85 ms evaluation took over 250 ms of wall time).
            now = _monotonic()
            left = self.timeout_ms / 1000.0 - (_thread_time() - self.cpu_start)
            if left > 0.001:
                if now < self.wall_cap:
                    self.deadline = min(now + left, self.wall_cap)
                    return
                raise LimitHit(
                    "time",
                    f"it ran longer than {self.timeout_ms} ms "
                    f"({WALL_FACTOR * self.timeout_ms} ms on the clock, waiting for a core)",
                )
        raise LimitHit("time", f"it ran longer than {self.timeout_ms} ms")

    def charge(self, nbytes: int) -> None:
        self.used += nbytes
        if self.used > self.limit:
            if self.memory_in_slice:
                raise SliceSpent()
            raise LimitHit("memory", f"it allocated more than {describe_bytes(self.limit)}")

    def room(self) -> int:
        """Bytes the evaluation may still allocate."""
        return self.limit - self.used

    def work(self, units: int) -> None:
        """A built-in is about to touch ``units`` characters or items: on the event loop,
        leave for a worker thread now rather than spend the slice on it."""
        if units > LOOP_WORK and (self.time_in_slice or self.memory_in_slice):
            raise SliceSpent()

    def string(self, what: str, length: int) -> None:
        """Refuse to build a string of ``length`` characters past the cap or the budget."""
        if length > MAX_STRING:
            raise LimitHit(
                "string",
                f"{what} would build a string of {length} characters, longer than the "
                f"{MAX_STRING} allowed",
            )
        if length > self.limit - self.used:
            self.charge(length)  # raises, naming the memory limit (or leaving the slice)

    def items(self, what: str, count: int, noun: str = "items") -> None:
        """Refuse to build ``count`` items (or make ``count`` matches) past the cap."""
        if count > MAX_ITEMS:
            raise LimitHit(
                "items",
                f"{what} would build {count} {noun}, more than the {MAX_ITEMS} allowed",
            )
        self.work(count)


_SCALARS = frozenset({bool, int, float})
# Node types whose result is (or may be) built by the node itself.
_BUILDS = frozenset({"path", "unary", "wildcard", "descendant", "sort"})


def size_of(value: Any) -> int:
    """Estimated bytes of a value just built (not of what it refers to)."""
    if isinstance(value, str):
        return _getsizeof(value)
    if isinstance(value, list):
        if isinstance(value, _JList):
            return JLIST_BYTES + (TUPLE_BYTES if value.tuple_stream else ITEM_BYTES) * len(value)
        return 56 + ITEM_BYTES * len(value)
    if isinstance(value, dict):
        return _getsizeof(value)
    return 0


_local = threading.local()


def current() -> Budget:
    """The budget of the evaluation running on this thread."""
    budget: Budget | None = getattr(_local, "budget", None)
    if budget is None:  # a built-in called outside an evaluation: no budget to spend
        raise RuntimeError("no expression evaluation is running on this thread")
    return budget


def install(budget: Budget | None) -> Budget | None:
    """Make ``budget`` current on this thread; returns the one it replaces."""
    previous: Budget | None = getattr(_local, "budget", None)
    _local.budget = budget
    return previous
