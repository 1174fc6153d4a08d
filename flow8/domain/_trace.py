"""What ties a play to the request that started it: its correlation id, and a W3C trace.

A play started by an HTTP request keeps that request's correlation id (``X-Request-Id``, the
one in the audit trail and in every log line of the request) and, when the request carried a
valid W3C ``traceparent`` (https://www.w3.org/TR/trace-context/), its trace id and flags. The
play logs them on every line, whichever process runs it; its outbound HTTP requests carry a
``traceparent`` of that trace with a span id of their own. flow8 records no spans, so a play
started without a ``traceparent`` sends none: a trace flow8 made up would impose a sampling
decision (W3C has no "undecided" flag) on every service it calls.
"""

from __future__ import annotations

import os
import re

import attrs

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@attrs.frozen
class PlayTrace:
    """``correlation_id``: the id of the request that started the play (its logs say it);
    ``trace_id`` (32 lower-case hex digits) and ``trace_flags`` (2): the W3C trace it
    continues, None when it was started without one."""

    correlation_id: str | None = None
    trace_id: str | None = None
    trace_flags: str | None = None

    def __bool__(self) -> bool:
        return self.correlation_id is not None or self.trace_id is not None

    def traceparent(self) -> str | None:
        """A ``traceparent`` for one outbound request: this trace, a fresh span id and the
        flags it came with; None without a trace."""
        if self.trace_id is None:
            return None
        return f"00-{self.trace_id}-{new_span_id()}-{self.trace_flags or '00'}"


def parse_traceparent(value: str | bytes | None) -> tuple[str, str] | None:
    """(trace id, flags) of a W3C ``traceparent`` header, or None when it is missing or not
    valid: version ``ff``, an all-zero trace or parent id, upper-case hex, or (version 00)
    anything after the flags. A later version's extra fields are allowed, as the spec asks."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    value = value.strip(" \t")
    if len(value) > 512:
        return None
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, flags


def new_span_id() -> str:
    """16 random lower-case hex digits, never all zero."""
    while True:
        span = os.urandom(8).hex()
        if span != _ZERO_SPAN:
            return span
