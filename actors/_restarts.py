"""The restart-intensity window of one supervisor (one window for all its children)."""

from __future__ import annotations

import collections
import logging

import attrs
import trio

from ._slot import Exit, ExitKind
from .exceptions import SupervisorFailed

logger = logging.getLogger("actors")


def log_exit(exit: Exit, will_restart: bool) -> None:
    """Crashes are logged with their traceback; normal exits only at debug level."""
    action = "restarting it" if will_restart else "not restarting it"
    if exit.kind is ExitKind.ABNORMAL:
        logger.warning(
            "child %s crashed with %r; %s",
            exit.slot.path,
            exit.error,
            action,
            exc_info=exit.error,
        )
    else:
        logger.debug("child %s exited normally; %s", exit.slot.path, action)


@attrs.define
class RestartWindow:
    """More than ``intensity`` restarts within the last ``period`` seconds is too many."""

    intensity: int
    period: float
    _times: collections.deque[float] = attrs.Factory(collections.deque)

    def allow(self) -> bool:
        """Record a restart now; False when it would exceed the intensity."""
        now = trio.current_time()
        times = self._times
        times.append(now)
        while times and now - times[0] >= self.period:
            times.popleft()
        return len(times) <= self.intensity


def describe_exit(exit: Exit) -> str:
    if exit.kind is ExitKind.ABNORMAL:
        return f"crashed with {exit.error!r}"
    return "exited normally"


def escalation(path: str, window: RestartWindow, exit: Exit) -> SupervisorFailed:
    """The error a supervisor fails with, chained to the last child error."""
    error = SupervisorFailed(
        f"supervisor {path!r} gave up after more than {window.intensity} restart(s) in "
        f"{window.period}s; last: child {exit.slot.id!r} {describe_exit(exit)}"
    )
    error.__cause__ = exit.error
    logger.error("%s", error)
    return error
