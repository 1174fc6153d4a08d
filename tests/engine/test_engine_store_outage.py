"""The engine rides out a database it cannot write for a while, as during a MongoDB election:
here another process holds sqlite's write lock past the busy timeout, so every write is
refused with ``DatabaseLocked`` (a ``StoreUnavailable``). The dispatcher must still be there
when the database comes back, and a play whose step could not be recorded must resume from
its last durable step and finish."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
from engine_testkit import COMPANY, layers_by_ref, make_flow, run, running_engine, spec
from structlog.testing import capture_logs
from support.sqlite_lock import write_lock_held
from support.waits import wait_until

from flow8.domain import PlayState
from flow8.engine import Engine
from flow8.modules import ModuleContext
from flow8.store import open_store

pytestmark = pytest.mark.wall_clock


async def test_the_dispatcher_rides_out_a_locked_database_and_runs_plays_after(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.db"
    url = f"sqlite:///{path}"
    async with open_store(url, data_dir=tmp_path, durability="normal", busy_timeout=0.1) as store:
        with capture_logs() as logs:
            async with running_engine(store, poll_interval=0.05) as engine:
                flow = await make_flow(
                    engine, {"flowlets": [{"ref": "a", "appId": "set", "args": {"value": 7}}]}
                )
                async with write_lock_held(path):
                    # Many polls: restarting at each failure, the dispatcher would spend the
                    # restarts its supervisor allows (3 in 5 s) in a fraction of this.
                    await trio.sleep(1.5)
                await wait_until(
                    lambda: any(e["event"] == "dispatcher.store_back" for e in logs),
                    what="the dispatcher reaching the database again",
                )
                done = await run(engine, flow, timeout=10)
                assert done.state is PlayState.DONE
                assert done.output == 7
    outage = [e for e in logs if e["event"].startswith("dispatcher.store_")]
    # Said once when it began and once when it ended, not at every retry.
    assert [e["event"] for e in outage] == ["dispatcher.store_unavailable", "dispatcher.store_back"]
    assert "locked" in outage[0]["error"]
    assert outage[1]["retries"] >= 2


async def _only_a_stored(engine: Engine, play_id: str) -> bool:
    return [la.ref for la in await engine.get_layers(COMPANY, play_id)] == ["a"]


async def test_a_play_whose_step_could_not_be_recorded_resumes_and_finishes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.db"
    url = f"sqlite:///{path}"
    calls = {"first": 0, "gate": 0}
    entered, release = trio.Event(), trio.Event()

    async def first(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        calls["first"] += 1
        return "one"

    async def gate(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        calls["gate"] += 1
        entered.set()
        await release.wait()
        return "two"

    flow_def = {
        "flowlets": [
            {"ref": "a", "appId": "first"},
            {"ref": "b", "appId": "gate"},
            {"ref": "c", "appId": "set", "args": {"value": "{{ $prev.b }}"}},
        ]
    }
    async with (
        open_store(url, data_dir=tmp_path, durability="normal", busy_timeout=0.1) as store,
        running_engine(store, poll_interval=0.05, lease_seconds=1.0) as engine,
    ):
        engine.registry.register(spec("first", first))
        engine.registry.register(spec("gate", gate))
        flow = await make_flow(engine, flow_def)
        play = await engine.start_play(COMPANY, flow.id)
        await entered.wait()
        # Step a's layer reaches the store before the outage (it is pipelined).
        await wait_until(
            lambda: _only_a_stored(engine, play.id), what="step a's layer in the store"
        )
        async with write_lock_held(path):
            release.set()  # step b ends while nothing can be written
            await trio.sleep(1.5)  # longer than the lease: it lapses meanwhile
        done = await engine.wait_play(COMPANY, play.id, timeout=15)
        assert done.state is PlayState.DONE, done.error
        assert done.output == "two"
        layers = await layers_by_ref(engine, done)
        assert [layers[r].output for r in "abc"] == ["one", "two", "two"]
    # Step a was durable: it ran once. Step b's end was not: it ran again.
    assert calls == {"first": 1, "gate": 2}
