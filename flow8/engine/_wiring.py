"""Child specs for the supervision tree."""

from __future__ import annotations

import actors
from flow8.events import EventBus

from ._engine import Engine


def events_child(bus: EventBus, *, id: str = "events") -> actors.ChildSpec:
    """The ``events`` actor: holds the bus for the lifetime of the tree."""
    return actors.task(id, bus.serve, shutdown=1.0)


def engine_child(engine: Engine, *, id: str = "engine") -> actors.ChildSpec:
    """The ``engine`` supervisor (one_for_one): the ``plays`` dynamic supervisor (one
    temporary PlayActor per running play) and the ``dispatcher``.

    After ``open_runtime``, call ``engine.attach(runtime.dynamic_supervisor("engine/plays"))``
    so plays run under ``plays``; until then the dispatcher runs them in its own nursery.
    """
    return actors.supervisor(
        id,
        [
            actors.dynamic_supervisor("plays", max_children=engine.settings.max_running_plays),
            actors.task("dispatcher", engine.serve, shutdown=5.0),
        ],
        strategy=actors.Strategy.ONE_FOR_ONE,
        intensity=3,
        period=5.0,
    )
