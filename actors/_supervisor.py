"""The static supervisor: ordered start, strategies, intensity, reverse-order stop."""

from __future__ import annotations

import collections
import math
from typing import Any, Literal

import trio

from ._restarts import RestartWindow, escalation, log_exit
from ._slot import Exit, ExitKind, Slot, should_restart
from ._spec import Restart, Strategy, SupervisorSpec
from ._stats import State
from .exceptions import ChildStartFailed, describe

_Stop = Literal["stop"]
_STOP: _Stop = "stop"


class Supervisor:
    """One incarnation of a static supervisor (its child slots persist across incarnations).

    A single loop task handles child exits and the stop request in arrival order; all
    restarting and stopping happens in that loop, so the bookkeeping needs no locks.
    """

    def __init__(self, slot: Slot, spec: SupervisorSpec) -> None:
        self._slot = slot
        self._spec = spec
        self._window = RestartWindow(spec.intensity, spec.period)
        self._active: list[Slot] = list(slot.children)
        self._send, self._receive = trio.open_memory_channel[Exit | _Stop](math.inf)
        self._pending: collections.deque[Exit] = collections.deque()
        self._nursery: trio.Nursery | None = None

    def request_stop(self) -> bool:
        self._send.send_nowait(_STOP)
        return True

    def _report(self, exit: Exit) -> None:
        self._send.send_nowait(exit)

    async def serve(self, task_status: trio.TaskStatus[Any]) -> None:
        failure: BaseException | None = None
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            failure = await self._start_all()
            if failure is None:
                task_status.started()
                failure = await self._loop()
            nursery.cancel_scope.cancel()
        if failure is not None:
            # Raised outside the nursery so it is not wrapped in an ExceptionGroup.
            raise failure

    async def _start(self, slot: Slot) -> None:
        assert self._nursery is not None
        await self._nursery.start(slot.run, self._report)

    async def _start_all(self) -> ChildStartFailed | None:
        started: list[Slot] = []
        for slot in self._active:
            try:
                await self._start(slot)
            except Exception as exc:
                await self._stop_reversed(started)
                error = ChildStartFailed(
                    f"child {slot.id!r} of supervisor {self._slot.path!r} failed to start: "
                    f"{describe(exc)}"
                )
                error.__cause__ = exc
                return error
            started.append(slot)
        return None

    async def _loop(self) -> BaseException | None:
        while True:
            event: Exit | _Stop
            event = self._pending.popleft() if self._pending else await self._receive.receive()
            if event == _STOP:
                await self._stop_reversed(self._active)
                return None
            assert isinstance(event, Exit)
            failure = await self._on_exit(event)
            if failure is not None:
                return failure

    async def _stop_reversed(self, slots: list[Slot]) -> None:
        for slot in reversed(slots):
            await slot.stop()

    def _retire(self, slot: Slot, kind: ExitKind) -> None:
        slot.finalize()
        slot.state = State.FAILED if kind is ExitKind.ABNORMAL else State.STOPPED
        if slot.spec.restart is Restart.TEMPORARY:
            self._active.remove(slot)

    async def _on_exit(self, exit: Exit) -> BaseException | None:
        slot = exit.slot
        if slot.incarnation is not exit.incarnation or slot not in self._active:
            return None  # a stale report from an incarnation we stopped ourselves
        slot.incarnation = None
        restart = should_restart(slot.spec.restart, exit.kind)
        log_exit(exit, restart)
        if not restart:
            self._retire(slot, exit.kind)
            return None
        if not self._window.allow():
            slot.state = State.FAILED
            await self._stop_reversed(self._active)
            return escalation(self._slot.path, self._window, exit)
        strategy = self._spec.strategy
        index = self._active.index(slot)
        if strategy is Strategy.ONE_FOR_ONE:
            affected = [slot]
        elif strategy is Strategy.ONE_FOR_ALL:
            affected = list(self._active)
        else:
            affected = self._active[index:]
        others = [s for s in affected if s is not slot]
        for other in others:
            if other.incarnation is not None:
                other.state = State.RESTARTING
        await self._stop_reversed(others)
        to_start: list[Slot] = []
        for other in affected:
            if other is not slot and other.spec.restart is Restart.TEMPORARY:
                self._retire(other, ExitKind.SHUTDOWN)
            else:
                other.state = State.RESTARTING
                to_start.append(other)
        for restarting in to_start:
            restarting.restarts += 1  # before the start: the new incarnation may run at once
            try:
                await self._start(restarting)
            except Exception as exc:
                # A failed restart is handled like a crash of that child: counted against the
                # intensity and restarted per the strategy along with the ones not yet started.
                self._pending.appendleft(Exit(restarting, None, ExitKind.ABNORMAL, exc))
                return None
        return None
