"""A slot: the persistent place of one child in the tree, across all its incarnations.

The slot owns what must survive a restart (mailbox, ref, counters); each (re)start runs one
*incarnation* in its own cancel scope inside the supervisor's nursery. How the incarnation
ended is classified here (REFERENCE §1) and reported to the supervisor loop, never raised into
the nursery: returned = normal, an Exception (or group of them) = abnormal, our own cancel or a
polite stop we asked for = shutdown. Anything else (an outside cancel, KeyboardInterrupt)
propagates untouched and is never reported as a crash.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from ._mailbox import Mailbox
from ._refs import ActorRef, DynamicSupervisorRef, Ref, SupervisorRef, TaskRef
from ._spec import ActorStart, ChildSpec, DynamicSupervisorSpec, Restart, SupervisorSpec, TaskStart
from ._stats import NodeKind, State, Stats
from ._task import TaskControl, current_task_control
from .exceptions import ActorNotRunning, ActorStopped

if TYPE_CHECKING:
    from ._registry import Registry


class ExitKind(enum.Enum):
    NORMAL = "normal"
    ABNORMAL = "abnormal"
    SHUTDOWN = "shutdown"


class Body(Protocol):
    """What runs inside an incarnation: it can be asked to stop politely."""

    def request_stop(self) -> bool:
        """Ask to return soon; False when it cannot be asked (then it is cancelled)."""
        ...


@attrs.define(eq=False)
class Incarnation:
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    done: trio.Event = attrs.Factory(trio.Event)
    started: bool = False
    stop_requested: bool = False
    body: Body | None = None


@attrs.frozen
class Exit:
    slot: Slot
    incarnation: Incarnation | None
    kind: ExitKind
    error: BaseException | None = None


Report = Callable[[Exit], None]


@attrs.frozen
class Env:
    """What every slot of one runtime shares."""

    registry: Registry


def should_restart(restart: Restart, kind: ExitKind) -> bool:
    if restart is Restart.PERMANENT:
        return kind is not ExitKind.SHUTDOWN
    if restart is Restart.TRANSIENT:
        return kind is ExitKind.ABNORMAL
    return False


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Status:
    """The task_status handed to a child: records the start acknowledgement on the slot."""

    __slots__ = ("_incarnation", "_slot", "_upstream")

    def __init__(
        self, slot: Slot, incarnation: Incarnation, upstream: trio.TaskStatus[Any]
    ) -> None:
        self._slot = slot
        self._incarnation = incarnation
        self._upstream: trio.TaskStatus[Any] | None = upstream

    def started(self, value: Any = None) -> None:
        upstream = self._upstream
        if upstream is None:
            raise RuntimeError(f"{self._slot.path!r} called task_status.started() twice")
        # Dropped once used: trio's status object keeps its temporary nursery alive.
        self._upstream = None
        self._incarnation.started = True
        slot = self._slot
        slot.state = State.STOPPING if self._incarnation.stop_requested else State.RUNNING
        slot.started_at = _now_iso()
        slot.started_clock = trio.current_time()
        upstream.started(value)


@attrs.define(eq=False)
class Slot:
    spec: ChildSpec
    path: str
    env: Env
    kind: NodeKind
    mailbox: Mailbox | None = None
    children: list[Slot] = attrs.Factory(list)
    state: State = State.STOPPED
    restarts: int = 0
    started_at: str | None = None
    started_clock: float | None = None
    incarnation: Incarnation | None = None
    finalized: bool = False
    ref: Ref = attrs.field(default=None)

    @classmethod
    def create(cls, spec: ChildSpec, path: str, env: Env) -> Slot:
        start = spec.start
        slot: Slot
        if isinstance(start, ActorStart):
            mailbox = Mailbox(path, start.capacity)
            slot = cls(spec, path, env, NodeKind.ACTOR, mailbox=mailbox)
            slot.ref = ActorRef(slot, mailbox)
        elif isinstance(start, TaskStart):
            slot = cls(spec, path, env, NodeKind.TASK)
            slot.ref = TaskRef(slot)
        elif isinstance(start, SupervisorSpec):
            slot = cls(spec, path, env, NodeKind.SUPERVISOR)
            slot.children = [cls.create(c, f"{path}/{c.id}", env) for c in start.children]
            slot.ref = SupervisorRef(slot)
        else:
            slot = cls(spec, path, env, NodeKind.DYNAMIC_SUPERVISOR)
            slot.ref = DynamicSupervisorRef(slot)
        return slot

    @property
    def id(self) -> str:
        return self.spec.id

    # -- running -------------------------------------------------------------------------------

    async def run(
        self, report: Report, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run one incarnation; errors before ``started()`` propagate (a start failure)."""
        if self.finalized:
            self.finalized = False
            if self.mailbox is not None:
                self.mailbox.reopen()
        if self.spec.name is not None:
            self.env.registry.claim(self.spec.name, self.ref)
        incarnation = Incarnation()
        self.incarnation = incarnation
        self.state = State.STARTING
        status = _Status(self, incarnation, task_status)
        del task_status  # only ``status`` may hold it, and only until started()
        kind = ExitKind.NORMAL
        error: BaseException | None = None
        try:
            with incarnation.scope:
                await self._run_body(incarnation, status)
            if not incarnation.started:
                if incarnation.stop_requested:
                    raise ActorNotRunning(f"{self.path!r} was stopped while starting")
                raise RuntimeError(
                    f"{self.path!r} returned before signalling task_status.started()"
                )
            if incarnation.scope.cancelled_caught or incarnation.stop_requested:
                kind = ExitKind.SHUTDOWN
        except Exception as exc:
            if not incarnation.started:
                self.incarnation = None
                self.state = State.FAILED
                raise
            kind, error = ExitKind.ABNORMAL, exc
        except BaseException:
            # Cancelled from outside (or KeyboardInterrupt): not ours to report or restart.
            if self.incarnation is incarnation:
                self.incarnation = None
            self.state = State.STOPPED
            raise
        finally:
            incarnation.done.set()
        if should_restart(self.spec.restart, kind) and not incarnation.stop_requested:
            self.state = State.RESTARTING
        else:
            self.state = State.FAILED if kind is ExitKind.ABNORMAL else State.STOPPED
        report(Exit(self, incarnation, kind, error))

    def _run_body(self, incarnation: Incarnation, status: _Status) -> Awaitable[object]:
        """The incarnation's coroutine (returned, not awaited here: one frame less per child)."""
        start = self.spec.start
        if not isinstance(start, TaskStart):
            current_task_control.set(None)
        if isinstance(start, ActorStart):
            from ._actor import ActorRunner

            assert self.mailbox is not None
            runner = ActorRunner(self, self.mailbox)
            incarnation.body = runner
            return runner.run(start.factory, status)
        if isinstance(start, TaskStart):
            control = TaskControl()
            incarnation.body = control
            current_task_control.set(control)
            return start.run(status)
        if isinstance(start, SupervisorSpec):
            from ._supervisor import Supervisor

            supervisor = Supervisor(self, start)
            incarnation.body = supervisor
            return supervisor.serve(status)
        from ._dynamic import DynamicSupervisor

        dynamic = DynamicSupervisor(self, start)
        incarnation.body = dynamic
        return dynamic.serve(status)

    async def stop(self) -> None:
        """Stop the running incarnation: ask politely, wait up to the shutdown timeout, cancel.

        Returns once the incarnation has finished; a no-op when nothing runs.
        """
        incarnation = self.incarnation
        if incarnation is None:
            return
        incarnation.stop_requested = True
        self.state = State.STOPPING
        body = incarnation.body
        polite = body is not None and body.request_stop()
        timeout = self.spec.shutdown
        if not polite or timeout == 0:
            incarnation.scope.cancel()
        elif timeout is None:
            await incarnation.done.wait()
        else:
            with trio.move_on_after(timeout):
                await incarnation.done.wait()
            incarnation.scope.cancel()
        await incarnation.done.wait()
        if self.incarnation is incarnation:
            self.incarnation = None
        self.state = State.STOPPED

    def finalize(self) -> None:
        """This slot will not run again (unless its parent restarts): close and unregister."""
        for child in self.children:
            child.finalize()
        if self.mailbox is not None:
            self.mailbox.close()
        self.env.registry.release(self.ref)
        self.finalized = True
        if self.state not in (State.STOPPED, State.FAILED):
            self.state = State.STOPPED

    def body(self) -> Body:
        """The running incarnation's body, or a clear error when there is none."""
        incarnation = self.incarnation
        if incarnation is None or incarnation.body is None:
            if self.finalized:
                raise ActorStopped(f"{self.path!r} has stopped")
            raise ActorNotRunning(f"{self.path!r} is not running (state {self.state.value})")
        return incarnation.body

    # -- introspection -------------------------------------------------------------------------

    def snapshot(self, limit: int | None = None) -> Stats:
        """This node and its subtree; ``limit`` caps the children listed per node."""
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be None or an integer >= 0, got {limit!r}")
        start = self.spec.start
        strategy: str | None = None
        max_children: int | None = None
        slots: list[Slot] = []
        if isinstance(start, SupervisorSpec):
            strategy = start.strategy.value
            slots = self.children
        elif isinstance(start, DynamicSupervisorSpec):
            strategy = "simple_one_for_one"
            max_children = start.max_children
            incarnation = self.incarnation
            if incarnation is not None and incarnation.body is not None:
                from ._dynamic import DynamicSupervisor

                assert isinstance(incarnation.body, DynamicSupervisor)
                slots = incarnation.body.live_children()
        listed = slots if limit is None else slots[:limit]
        children = tuple(child.snapshot(limit) for child in listed)
        mailbox = self.mailbox
        running = self.state in (State.RUNNING, State.STOPPING)
        uptime = None
        if running and self.started_clock is not None:
            try:
                uptime = round(trio.current_time() - self.started_clock, 3)
            except RuntimeError:  # snapshot taken outside the Trio run (e.g. from a thread)
                uptime = None
        return Stats(
            name=self.spec.id,
            path=self.path,
            kind=self.kind,
            strategy=strategy,
            state=self.state,
            restart=self.spec.restart,
            mailbox_depth=mailbox.depth() if mailbox is not None else 0,
            mailbox_capacity=mailbox.capacity if mailbox is not None else 0,
            messages_handled=mailbox.handled if mailbox is not None else 0,
            restarts=self.restarts,
            started_at=self.started_at,
            uptime_seconds=uptime,
            registered_name=self.spec.name,
            max_children=max_children,
            child_count=len(slots),
            children=children,
            info=self.spec.info() if self.spec.info is not None else None,
        )
