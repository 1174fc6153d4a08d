"""Live play and layer events of a company (``/ws``): subscriptions on the event bus the
engine publishes on.

Events are JSON-ready (``Event.to_json()`` is a WebSocket frame's body); a subscriber that
falls ``buffer`` events behind gets ``subscriber:dropped`` and its channel ends.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import attrs
import trio

from flow8.events import Event, EventBus, EventFilter

__all__ = ["Event", "EventService"]


@attrs.frozen
class EventService:
    """Subscriptions scoped to one company: to one play, every play of one flow, or all of
    the company's plays. Whether that play or flow exists is the caller's to check first
    (``PlayService.get``, ``FlowService.get``): the bus knows only the ids events carry."""

    bus: EventBus

    def subscribe(
        self,
        company_id: str,
        *,
        play_id: str | None = None,
        flow_id: str | None = None,
        buffer: int | None = None,
    ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[Event]]:
        """Receive the matching events until the block ends (see ``EventBus.subscribe``)."""
        flt = EventFilter(company_id, flow_id=flow_id, play_id=play_id)
        return self.bus.subscribe(flt, buffer=buffer)
