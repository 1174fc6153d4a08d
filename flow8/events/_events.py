"""The events bus: play and layer state changes, fanned out to filtered subscribers.

Publishing never blocks and never slows the engine: each subscriber has a bounded buffer; a
subscriber that falls behind is dropped, after a final ``subscriber:dropped`` notice (one
slot of every buffer is reserved for it). Observers (the metrics) are called in ``publish``
itself instead: they only count, so they cannot fall behind, and are never dropped.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from typing import Any

import attrs
import trio

from flow8.logs import get_logger

log = get_logger("flow8.events")

PLAY_STARTED = "play:started"
LAYER_STARTED = "play:layer:started"
LAYER_COMPLETED = "play:layer:completed"
LAYER_FAILED = "play:layer:failed"
PLAY_WAITING = "play:waiting"
PLAY_LOG = "play:log"  # a console-log line: {ref, level, message, data, at}
PLAY_COMPLETED = "play:completed"
PLAY_FAILED = "play:failed"
SUBSCRIBER_DROPPED = "subscriber:dropped"


@attrs.frozen
class Event:
    """One event. ``data`` is camelCase JSON, ready for the WebSocket."""

    type: str
    company_id: str
    flow_id: str | None
    play_id: str | None
    data: dict[str, Any] = attrs.field(factory=dict)
    at: float = attrs.field(factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "companyId": self.company_id,
            "flowId": self.flow_id,
            "playId": self.play_id,
            "at": self.at,
            "data": self.data,
        }


@attrs.frozen
class EventFilter:
    """Which events a subscriber wants; ``None`` fields match anything. Company is required:
    a subscriber only ever sees its own company's events (``None`` is for system use)."""

    company_id: str | None
    flow_id: str | None = None
    play_id: str | None = None
    types: frozenset[str] | None = None

    def matches(self, e: Event) -> bool:
        return self.accepts(e.type, e.company_id, e.flow_id, e.play_id)

    def accepts(
        self, type_: str, company_id: str, flow_id: str | None, play_id: str | None
    ) -> bool:
        return (
            (self.company_id is None or company_id == self.company_id)
            and (self.flow_id is None or flow_id == self.flow_id)
            and (self.play_id is None or play_id == self.play_id)
            and (self.types is None or type_ in self.types)
        )


# Called with each event of the types it observes, inside `publish`: it must be quick.
Observer = Callable[["Event"], None]


@attrs.define(eq=False)
class _Subscriber:
    filter: EventFilter
    send: trio.MemorySendChannel[Event]
    capacity: int
    dropped: bool = False


@attrs.define
class EventBus:
    """Publish/subscribe of :class:`Event`. ``publish`` is synchronous and non-blocking."""

    default_buffer: int = 256
    _subscribers: list[_Subscriber] = attrs.field(factory=list)
    # Subscribers to one play (waiters, play pages) are looked up directly, so that many of
    # them do not make every publish scan them all.
    _by_play: dict[str, list[_Subscriber]] = attrs.field(factory=dict)
    # Observers by event type, every company's events (see `observe`).
    _observers: dict[str, list[Observer]] = attrs.field(factory=dict)
    published: int = 0
    dropped_subscribers: int = 0

    def observe(self, types: Iterable[str], observer: Observer) -> None:
        """Call ``observer`` with every event of ``types``, of every company, as it is
        published. For counting (metrics): it runs on the publisher's path, so it must be
        quick; an observer that raises is logged and the event goes on to the subscribers."""
        for type_ in types:
            self._observers.setdefault(type_, []).append(observer)

    def wants(self, type_: str, company_id: str, flow_id: str | None, play_id: str) -> bool:
        """Whether any subscriber would receive such an event: publishers skip building
        events nobody listens to (the hot path publishes several per step)."""
        if type_ in self._observers:
            return True
        for sub in self._subscribers:
            if not sub.dropped and sub.filter.accepts(type_, company_id, flow_id, play_id):
                return True
        for sub in self._by_play.get(play_id, ()):
            if not sub.dropped and sub.filter.accepts(type_, company_id, flow_id, play_id):
                return True
        return False

    def publish(self, event: Event) -> None:
        self.published += 1
        observers = self._observers.get(event.type)
        if observers is not None:
            for observer in observers:
                try:
                    observer(event)
                except Exception:  # a bug in what counts must not fail what is counted
                    log.exception("event_observer_failed", type=event.type)
        targeted = self._by_play.get(event.play_id) if event.play_id else None
        for sub in (*self._subscribers, *targeted) if targeted else self._subscribers:
            if sub.dropped or not sub.filter.matches(event):
                continue
            stats = sub.send.statistics()
            if stats.current_buffer_used >= sub.capacity - 1:
                self._drop(sub, event)
                continue
            try:
                sub.send.send_nowait(event)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._drop(sub, event)

    def _drop(self, sub: _Subscriber, event: Event) -> None:
        sub.dropped = True
        self.dropped_subscribers += 1
        notice = Event(
            SUBSCRIBER_DROPPED,
            event.company_id,
            None,
            None,
            {"reason": "subscriber fell behind; events were dropped", "buffer": sub.capacity},
        )
        with suppress(trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            sub.send.send_nowait(notice)
        sub.send.close()

    @asynccontextmanager
    async def subscribe(
        self, filter: EventFilter, *, buffer: int | None = None
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Event]]:
        """Receive matching events until the block ends; the channel ends early (after a
        ``subscriber:dropped`` notice) if the subscriber falls ``buffer`` events behind."""
        capacity = max(2, buffer or self.default_buffer)
        send, receive = trio.open_memory_channel[Event](capacity)
        sub = _Subscriber(filter, send, capacity)
        bucket = (
            self._by_play.setdefault(filter.play_id, [])
            if filter.play_id is not None
            else self._subscribers
        )
        bucket.append(sub)
        try:
            async with receive:
                yield receive
        finally:
            bucket.remove(sub)
            if filter.play_id is not None and not bucket:
                del self._by_play[filter.play_id]
            send.close()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers) + sum(len(b) for b in self._by_play.values())

    def close(self) -> None:
        """End every subscription (at shutdown)."""
        for sub in self._subscribers:
            sub.send.close()
        for bucket in self._by_play.values():
            for sub in bucket:
                sub.send.close()

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The ``events`` actor: holds the bus for the tree's lifetime."""
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            self.close()
