"""A slot's mailbox: a bounded Trio memory channel that outlives restarts of its actor.

Calls travel as ``_Call`` envelopes; the caller parks itself with
``trio.lowlevel.wait_task_rescheduled`` and the actor reschedules it with the outcome, which
costs one task switch each way (a reply channel per call would cost far more).
"""

from __future__ import annotations

from typing import Any

import outcome
import trio

from .exceptions import ActorStopped


class _Call:
    """A request waiting for its reply. ``task`` is set once the caller has parked."""

    __slots__ = ("abandoned", "msg", "result", "task")

    def __init__(self, msg: object) -> None:
        self.msg = msg
        self.task: trio.lowlevel.Task | None = None
        self.result: outcome.Outcome[Any] | None = None
        self.abandoned = False


def deliver(call: _Call, result: outcome.Outcome[Any]) -> None:
    """Hand ``result`` to the caller of ``call`` unless it gave up (timed out, cancelled)."""
    task = call.task
    if task is not None:
        call.task = None
        trio.lowlevel.reschedule(task, result)
    elif not call.abandoned and call.result is None:
        # The caller was woken from a blocking send but has not parked yet; it reads this.
        call.result = result


class Mailbox:
    """The bounded queue of one actor slot; reopened when a stopped slot is started again."""

    __slots__ = ("capacity", "closed", "handled", "path", "receive_channel", "send_channel")

    def __init__(self, path: str, capacity: int) -> None:
        self.path = path
        self.capacity = capacity
        self.handled = 0
        self.closed = True
        self.send_channel: trio.MemorySendChannel[object]
        self.receive_channel: trio.MemoryReceiveChannel[object]
        self.reopen()

    def reopen(self) -> None:
        if self.closed:
            self.send_channel, self.receive_channel = trio.open_memory_channel[object](
                self.capacity
            )
            self.closed = False

    def depth(self) -> int:
        if self.closed:
            return 0
        return self.send_channel.statistics().current_buffer_used

    def close(self) -> None:
        """Refuse further messages and answer every queued call with ActorStopped."""
        if self.closed:
            return
        self.closed = True
        self.send_channel.close()
        while True:
            try:
                envelope = self.receive_channel.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            if type(envelope) is _Call:
                deliver(envelope, outcome.Error(stopped_error(self.path)))
        # Closing the receive side wakes senders blocked on a full mailbox (BrokenResourceError).
        self.receive_channel.close()


def stopped_error(path: str) -> ActorStopped:
    return ActorStopped(f"actor {path!r} has stopped; its mailbox is closed")
