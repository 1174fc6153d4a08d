"""The request being handled: its correlation id in every log line, and in the plays it starts.

An interface (the HTTP app's middleware, a channel's http listener, an MCP tool call) enters
each request it handles with :func:`enter_request`, and leaves it with :func:`leave_request`
when it is answered. Meanwhile every log line of that task, and of the tasks it starts, says
``correlation_id`` (and ``trace_id`` when the request carried a valid W3C ``traceparent``), and
a play started through ``PlayService`` keeps both (:func:`current_trace`, a
``flow8.domain.PlayTrace``): the play logs them and its outbound requests carry the trace on,
whichever process runs it and however long after.

Trio copies a task's context variables into every task it starts, at its start: the requests
an HTTP server handles each in a task of their own never see each other's, and a request that
is left restores what was there before (a keep-alive connection's next request on a channel
runs in the same task). A task started during a request keeps what it was given, so a
long-lived one (a play's actor) binds its own.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import random
import re
from collections.abc import Iterator

from flow8.domain import PlayTrace, parse_traceparent
from flow8.logs import Bound, bind_log_context, reset_log_context

__all__ = [
    "Entered",
    "PlayTrace",
    "correlation_id",
    "current_trace",
    "enter_request",
    "leave_request",
    "request_scope",
]

_CORRELATION = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
# Correlation ids tell requests apart in logs; they guard nothing, so they come from a
# generator seeded once from the OS rather than a getrandom() syscall per request.
_ids = random.Random(os.urandom(32))
# (correlation id, trace id, trace flags) of the request being handled; the PlayTrace is made
# only for a play started meanwhile (this is on every request's path).
_Current = tuple[str, str | None, str | None]
_current: contextvars.ContextVar[_Current | None] = contextvars.ContextVar(
    "flow8.request_trace", default=None
)

Entered = tuple[Bound, contextvars.Token[_Current | None]]


def correlation_id(sent: bytes | str | None) -> str:
    """The client's ``X-Request-Id`` when well formed, otherwise a fresh random one."""
    if isinstance(sent, str):
        sent = sent.encode("latin-1", "replace")
    if sent and _CORRELATION.match(sent):
        return sent.decode("ascii")
    return f"{_ids.getrandbits(64):016x}"


def current_trace() -> PlayTrace | None:
    """The trace of the request this task is handling, None outside of one."""
    current = _current.get()
    return PlayTrace(*current) if current is not None else None


def enter_request(correlation: str, traceparent: bytes | str | None = None) -> Entered:
    """Handle a request with id ``correlation``: bound in the logs (with the trace id of a
    valid ``traceparent``; one that is not valid is ignored) and the trace of the plays it
    starts. Returns what :func:`leave_request` takes."""
    parsed = parse_traceparent(traceparent) if traceparent else None
    if parsed is None:
        # A request has its own task, or follows one that left (a keep-alive connection's
        # next request): no trace id is bound further out for this one to hide.
        return bind_log_context(correlation_id=correlation), _current.set((correlation, None, None))
    trace_id, flags = parsed
    bound = bind_log_context(correlation_id=correlation, trace_id=trace_id)
    return bound, _current.set((correlation, trace_id, flags))


def leave_request(entered: Entered) -> None:
    """Put back what was bound before :func:`enter_request` (in the same task)."""
    bound, token = entered
    _current.reset(token)
    reset_log_context(bound)


@contextlib.contextmanager
def request_scope(correlation: str, traceparent: bytes | str | None = None) -> Iterator[None]:
    """:func:`enter_request` for the duration of a ``with`` block."""
    entered = enter_request(correlation, traceparent)
    try:
        yield
    finally:
        leave_request(entered)
