"""Helpers for the engine tests (a uniquely named module: every test directory has its own
conftest, so helpers imported by name must not live in one)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from support.virtual_time import require_wall_clock

from flow8.domain import Flow, Play, parse_flow_definition
from flow8.engine import Engine, EngineSettings
from flow8.events import EventBus
from flow8.modules import ModuleRegistry, ModuleSpec, default_registry
from flow8.services.flows import FlowRepository
from flow8.services.kv import KvStore
from flow8.store import Store, open_store

COMPANY = "acme"


def fast_settings(**overrides: Any) -> EngineSettings:
    base: dict[str, Any] = {
        "lease_seconds": 2.0,
        "poll_interval": 0.05,
        "hold_delay_seconds": 0.3,
    }
    base.update(overrides)
    return EngineSettings(**base)


class StallableStore:
    """A real sqlite store whose writer a test can stall (`stall`: queued writes wait) and
    start again (`resume`)."""

    def __init__(self, store: Store, nursery: trio.Nursery) -> None:
        self.store = store
        self._nursery = nursery
        self._writer = trio.CancelScope()
        self._stopped = trio.Event()
        self.resume()

    async def _serve(self, writer: trio.CancelScope, stopped: trio.Event) -> None:
        try:
            with writer:
                await self.store.serve()
        finally:
            stopped.set()

    async def stall(self) -> None:
        """Stop the writer; returns once it has stopped, so writes from here stay queued."""
        self._writer.cancel()
        await self._stopped.wait()

    def resume(self) -> None:
        self._writer, self._stopped = trio.CancelScope(), trio.Event()
        self._nursery.start_soon(self._serve, self._writer, self._stopped)

    def queued_writes(self) -> int:
        queued: int = self.store.statistics()["queued_writes"]
        return queued


@asynccontextmanager
async def stallable_store(tmp_path: Path) -> AsyncIterator[StallableStore]:
    require_wall_clock("the sqlite store")
    async with (
        open_store(f"sqlite:///{tmp_path / 's.db'}", data_dir=tmp_path, serve=False) as store,
        trio.open_nursery() as nursery,
    ):
        yield StallableStore(store, nursery)
        nursery.cancel_scope.cancel()  # the writer, before the store closes


def new_engine(
    store: Store,
    events: EventBus | None = None,
    settings: EngineSettings | None = None,
    registry: ModuleRegistry | None = None,
) -> Engine:
    """An engine wired as the composition roots wire it: the flows it runs and its plays' KV
    are the flows and kv services' stores (``engine.flows`` and ``engine.kv`` are them)."""
    registry = registry or default_registry()
    flows, kv = FlowRepository(store, registry), KvStore(store)
    return Engine(store, events, settings, registry, flows=flows, kv=kv)


@asynccontextmanager
async def running_engine(store: Store, **settings: Any) -> AsyncIterator[Engine]:
    """An engine with its dispatcher, stopped before the store closes (as in the tree)."""
    async with trio.open_nursery() as nursery:
        eng = new_engine(store, EventBus(), fast_settings(**settings))
        await nursery.start(eng.serve)
        yield eng
        nursery.cancel_scope.cancel()


async def make_flow(engine: Engine, data: dict[str, Any], company: str = COMPANY) -> Flow:
    data = {"name": "test", **data}
    return await engine.flows.create(company, parse_flow_definition(data))


async def run(
    engine: Engine, flow: Flow, input: Any = None, timeout: float = 20, **kw: Any
) -> Play:
    play = await engine.start_play(flow.company_id, flow.id, input, **kw)
    return await engine.wait_play(flow.company_id, play.id, timeout=timeout)


async def layers_by_ref(engine: Engine, play: Play) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for layer in await engine.get_layers(play.company_id, play.id):
        out[layer.ref if not layer.iteration else f"{layer.ref}{list(layer.iteration)}"] = layer
    return out


def spec(app_id: str, fn: Any, *, idempotent: bool = True) -> ModuleSpec:
    """A test module running ``fn``, accepting any arguments."""
    return ModuleSpec(app_id, "test", "test module", {"type": "object"}, {}, idempotent, fn)
