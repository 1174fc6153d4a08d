"""The one seam every component call goes through.

A module asks its step for a component (``ctx.component("storage")``) and gets a
:class:`ComponentHandle`; ``await handle.call("read", {"path": ...})`` runs the provider's
operation. The handle times each call and, when the play records its calls, appends a
:class:`ComponentCall` (kind, operation, seq, input, output, duration) to the step's
:class:`CallRecorder`. Recorded input and output go through the play's secret mask first
(a credential applied to a request is recorded as ``***``), and bytes are recorded as
``{"base64": ...}`` so a recording is plain JSON.

Recordings are the base of flow test fixtures: record a real play once, replay its calls
later without touching the outside world.

A handle made for a step of a traced play (one started by a request with a W3C
``traceparent``) carries the step's ``trace``: while one of its calls runs, a provider's
transport reads a ``traceparent`` for each request it sends from :func:`outbound_traceparent`
(a context variable: Trio copies it into the worker thread an SDK runs in), so a provider's
requests join the trace of the request that started the play, each with a span id of its own.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

import attrs

from ._provider import Provider
from .exceptions import ComponentError, ComponentRefused

TraceSource = Callable[[], str | None]

# The trace of the step whose component call is running (module docstring).
_CALL_TRACE: ContextVar[TraceSource | None] = ContextVar("flow8_component_trace", default=None)


def outbound_traceparent() -> str | None:
    """A ``traceparent`` for one request a provider is about to send: the running step's
    trace with a fresh span id, or None outside a traced step's call."""
    trace = _CALL_TRACE.get()
    return trace() if trace is not None else None


@attrs.frozen
class ComponentCall:
    """One recorded call: what was asked of which kind of component, and what it answered
    (``error`` instead of ``output`` when it failed)."""

    component_kind: str
    operation: str
    seq: int
    input: Any
    output: Any
    duration_ms: float
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "componentKind": self.component_kind,
            "operation": self.operation,
            "seq": self.seq,
            "input": self.input,
            "output": self.output,
            "durationMs": self.duration_ms,
            "error": self.error,
        }


@attrs.define
class CallRecorder:
    """The calls of one step attempt, numbered in the order they were made."""

    mask: Callable[[Any], Any] = lambda value: value
    calls: list[ComponentCall] = attrs.Factory(list)

    def add(
        self,
        kind: str,
        operation: str,
        input: Any,
        output: Any,
        duration_ms: float,
        error: str | None,
    ) -> None:
        self.calls.append(
            ComponentCall(
                kind,
                operation,
                len(self.calls) + 1,
                self.mask(plain(input)),
                self.mask(plain(output)),
                round(duration_ms, 3),
                self.mask(error) if error is not None else None,
            )
        )

    def to_json(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.calls]


@attrs.frozen
class ComponentHandle:
    """A resolved component, as a step uses it. ``component_id`` is None for a built-in
    default (nothing configured); ``trace`` the step's, for a traced play."""

    kind: str
    provider_name: str
    component_id: str | None
    provider: Provider
    recorder: CallRecorder | None = None
    trace: TraceSource | None = None

    async def call(self, operation: str, input: Mapping[str, Any]) -> Any:
        run = self.provider.operations.get(operation)
        if run is None:
            raise ComponentRefused(
                f"the {self.kind}/{self.provider_name} provider cannot {operation}"
            )
        if self.trace is None:
            return await self._call(run, operation, input)
        token = _CALL_TRACE.set(self.trace)
        try:
            return await self._call(run, operation, input)
        finally:
            _CALL_TRACE.reset(token)

    async def _call(
        self, run: Callable[[Mapping[str, Any]], Any], operation: str, input: Mapping[str, Any]
    ) -> Any:
        started = time.perf_counter()
        if self.recorder is None:
            return await run(input)
        try:
            output = await run(input)
        except ComponentError as e:
            elapsed = (time.perf_counter() - started) * 1000
            self.recorder.add(self.kind, operation, input, None, elapsed, str(e))
            raise
        elapsed = (time.perf_counter() - started) * 1000
        self.recorder.add(self.kind, operation, input, output, elapsed, None)
        return output


def plain(value: Any) -> Any:
    """``value`` as JSON: bytes become ``{"base64": ...}``; tuples become lists."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def basic_token(username: str, password: str) -> str:
    """The ``Authorization: Basic`` value of a username and password (RFC 7617)."""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
