"""A gate that lets at most N tasks through at once and, when they must wait, takes them in
turn by key (a company): round-robin across keys, first come first served within one.

Play starts pass such a gate (``EngineSettings.max_starting`` in all,
``max_starting_per_company`` for one company). A FIFO semaphore there let a company that
starts plays by the thousand (a flow starting itself through subflows) queue everybody else
behind its own starts for a second or more; in turns, another company waited for one start
to finish at most, however many the first one had queued; with a limit per company, it finds
a slot free and waits for none.

A gate also holds back what would queue more: ``crowded(key)`` says a key has ``crowd``
waiters or more (or others already held back), and ``hold_back(key)`` parks the caller until
the key's queue has room again. Plays about to start subflows wait there (see
``PlayRun._group``): a flow that starts itself grows a tree whose plays, left to run, each
queued their subflow steps here, every step a parked chain of some 70 objects (coroutines,
task, cancel scope, layer, arguments). 1,300 of them were what the collector walked in its
55-78 ms pauses; a play held back before its steps is about a quarter of that, and only
``crowd`` steps queue at once.
"""

from __future__ import annotations

import collections
from collections.abc import Hashable, MutableMapping

import trio


class FairGate:
    """At most ``capacity`` holders at once, and at most ``per_key`` of them with one key.

    ``per_key`` keeps one key from filling the gate: with a single company starting plays by
    the thousand, its starts hold ``per_key`` slots at most and another company's start
    finds one free at once, instead of waiting for one of the first company's to finish.
    Waiters are served by key in turn; a key at its own limit is passed over, not waited on.
    """

    def __init__(self, capacity: int, per_key: int | None = None, crowd: int = 64) -> None:
        if capacity < 1:
            raise ValueError("a gate needs a capacity of at least 1")
        if per_key is not None and not 1 <= per_key <= capacity:
            raise ValueError("per_key must be between 1 and the capacity")
        if crowd < 1:
            raise ValueError("crowd must be at least 1")
        self.capacity = capacity
        self.per_key = per_key or capacity
        self.crowd = crowd
        self.held = 0
        self._held_by: collections.Counter[Hashable] = collections.Counter()
        self._waiting: collections.OrderedDict[Hashable, collections.deque[trio.lowlevel.Task]] = (
            collections.OrderedDict()
        )
        self._held_back: dict[Hashable, collections.deque[trio.lowlevel.Task]] = {}

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    @property
    def held_back(self) -> int:
        return sum(len(q) for q in self._held_back.values())

    def crowded(self, key: Hashable) -> bool:
        """True when ``key`` has ``crowd`` waiters or more, or callers already held back
        (who go first)."""
        if key in self._held_back:
            return True
        queue = self._waiting.get(key)
        return queue is not None and len(queue) >= self.crowd

    async def hold_back(self, key: Hashable) -> None:
        """Wait while ``key`` is crowded: until one of its waiters was let through with its
        queue below ``crowd`` (one held-back caller per waiter let through, in arrival
        order), or it has nothing in the gate and nothing waiting (all of them).
        A caller that does not queue anything when let go leaves the queue to drain,
        and the next held-back caller goes when it is let through or empties."""
        if not self.crowded(key):
            await trio.lowlevel.checkpoint()
            return
        task = trio.lowlevel.current_task()
        self._held_back.setdefault(key, collections.deque()).append(task)
        await trio.lowlevel.wait_task_rescheduled(_Abort(self._held_back, key, task))

    def held_by(self, key: Hashable) -> int:
        return self._held_by[key]

    def hold(self, key: Hashable) -> _Held:
        """``async with gate.hold(key)``: pass the gate as ``key``; the slot is given up when
        the block ends. (A small class rather than ``asynccontextmanager``: every play start
        passes here, and a generator-based manager costs several times as much.)"""
        return _Held(self, key)

    async def _enter(self, key: Hashable) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        # With a slot free, whoever waits is waiting on its own key's limit: a key with no
        # waiter of its own jumps nobody by entering.
        if (
            self.held < self.capacity
            and self._held_by[key] < self.per_key
            and key not in self._waiting
        ):
            self._take(key)
            await trio.lowlevel.cancel_shielded_checkpoint()  # a checkpoint, as trio's locks
            return
        # Parked on the task itself rather than on an Event: a play tree that grows by the
        # thousand has as many starts waiting here, and each object they hold is one more
        # for the garbage collector to walk while the event loop waits for it.
        task = trio.lowlevel.current_task()
        self._waiting.setdefault(key, collections.deque()).append(task)
        await trio.lowlevel.wait_task_rescheduled(_Abort(self._waiting, key, task, self))

    def _take(self, key: Hashable) -> None:
        self.held += 1
        self._held_by[key] += 1

    def _release(self, key: Hashable) -> None:
        """Give the slot back, then hand free slots to the first waiter of each key in turn
        that is under its own limit (the handed slot is counted before the waiter wakes)."""
        self.held -= 1
        self._held_by[key] -= 1
        if not self._held_by[key]:
            del self._held_by[key]
        while self._waiting and self.held < self.capacity:
            ready = next((k for k in self._waiting if self._held_by[k] < self.per_key), None)
            if ready is None:
                break
            queue = self._waiting[ready]
            self._take(ready)  # the slot is the waiter's before it runs again
            trio.lowlevel.reschedule(queue.popleft())
            if queue:
                self._waiting.move_to_end(ready)  # its next waiter comes after the other keys'
            else:
                del self._waiting[ready]
            self._let_go(ready)
        if key not in self._held_by and key not in self._waiting:
            self._let_go(key)  # nothing of it left here

    def _let_go(self, key: Hashable) -> None:
        """A waiter of ``key`` left its queue: one caller held back goes on if the queue is
        below ``crowd`` now (it queues its own starts, which keeps the queue about that
        long); all of them if ``key`` has nothing in the gate any more (nothing else would
        let them go)."""
        held_back = self._held_back.get(key)
        if held_back is None:
            return
        queue = self._waiting.get(key)
        if queue is None and not self._held_by[key]:
            while held_back:
                trio.lowlevel.reschedule(held_back.popleft())
        elif queue is None or len(queue) < self.crowd:
            trio.lowlevel.reschedule(held_back.popleft())
        if not held_back:
            del self._held_back[key]


class _Abort:
    """A parked task's way out when it is cancelled while still in its queue (one small
    object rather than a closure: a function, its cells and their tuple). A waiter that
    leaves the gate's queue may make room for a caller held back (``gate``)."""

    __slots__ = ("gate", "key", "queues", "task")

    def __init__(
        self,
        queues: MutableMapping[Hashable, collections.deque[trio.lowlevel.Task]],
        key: Hashable,
        task: trio.lowlevel.Task,
        gate: FairGate | None = None,
    ) -> None:
        self.queues = queues
        self.key = key
        self.task = task
        self.gate = gate

    def __call__(self, _: object) -> trio.lowlevel.Abort:
        # Still in the queue: a task let go was rescheduled, not aborted.
        queue = self.queues[self.key]
        queue.remove(self.task)
        if not queue:
            del self.queues[self.key]
        if self.gate is not None:
            self.gate._let_go(self.key)
        return trio.lowlevel.Abort.SUCCEEDED


class _Held:
    __slots__ = ("gate", "key")

    def __init__(self, gate: FairGate, key: Hashable) -> None:
        self.gate = gate
        self.key = key

    async def __aenter__(self) -> None:
        await self.gate._enter(self.key)

    async def __aexit__(self, *_exc: object) -> None:
        self.gate._release(self.key)
