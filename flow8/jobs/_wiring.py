"""The ``jobs`` supervisor of the tree and its ``scheduler`` child."""

from __future__ import annotations

import actors

from ._scheduler import Scheduler


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


def scheduler_child(scheduler: Scheduler, *, id: str = "scheduler") -> actors.ChildSpec:
    """The ``scheduler`` actor: fires the schedules (see ``_scheduler``); its node's ``info``
    in the tree is ``Scheduler.statistics()`` (last run, next fire, counters)."""
    return actors.task(id, scheduler.serve, shutdown=2.0, info=scheduler.statistics)
