"""The dynamic (simple_one_for_one) supervisor: on-demand children with a cap."""

from __future__ import annotations

import collections
import math
from typing import Any, Literal

import trio

from ._refs import Ref
from ._restarts import RestartWindow, escalation, log_exit
from ._slot import Exit, ExitKind, Slot, should_restart
from ._spec import ChildSpec, DynamicSupervisorSpec
from ._stats import State
from .exceptions import (
    ActorNotRunning,
    ChildNotFound,
    ChildStartFailed,
    DuplicateChild,
    TooManyChildren,
    describe,
)

_Stop = Literal["stop"]
_STOP: _Stop = "stop"


class DynamicSupervisor:
    """One incarnation of a dynamic supervisor.

    Children are started by whoever calls ``start_child`` (inside this supervisor's nursery),
    restarted one_for_one by the loop per their restart type and the intensity window, stopped
    in parallel when the supervisor stops, and never carried over a restart of the supervisor.
    """

    def __init__(self, slot: Slot, spec: DynamicSupervisorSpec) -> None:
        self._slot = slot
        self._spec = spec
        self._window = RestartWindow(spec.intensity, spec.period)
        self._children: dict[str, Slot] = {}
        self._send, self._receive = trio.open_memory_channel[Exit | _Stop](math.inf)
        self._pending: collections.deque[Exit] = collections.deque()
        self._nursery: trio.Nursery | None = None
        self._accepting = False

    def request_stop(self) -> bool:
        self._accepting = False
        self._send.send_nowait(_STOP)
        return True

    def _report(self, exit: Exit) -> None:
        self._send.send_nowait(exit)

    # -- public operations (called from other tasks through DynamicSupervisorRef) --------------

    def count(self) -> int:
        return len(self._children)

    def live_children(self) -> list[Slot]:
        return list(self._children.values())

    def child(self, id: str) -> Ref:
        slot = self._children.get(id)
        if slot is None:
            raise ChildNotFound(f"dynamic supervisor {self._slot.path!r} has no child {id!r}")
        return slot.ref

    async def start_child(self, spec: ChildSpec) -> Ref:
        if not self._accepting or self._nursery is None:
            raise ActorNotRunning(
                f"dynamic supervisor {self._slot.path!r} is not accepting children "
                f"(state {self._slot.state.value})"
            )
        if not isinstance(spec, ChildSpec):
            raise TypeError(f"start_child needs a ChildSpec, got {type(spec).__name__}")
        if spec.id in self._children:
            raise DuplicateChild(
                f"dynamic supervisor {self._slot.path!r} already has a child {spec.id!r}"
            )
        cap = self._spec.max_children
        if cap is not None and len(self._children) >= cap:
            raise TooManyChildren(
                f"dynamic supervisor {self._slot.path!r} is at its cap of {cap} children"
            )
        slot = Slot.create(spec, f"{self._slot.path}/{spec.id}", self._slot.env)
        self._children[spec.id] = slot  # reserved now so the cap holds during the start
        try:
            await self._nursery.start(slot.run, self._report)
        except Exception as exc:
            self._drop(slot)
            error = ChildStartFailed(
                f"child {spec.id!r} of dynamic supervisor {self._slot.path!r} failed to start: "
                f"{describe(exc)}"
            )
            raise error from exc
        except BaseException:
            self._drop(slot)
            raise
        if not self._accepting or self._children.get(spec.id) is not slot:
            # The supervisor began to stop while this child was starting; it is not ours to
            # keep, so stop it here rather than leave it running unsupervised.
            await slot.stop()
            self._drop(slot)
            raise ActorNotRunning(
                f"dynamic supervisor {self._slot.path!r} stopped while {spec.id!r} was starting"
            )
        return slot.ref

    async def terminate_child(self, id: str) -> None:
        slot = self._children.get(id)
        if slot is None:
            raise ChildNotFound(f"dynamic supervisor {self._slot.path!r} has no child {id!r}")
        del self._children[id]  # its exit report is stale from here on
        try:
            await slot.stop()
        finally:
            slot.finalize()

    # -- the supervisor loop --------------------------------------------------------------------

    def _drop(self, slot: Slot) -> None:
        if self._children.get(slot.id) is slot:
            del self._children[slot.id]
        slot.finalize()

    async def serve(self, task_status: trio.TaskStatus[Any]) -> None:
        failure: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._accepting = True
                task_status.started()
                failure = await self._loop()
                nursery.cancel_scope.cancel()
        finally:
            self._accepting = False
            for slot in self._children.values():
                slot.finalize()
            self._children.clear()
        if failure is not None:
            raise failure

    async def _loop(self) -> BaseException | None:
        while True:
            event: Exit | _Stop
            event = self._pending.popleft() if self._pending else await self._receive.receive()
            if event == _STOP:
                await self._stop_all()
                return None
            assert isinstance(event, Exit)
            failure = await self._on_exit(event)
            if failure is not None:
                return failure

    async def _stop_all(self) -> None:
        self._accepting = False
        slots = list(self._children.values())
        self._children.clear()
        async with trio.open_nursery() as nursery:
            for slot in slots:
                nursery.start_soon(slot.stop)
        for slot in slots:
            slot.finalize()

    async def _on_exit(self, exit: Exit) -> BaseException | None:
        slot = exit.slot
        if self._children.get(slot.id) is not slot or slot.incarnation is not exit.incarnation:
            return None
        slot.incarnation = None
        restart = should_restart(slot.spec.restart, exit.kind)
        log_exit(exit, restart)
        if not restart:
            self._drop(slot)
            return None
        if not self._window.allow():
            slot.state = State.FAILED
            await self._stop_all()
            return escalation(self._slot.path, self._window, exit)
        slot.state = State.RESTARTING
        slot.restarts += 1  # before the start: the new incarnation may run at once
        assert self._nursery is not None
        try:
            await self._nursery.start(slot.run, self._report)
        except Exception as exc:
            self._pending.appendleft(Exit(slot, None, ExitKind.ABNORMAL, exc))
            return None
        return None
