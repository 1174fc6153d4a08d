"""What one channel's listener works with, built once per channel revision."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import trio

from flow8.services.audit import AuditEntry
from flow8.services.channels import Channel
from flow8.services.events import EventService

from ._launch import Launcher
from ._ratelimit import RateLimiter
from ._routing import Router
from ._stats import ChannelStats


@attrs.frozen
class Limits:
    max_body_bytes: int = 1_048_576
    allowed_origins: tuple[str, ...] = ()
    keep_alive_seconds: float = 60.0  # an idle http keep-alive connection is closed after
    body_seconds: float = 30.0  # an http body not received by then: 408 (a slow sender)
    send_queue: int = 256  # ws/tcp: messages waiting for a slow client before it is dropped
    max_pending: int = 64  # ws/tcp: plays one connection may wait on at once


@attrs.define
class Drain:
    """A polite stop of one listener incarnation (its channel changed or was disabled): the
    socket closes, idle keep-alive connections and ws/tcp sessions end at once, and http
    requests in progress get the child's shutdown time to be answered."""

    draining: bool = False
    scopes: set[trio.CancelScope] = attrs.field(factory=set)

    def start(self) -> None:
        self.draining = True
        for scope in self.scopes:
            scope.cancel()

    @contextlib.contextmanager
    def cancellable(self) -> Iterator[trio.CancelScope]:
        """A scope the drain cancels (entered already cancelled once draining)."""
        with trio.CancelScope() as scope:
            if self.draining:
                scope.cancel()
            self.scopes.add(scope)
            try:
                yield scope
            finally:
                self.scopes.discard(scope)


@attrs.frozen
class ChannelContext:
    channel: Channel
    launcher: Launcher
    events: EventService
    router: Router
    limiter: RateLimiter
    stats: ChannelStats
    record: Callable[[AuditEntry], None]
    limits: Limits
    drain: Drain = attrs.field(factory=Drain)

    def audit(
        self,
        *,
        client: str,
        status: int,
        route: str | None,
        play_ids: list[str],
        started: float,
        method: str | None = None,
        path: str | None = None,
        error: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """One ``channel_request`` entry: which channel and route, who, how it ended. Never
        headers or bodies (they may hold credentials)."""
        details: dict[str, Any] = {
            "channel": self.channel.name,
            "kind": self.channel.kind.value,
            "route": route,
            "client": client,
            "status": status,
            "playIds": play_ids,
        }
        if error is not None:
            details["error"] = error
        self.record(
            AuditEntry(
                "channel_request",
                company_id=self.channel.company_id,
                ip=client.rsplit(":", 1)[0] if client else None,
                correlation_id=correlation_id,
                method=method,
                path=path,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                target_type="channel",
                target_id=self.channel.id,
                details=details,
            )
        )
