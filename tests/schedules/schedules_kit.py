"""Helpers for the schedule tests: an engine, the schedules service and schedulers over one
in-memory store, as the tree wires them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import attrs
import trio

from flow8.domain import Play, parse_flow_definition
from flow8.engine import Engine
from flow8.events import EventBus
from flow8.jobs import Scheduler
from flow8.modules import default_registry
from flow8.services.flows import FlowRepository
from flow8.services.kv import KvStore
from flow8.services.plays import PlayService
from flow8.services.schedules import ScheduleService
from flow8.store import Store

COMPANY = "acme"
FLOW = {"name": "tick", "flowlets": [{"ref": "a", "appId": "set", "args": {"value": 1}}]}


@attrs.define
class Kit:
    store: Store
    engine: Engine
    plays: PlayService
    schedules: ScheduleService
    flow_id: str
    nursery: trio.Nursery
    schedulers: list[tuple[Scheduler, trio.CancelScope]] = attrs.field(factory=list)

    async def start_scheduler(self) -> Scheduler:
        """One more instance's scheduler (changes made through ``schedules`` wake the first)."""
        scheduler = Scheduler(self.store, self.plays)
        scope = trio.CancelScope()

        async def run(task_status: trio.TaskStatus[None]) -> None:
            with scope:
                await scheduler.serve(task_status)

        await self.nursery.start(run)
        if not self.schedulers:
            self.schedules.on_change = scheduler.changed
        self.schedulers.append((scheduler, scope))
        return scheduler

    def stop_schedulers(self) -> None:
        """Every scheduler stops (an outage of every instance)."""
        for _, scope in self.schedulers:
            scope.cancel()
        self.schedulers.clear()
        self.schedules.on_change = lambda company_id, schedule_id: None

    async def plays_of_flow(self) -> list[Play]:
        found, _ = await self.engine.list_plays(COMPANY, flow_id=self.flow_id, limit=10_000)
        return sorted(found, key=lambda p: p.input["scheduledAt"])


def now() -> datetime:
    return datetime.fromtimestamp(time.time(), UTC)


async def sleep_until_second(offset: float, *, every: float = 1.0) -> None:
    """Sleep until ``offset`` seconds past the next multiple of ``every`` (wall time)."""
    t = time.time()
    target = (t // every + 1) * every + offset
    await trio.sleep(target - t)


def scheduled(plays: list[Play]) -> list[str]:
    return [p.input["scheduledAt"] for p in plays]


@asynccontextmanager
async def schedule_kit(store: Store) -> AsyncIterator[Kit]:
    async with trio.open_nursery() as nursery:
        registry = default_registry()
        flows, kv = FlowRepository(store, registry), KvStore(store)
        engine = Engine(store, EventBus(), None, registry, flows=flows, kv=kv)
        await nursery.start(engine.serve)
        flow = await flows.create(COMPANY, parse_flow_definition(FLOW))
        plays = PlayService(engine)
        kit = Kit(store, engine, plays, ScheduleService(store, flows, plays), flow.id, nursery)
        yield kit
        nursery.cancel_scope.cancel()


def body(**fields: Any) -> dict[str, Any]:
    return {"cron": "* * * * * *", **fields}
