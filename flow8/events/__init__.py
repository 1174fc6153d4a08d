"""The event bus: play and layer state changes, fanned out to filtered subscribers.

The engine publishes; the WebSocket API and ``flow8 run`` subscribe. It knows nothing of
plays beyond the ids an event carries, so it sits below the engine.
"""

from __future__ import annotations

from ._events import (
    LAYER_COMPLETED,
    LAYER_FAILED,
    LAYER_STARTED,
    PLAY_COMPLETED,
    PLAY_FAILED,
    PLAY_LOG,
    PLAY_STARTED,
    PLAY_WAITING,
    SUBSCRIBER_DROPPED,
    Event,
    EventBus,
    EventFilter,
)

__all__ = [
    "LAYER_COMPLETED",
    "LAYER_FAILED",
    "LAYER_STARTED",
    "PLAY_COMPLETED",
    "PLAY_FAILED",
    "PLAY_LOG",
    "PLAY_STARTED",
    "PLAY_WAITING",
    "SUBSCRIBER_DROPPED",
    "Event",
    "EventBus",
    "EventFilter",
]
