"""A gate that lets at most N tasks through at once and, when they must wait, takes them in
turn by key (a company): round-robin across keys, first come first served within one.

Play starts pass such a gate (``EngineSettings.max_starting``). A FIFO semaphore there let a
company that starts plays by the thousand (a flow starting itself through subflows) queue
everybody else behind its own starts for a second or more; in turns, another company waits
for one start to finish at most, however many the first one has queued.
"""

from __future__ import annotations

import collections
from collections.abc import Hashable

import trio


class FairGate:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a gate needs a capacity of at least 1")
        self.capacity = capacity
        self.held = 0
        self._waiting: collections.OrderedDict[Hashable, collections.deque[trio.Event]] = (
            collections.OrderedDict()
        )

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def hold(self, key: Hashable) -> _Held:
        """``async with gate.hold(key)``: pass the gate as ``key``; the slot is given up when
        the block ends. (A small class rather than ``asynccontextmanager``: every play start
        passes here, and a generator-based manager costs several times as much.)"""
        return _Held(self, key)

    async def _enter(self, key: Hashable) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.held < self.capacity and not self._waiting:
            self.held += 1
            await trio.lowlevel.cancel_shielded_checkpoint()  # a checkpoint, as trio's locks
        else:
            await self._wait_turn(key)

    async def _wait_turn(self, key: Hashable) -> None:
        turn = trio.Event()
        self._waiting.setdefault(key, collections.deque()).append(turn)
        try:
            await turn.wait()
        except BaseException:
            if turn.is_set():
                self._release()  # handed a slot while being cancelled: pass it on
            else:
                queue = self._waiting[key]
                queue.remove(turn)
                if not queue:
                    del self._waiting[key]
            raise

    def _release(self) -> None:
        """Hand the slot to the first waiter of the next key in turn (the slot stays held),
        or give it back."""
        if not self._waiting:
            self.held -= 1
            return
        key, queue = next(iter(self._waiting.items()))
        queue.popleft().set()
        if queue:
            self._waiting.move_to_end(key)  # its next waiter comes after the other keys'
        else:
            del self._waiting[key]


class _Held:
    __slots__ = ("gate", "key")

    def __init__(self, gate: FairGate, key: Hashable) -> None:
        self.gate = gate
        self.key = key

    async def __aenter__(self) -> None:
        await self.gate._enter(self.key)

    async def __aexit__(self, *_exc: object) -> None:
        self.gate._release()
