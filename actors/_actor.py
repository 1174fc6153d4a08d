"""Actors: a class with ``async def handle(self, msg)`` run over its slot's mailbox.

Error rule (OTP, let it crash): when ``handle`` raises, the actor crashes with that error and
its supervisor decides what to restart. If the message was a ``call``, the caller receives
CallFailed chained to the handler's error at the same time. Actors that want to answer a call
with an error without crashing return an error *value* instead of raising.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import outcome
import trio

from ._mailbox import Mailbox, _Call, deliver
from ._refs import ActorRef
from .exceptions import ActorNotRunning, CallFailed

if TYPE_CHECKING:
    from ._slot import Slot

M = TypeVar("M")
R = TypeVar("R")


@attrs.define(eq=False)
class ActorContext(Generic[M, R]):
    """Handed to ``on_start``: who the actor is and how it ends itself."""

    path: str
    ref: ActorRef[M, R]
    _runner: ActorRunner

    def stop(self) -> None:
        """Finish the current message, run ``on_stop`` and end normally.

        A normal end restarts a permanent actor, and not a transient or temporary one.
        """
        self._runner.stopping = True


class Actor(abc.ABC, Generic[M, R]):
    """Subclass and implement ``handle``; its return value answers a ``call``.

    ``on_start`` runs before the actor counts as started (its supervisor waits for it, so a
    failure there is a start failure); ``on_stop`` runs after a polite stop, a ``ctx.stop()``
    and after a crash (best effort: an error there is noted on the crash error), never after
    the actor was cancelled for overrunning its shutdown timeout.
    """

    async def on_start(self, ctx: ActorContext[M, R]) -> None:
        """Optional hook run once per incarnation before any message."""

    @abc.abstractmethod
    async def handle(self, msg: M) -> R:
        """Handle one message; the result answers a ``call`` and is dropped for a ``send``."""

    async def on_stop(self) -> None:
        """Optional hook run when the actor ends without being cancelled."""


class ActorRunner:
    """The receive loop of one actor incarnation.

    It reads through its own clone of the mailbox's receive channel: a polite stop closes the
    clone, which wakes an idle actor without a cancel scope per blocking receive (cheaper in
    time and memory), while the mailbox itself stays open for the next incarnation.
    """

    __slots__ = ("_receive", "_slot", "mailbox", "stopping")

    def __init__(self, slot: Slot, mailbox: Mailbox) -> None:
        self._slot = slot
        self.mailbox = mailbox
        self.stopping = False
        self._receive: trio.MemoryReceiveChannel[object] | None = None

    def request_stop(self) -> bool:
        self.stopping = True
        if self._receive is not None:
            self._receive.close()
        return True

    async def run(
        self, factory: Callable[[], Actor[Any, Any]], task_status: trio.TaskStatus[Any]
    ) -> None:
        mailbox = self.mailbox
        actor = factory()
        ref = self._slot.ref
        assert isinstance(ref, ActorRef)
        await actor.on_start(ActorContext(self._slot.path, ref, self))
        receive = self._receive = mailbox.receive_channel.clone()
        if self.stopping:
            receive.close()
        task_status.started()
        handle = actor.handle
        try:
            while not self.stopping:
                try:
                    envelope = receive.receive_nowait()
                except trio.WouldBlock:
                    try:
                        envelope = await receive.receive()
                    except trio.ClosedResourceError:
                        break  # a polite stop closed our clone while we were idle
                except trio.ClosedResourceError:
                    break
                if type(envelope) is _Call:
                    try:
                        result = await handle(envelope.msg)
                    except Exception as exc:
                        failed = CallFailed(f"{mailbox.path!r} crashed handling the call: {exc!r}")
                        failed.__cause__ = exc
                        deliver(envelope, outcome.Error(failed))
                        raise
                    except BaseException:
                        deliver(
                            envelope,
                            outcome.Error(
                                ActorNotRunning(f"{mailbox.path!r} was stopped handling the call")
                            ),
                        )
                        raise
                    deliver(envelope, outcome.Value(result))
                else:
                    await handle(envelope)
                mailbox.handled += 1
        except Exception as exc:
            try:
                await actor.on_stop()
            except Exception as hook_error:
                exc.add_note(f"on_stop() after the crash also failed: {hook_error!r}")
            raise
        finally:
            receive.close()
        await actor.on_stop()
