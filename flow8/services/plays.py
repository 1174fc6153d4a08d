"""Plays: start (with idempotency keys), inspect, cancel, approve/reject, retry from a step."""

from __future__ import annotations

import builtins
from datetime import datetime
from functools import partial
from typing import Any

import attrs

from flow8.domain import Play, PlayLayer, PlayState, PlayTrace, Trigger, TriggerKind
from flow8.engine import (
    Engine,
    FlowDisabled,
    IdempotencyKeyReused,
    InvalidInput,
    PlayLimitReached,
    PlayNotFound,
    PlayStateError,
    StartTimedOut,
)

from .play_watch import PlaysWatch, PlayWatch
from .tracing import current_trace

__all__ = [
    "FlowDisabled",
    "IdempotencyKeyReused",
    "InvalidInput",
    "PlayLimitReached",
    "PlayNotFound",
    "PlayService",
    "PlayStateError",
    "PlayWatch",
    "PlaysWatch",
    "StartTimedOut",
]


@attrs.define
class PlayService:
    """Every method is scoped to ``company_id``.

    Errors: ``FlowNotFound``, ``FlowDisabled`` (a start of a disabled flow without
    ``force``), ``PlayNotFound``, ``PlayStateError`` (the play is not in a
    state that allows the request), ``InvalidInput`` (the input does not match the flow's
    ``inputSchema``; the message lists every problem), ``FlowValidationError`` (a stored
    flow that no longer compiles, e.g. a module was removed).

    A play started (or retried) while a request is handled keeps that request's trace
    (``flow8.services.tracing``: its correlation id, the W3C trace it carried) unless
    ``trace`` is given.
    """

    engine: Engine

    async def start(
        self,
        company_id: str,
        flow_id: str,
        input: Any = None,
        *,
        trigger: TriggerKind = TriggerKind.API,
        source: str | None = None,
        idempotency_key: str | None = None,
        version: int | None = None,
        timeout: float | None = None,
        approve_first: bool = False,
        force: bool = False,
        trace: PlayTrace | None = None,
    ) -> Play:
        """Queue (and, on an instance running plays, start) a play of the flow's latest
        version. A duplicate ``idempotency_key`` within 24 h returns the existing play.
        A disabled flow raises ``FlowDisabled`` unless ``force`` (a person's deliberate run).
        Raises ``PlayLimitReached`` over the company's start rate; with ``timeout``, see
        ``Engine.start_play`` (``StartTimedOut`` when nothing was created). With
        ``approve_first`` the play waits for ``approve`` before its first step(s)."""
        return await self.engine.start_play(
            company_id,
            flow_id,
            input,
            trigger=Trigger(trigger, source),
            idempotency_key=idempotency_key,
            version=version,
            timeout=timeout,
            approve_first=approve_first,
            force=force,
            trace=trace if trace is not None else current_trace(),
        )

    async def run(
        self,
        company_id: str,
        flow_id: str,
        input: Any = None,
        *,
        timeout: float | None = None,
        trigger: TriggerKind = TriggerKind.API,
        idempotency_key: str | None = None,
    ) -> Play:
        """Start and wait for the end (synchronous channels/API); TimeoutError after
        ``timeout`` seconds (the play keeps running)."""
        play = await self.start(
            company_id, flow_id, input, trigger=trigger, idempotency_key=idempotency_key
        )
        return await self.engine.wait_play(company_id, play.id, timeout=timeout)

    async def get(self, company_id: str, play_id: str) -> Play:
        return await self.engine.get_play(company_id, play_id)

    async def list(
        self,
        company_id: str,
        *,
        flow_id: str | None = None,
        state: PlayState | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        page: int = 0,
        size: int = 25,
    ) -> tuple[builtins.list[Play], int]:
        """One page, newest first, and the total count; the time window is on creation
        (``created_from`` inclusive, ``created_before`` exclusive)."""
        size = max(1, min(size, 100))
        return await self.engine.list_plays(
            company_id,
            flow_id=flow_id,
            state=state,
            created_from=created_from,
            created_before=created_before,
            skip=page * size,
            limit=size,
        )

    async def layers(
        self, company_id: str, play_id: str, *, page: int = 0, size: int = 100
    ) -> tuple[builtins.list[PlayLayer], int]:
        """One page of the play's layers in execution order, and how many it has."""
        await self.engine.get_play(company_id, play_id)
        size = max(1, min(size, 100))
        layers = await self.engine.get_layers(company_id, play_id, skip=page * size, limit=size)
        return layers, await self.engine.count_layers(company_id, play_id)

    async def cancel(self, company_id: str, play_id: str) -> Play:
        return await self.engine.cancel_play(company_id, play_id)

    async def approve(self, company_id: str, play_id: str, *, by: str | None = None) -> Play:
        return await self.engine.decide(company_id, play_id, approve=True, by=by)

    async def reject(self, company_id: str, play_id: str, *, by: str | None = None) -> Play:
        return await self.engine.decide(company_id, play_id, approve=False, by=by)

    async def retry(self, company_id: str, play_id: str, from_ref: str) -> Play:
        """A new play on the latest flow version, reusing outputs before ``from_ref``."""
        return await self.engine.retry_play(company_id, play_id, from_ref, trace=current_trace())

    async def wait(self, company_id: str, play_id: str, *, timeout: float | None = None) -> Play:
        return await self.engine.wait_play(company_id, play_id, timeout=timeout)

    # -- events of plays that run in another process (flow8.services.play_watch) ---------

    def runs_here(self, play_id: str) -> bool:
        """Whether this process runs the play now (its events are on this process's bus)."""
        return play_id in self.engine.local

    async def watch(self, company_id: str, play_id: str) -> PlayWatch:
        """The play's events read back from the store, for a subscriber in a process that
        may not run it: the play as it is now is taken for known (``PlayNotFound``)."""
        play = await self.get(company_id, play_id)
        scope = self.engine.store.tenant(company_id)
        watch = PlayWatch(
            company_id,
            play_id,
            play.flow_id,
            scope.collection("plays"),
            scope.collection("play_layers"),
            self.runs_here,
            partial(self.get, company_id, play_id),
        )
        await watch.first_look()
        return watch

    async def watch_plays(self, company_id: str, flow_id: str | None = None) -> PlaysWatch:
        """The play events (no layer events) of a flow's plays, or of the company's, read
        back from the store; the plays as they are now are taken for known."""
        scope = self.engine.store.tenant(company_id)
        watch = PlaysWatch(
            company_id,
            flow_id,
            scope.collection("plays"),
            scope.collection("play_layers"),
            self.runs_here,
            partial(self.get, company_id),
        )
        await watch.first_look()
        return watch
