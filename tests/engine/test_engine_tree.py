"""The engine under the actor runtime: PlayActors are children of `engine/plays`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio
from engine_testkit import COMPANY, fast_settings, make_flow, new_engine
from support.waits import wait_until

import actors
from flow8.domain import PlayState
from flow8.engine import engine_child, events_child
from flow8.events import EventBus
from flow8.modules import ModuleContext, ModuleSpec
from flow8.store import Store


async def test_plays_run_as_children_of_the_plays_supervisor(store: Store) -> None:
    gate = trio.Event()

    async def hold(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        await gate.wait()
        return "released"

    async def crash(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        raise RuntimeError("module bug")

    bus = EventBus()
    engine = new_engine(store, bus, fast_settings())
    engine.registry.register(ModuleSpec("hold", "t", "t", {"type": "object"}, {}, True, hold))
    engine.registry.register(ModuleSpec("crash", "t", "t", {"type": "object"}, {}, True, crash))
    root = actors.SupervisorSpec([events_child(bus), engine_child(engine)])
    async with actors.open_runtime(root) as runtime:
        plays = runtime.dynamic_supervisor("engine/plays")
        engine.attach(plays)
        held = await make_flow(engine, {"flowlets": [{"ref": "h", "appId": "hold"}]})
        broken = await make_flow(engine, {"flowlets": [{"ref": "c", "appId": "crash"}]})
        play = await engine.start_play(COMPANY, held.id)
        assert plays.count() == 1
        assert [c.id for c in plays.children()] == [f"play-{play.id}"]
        failed = await engine.start_play(COMPANY, broken.id)
        assert (await engine.wait_play(COMPANY, failed.id, timeout=5)).state is PlayState.FAIL
        gate.set()
        done = await engine.wait_play(COMPANY, play.id, timeout=5)
        assert done.output == "released"
        # the child ends right after the play reports its end
        await wait_until(lambda: plays.count() == 0, timeout=5, what="the play's child ended")
        tree = runtime.tree()
        assert "engine" in str(tree)
        assert plays.stats().restarts == 0
