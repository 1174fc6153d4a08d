"""Polite stop for plain task children, reached through a context variable."""

from __future__ import annotations

import contextvars

import attrs
import trio


@attrs.define(eq=False)
class TaskControl:
    """Per-incarnation stop signal of a task child.

    The event is created only when the task asks for it: a task that never looked at its stop
    signal cannot be asked politely, so its supervisor cancels it at once instead of waiting
    out the shutdown timeout for nothing.
    """

    event: trio.Event | None = None
    requested: bool = False

    def stop_event(self) -> trio.Event:
        if self.event is None:
            self.event = trio.Event()
            if self.requested:
                self.event.set()
        return self.event

    def request_stop(self) -> bool:
        self.requested = True
        if self.event is None:
            return False
        self.event.set()
        return True


# Set by every incarnation (None for non-task children): a child started by another task
# (e.g. through a dynamic supervisor) would otherwise inherit its starter's stop signal.
current_task_control: contextvars.ContextVar[TaskControl | None] = contextvars.ContextVar(
    "actors_task_control", default=None
)


def stop_requested() -> trio.Event:
    """The event a task child's supervisor sets to ask it to return (a polite stop).

    Call it from inside a task child (or a task it spawned), e.g.
    ``hypercorn.trio.serve(app, config, shutdown_trigger=actors.stop_requested().wait)``.
    A task that calls it gets its spec's shutdown timeout to return once the event is set;
    one that never calls it is cancelled directly when its supervisor stops it.
    """
    control = current_task_control.get()
    if control is None:
        raise RuntimeError("stop_requested() called outside a task child of a supervisor")
    return control.stop_event()
