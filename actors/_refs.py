"""Refs: stable handles on slots. A ref stays valid across restarts of what it points to."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import trio

from ._mailbox import Mailbox, _Call, stopped_error
from ._spec import DEFAULT_CAPACITY, DEFAULT_SHUTDOWN, ChildSpec, Restart, TaskFunction
from ._spec import actor as actor_spec
from ._spec import task as task_spec
from .exceptions import ActorNotRunning, CallTimeout, ChildNotFound, MailboxFull

if TYPE_CHECKING:
    from ._actor import Actor
    from ._dynamic import DynamicSupervisor
    from ._slot import Slot
    from ._stats import Stats

M = TypeVar("M")
R = TypeVar("R")
M2 = TypeVar("M2")
R2 = TypeVar("R2")

DEFAULT_CALL_TIMEOUT = 5.0


class Ref:
    """A handle on one node of the tree (actor, task or supervisor)."""

    __slots__ = ("_slot",)

    def __init__(self, slot: Slot) -> None:
        self._slot = slot

    @property
    def path(self) -> str:
        """Slash-separated path from the root, e.g. ``root/engine/plays``."""
        return self._slot.path

    @property
    def id(self) -> str:
        return self._slot.spec.id

    @property
    def alive(self) -> bool:
        """False once the node has stopped for good (it will not be restarted)."""
        return not self._slot.finalized

    def stats(self, limit: int | None = None) -> Stats:
        """A snapshot of this node and its subtree (``limit``: children listed per node)."""
        return self._slot.snapshot(limit)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"


class ActorRef(Ref, Generic[M, R]):
    """Send to an actor: ``send`` (backpressure), ``send_nowait`` and ``call`` (request/reply).

    The mailbox belongs to the child's slot, so the ref keeps working across restarts:
    messages sent while the actor restarts wait in the mailbox for the next incarnation.
    """

    __slots__ = ("_mailbox",)

    def __init__(self, slot: Slot, mailbox: Mailbox) -> None:
        super().__init__(slot)
        self._mailbox = mailbox

    def send_nowait(self, msg: M) -> None:
        """Queue ``msg`` or raise MailboxFull (ActorStopped if the actor is gone for good)."""
        mailbox = self._mailbox
        try:
            mailbox.send_channel.send_nowait(msg)
        except trio.WouldBlock:
            raise MailboxFull(
                f"mailbox of {mailbox.path!r} is full ({mailbox.capacity} messages)"
            ) from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise stopped_error(mailbox.path) from None

    async def send(self, msg: M) -> None:
        """Queue ``msg``, waiting while the mailbox is full (backpressure)."""
        channel = self._mailbox.send_channel
        try:
            channel.send_nowait(msg)
            return
        except trio.WouldBlock:
            pass
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise stopped_error(self._mailbox.path) from None
        try:
            await channel.send(msg)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise stopped_error(self._mailbox.path) from None

    async def call(self, msg: M, *, timeout: float | None = DEFAULT_CALL_TIMEOUT) -> R:
        """Send ``msg`` and return the handler's result.

        Raises CallTimeout when no reply came within ``timeout`` seconds (the time waiting for
        mailbox space counts), CallFailed (chained to the handler's error) when the handler
        raised, ActorStopped when the actor stopped for good before answering. A call that timed
        out may still be handled later; its reply is dropped.
        """
        if timeout is None:
            return await self._call(msg)  # type: ignore[no-any-return]
        with trio.move_on_after(timeout):
            return await self._call(msg)  # type: ignore[no-any-return]
        raise CallTimeout(f"call to {self._mailbox.path!r} got no reply within {timeout}s")

    async def _call(self, msg: object) -> Any:
        envelope = _Call(msg)
        channel = self._mailbox.send_channel
        try:
            channel.send_nowait(envelope)
        except trio.WouldBlock:
            try:
                await channel.send(envelope)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise stopped_error(self._mailbox.path) from None
            if envelope.result is not None:
                return envelope.result.unwrap()
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise stopped_error(self._mailbox.path) from None
        envelope.task = trio.lowlevel.current_task()

        def abort(_: Any) -> trio.lowlevel.Abort:
            envelope.task = None
            envelope.abandoned = True
            return trio.lowlevel.Abort.SUCCEEDED

        return await trio.lowlevel.wait_task_rescheduled(abort)


class TaskRef(Ref):
    """A handle on a plain task child (introspection only)."""

    __slots__ = ()


class SupervisorRef(Ref):
    """A handle on a static supervisor: look up its children."""

    __slots__ = ()

    def children(self) -> list[Ref]:
        return [child.ref for child in self._slot.children]

    def child(self, id: str) -> Ref:
        for child in self._slot.children:
            if child.spec.id == id:
                return child.ref
        raise ChildNotFound(f"supervisor {self.path!r} has no child {id!r}")


class DynamicSupervisorRef(Ref):
    """A handle on a dynamic supervisor: add, remove and count children on demand."""

    __slots__ = ()

    def _body(self) -> DynamicSupervisor:
        from ._dynamic import DynamicSupervisor

        body = self._slot.body()
        assert isinstance(body, DynamicSupervisor)
        return body

    async def start_child(self, spec: ChildSpec) -> Ref:
        """Start ``spec`` under this supervisor and return its ref once it has started.

        Raises TooManyChildren at the cap, DuplicateChild for an id in use, ChildStartFailed
        (chained) when it fails to start, ActorNotRunning when the supervisor is not running.
        """
        return await self._body().start_child(spec)

    async def start_actor(
        self,
        id: str,
        factory: Callable[[], Actor[M2, R2]],
        *,
        capacity: int = DEFAULT_CAPACITY,
        restart: Restart = Restart.TEMPORARY,
        shutdown: float | None = DEFAULT_SHUTDOWN,
        name: str | None = None,
    ) -> ActorRef[M2, R2]:
        """Typed shortcut: start an actor child and return its ActorRef."""
        spec = actor_spec(
            id, factory, capacity=capacity, restart=restart, shutdown=shutdown, name=name
        )
        ref = await self.start_child(spec)
        assert isinstance(ref, ActorRef)
        return ref

    async def start_task(
        self,
        id: str,
        run: TaskFunction,
        *,
        restart: Restart = Restart.TEMPORARY,
        shutdown: float | None = DEFAULT_SHUTDOWN,
        name: str | None = None,
    ) -> TaskRef:
        """Shortcut: start a plain task child."""
        spec = task_spec(id, run, restart=restart, shutdown=shutdown, name=name)
        ref = await self.start_child(spec)
        assert isinstance(ref, TaskRef)
        return ref

    async def terminate_child(self, id: str) -> None:
        """Stop child ``id`` (politely, cancelled after its shutdown timeout); no restart."""
        await self._body().terminate_child(id)

    def count(self) -> int:
        """How many children are live (starting or running) right now; 0 when not running."""
        try:
            return self._body().count()
        except ActorNotRunning:
            return 0

    def child(self, id: str) -> Ref:
        return self._body().child(id)

    def children(self) -> list[Ref]:
        return [slot.ref for slot in self._body().live_children()]
