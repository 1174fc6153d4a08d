"""The ``jobs`` supervisor of the tree."""

from __future__ import annotations

import actors


def jobs_child(*children: actors.ChildSpec, id: str = "jobs") -> actors.ChildSpec:
    """The ``jobs`` supervisor (one_for_one): each child is an independent job (the
    scheduler, retention, the caches); a crash restarts that job alone."""
    return actors.supervisor(
        id,
        list(children),
        strategy=actors.Strategy.ONE_FOR_ONE,
        intensity=5,
        period=30.0,
    )
