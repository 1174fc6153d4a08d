"""Helpers for the engine tests (a uniquely named module: every test directory has its own
conftest, so helpers imported by name must not live in one)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from flow8.domain import Flow, Play, PlayState, parse_flow_definition
from flow8.engine import Engine, EngineSettings, EventBus
from flow8.modules import ModuleSpec
from flow8.store import Store

COMPANY = "acme"


def fast_settings(**overrides: Any) -> EngineSettings:
    base: dict[str, Any] = {
        "lease_seconds": 2.0,
        "poll_interval": 0.05,
        "hold_delay_seconds": 0.3,
    }
    base.update(overrides)
    return EngineSettings(**base)


@asynccontextmanager
async def running_engine(store: Store, **settings: Any) -> AsyncIterator[Engine]:
    """An engine with its dispatcher, stopped before the store closes (as in the tree)."""
    async with trio.open_nursery() as nursery:
        eng = Engine(store, EventBus(), fast_settings(**settings))
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


async def wait_state(
    engine: Engine, play_id: str, state: PlayState, timeout: float = 10, company: str = COMPANY
) -> None:
    """Wait until the stored play is in ``state`` (fails after ``timeout`` seconds)."""
    with trio.fail_after(timeout):
        while True:
            if (await engine.get_play(company, play_id)).state is state:
                return
            await trio.sleep(0.02)
