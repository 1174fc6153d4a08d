"""``approve_first``: a play that waits for a human's approval before its first step(s), as
an MCP route with ``requireApproval`` starts it; approving runs it, rejecting fails it, and a
restart in between loses nothing."""

from __future__ import annotations

import pytest
import trio
from engine_testkit import COMPANY, fast_settings, layers_by_ref, make_flow, new_engine
from support.waits import wait_for_play

from flow8.domain import LayerState, PlayState
from flow8.engine import Engine, PlayStateError
from flow8.events import EventBus
from flow8.store import Store

TWO_STEPS = {
    "name": "two steps",
    "flowlets": [
        {"ref": "first", "appId": "set", "args": {"value": "{{ $prev.args.n + 1 }}"}},
        {"ref": "second", "appId": "set", "args": {"value": {"n": "{{ $prev.first * 2 }}"}}},
    ],
}
PARALLEL_START = {
    "name": "parallel start",
    "flowlets": [
        {"ref": "a", "appId": "set", "index": 0, "args": {"value": 1}},
        {"ref": "b", "appId": "set", "index": 0, "args": {"value": 2}},
        {"ref": "c", "appId": "set", "index": 1, "args": {"value": "{{ $prev.a + $prev.b }}"}},
    ],
}


async def test_the_first_step_waits_then_runs_once_approved(engine: Engine) -> None:
    flow = await make_flow(engine, TWO_STEPS)
    play = await engine.start_play(COMPANY, flow.id, {"n": 4}, approve_first=True)
    waiting = await wait_for_play(engine, COMPANY, play.id, PlayState.WAIT)
    assert waiting.wait_reason is not None
    assert waiting.wait_reason.value == "approval"
    assert waiting.wait_ref == "first"
    layers = await layers_by_ref(engine, waiting)
    assert set(layers) == {"first"}  # nothing ran: the first step is parked
    assert layers["first"].state is LayerState.WAIT
    await engine.decide(COMPANY, play.id, approve=True, by="boss")
    done = await engine.wait_play(COMPANY, play.id, timeout=10)
    assert done.state is PlayState.DONE
    assert done.output == {"n": 10}
    layers = await layers_by_ref(engine, done)
    assert layers["first"].state is LayerState.DONE
    assert layers["second"].state is LayerState.DONE


async def test_without_the_option_nothing_waits(engine: Engine) -> None:
    flow = await make_flow(engine, TWO_STEPS)
    play = await engine.start_play(COMPANY, flow.id, {"n": 1})
    done = await engine.wait_play(COMPANY, play.id, timeout=10)
    assert done.state is PlayState.DONE
    assert done.output == {"n": 4}


async def test_parallel_first_steps_all_wait_and_one_approval_releases_them(
    engine: Engine,
) -> None:
    flow = await make_flow(engine, PARALLEL_START)
    play = await engine.start_play(COMPANY, flow.id, {}, approve_first=True)
    waiting = await wait_for_play(engine, COMPANY, play.id, PlayState.WAIT)
    layers = await layers_by_ref(engine, waiting)
    assert {r: la.state for r, la in layers.items()} == {
        "a": LayerState.WAIT,
        "b": LayerState.WAIT,
    }
    await engine.decide(COMPANY, play.id, approve=True)
    done = await engine.wait_play(COMPANY, play.id, timeout=10)
    assert done.state is PlayState.DONE
    assert done.output == 3


async def test_rejected_before_the_first_step_fails_and_runs_nothing(engine: Engine) -> None:
    flow = await make_flow(engine, TWO_STEPS)
    play = await engine.start_play(COMPANY, flow.id, {"n": 1}, approve_first=True)
    await wait_for_play(engine, COMPANY, play.id, PlayState.WAIT)
    rejected = await engine.decide(COMPANY, play.id, approve=False, by="boss")
    assert rejected.state is PlayState.FAIL
    assert rejected.error == "rejected by boss"
    layers = await layers_by_ref(engine, rejected)
    assert set(layers) == {"first"}
    assert layers["first"].state is LayerState.FAIL
    with pytest.raises(PlayStateError):
        await engine.decide(COMPANY, play.id, approve=True)


async def test_the_wait_survives_a_restart(store: Store) -> None:
    async with trio.open_nursery() as nursery:
        first = new_engine(store, EventBus(), fast_settings())
        await nursery.start(first.serve)
        flow = await make_flow(first, TWO_STEPS)
        play = await first.start_play(COMPANY, flow.id, {"n": 0}, approve_first=True)
        await wait_for_play(first, COMPANY, play.id, PlayState.WAIT)
        nursery.cancel_scope.cancel()
    async with trio.open_nursery() as nursery:
        second = new_engine(store, EventBus(), fast_settings())
        await nursery.start(second.serve)
        # Resumed by another instance, the approved first step runs and is not parked again.
        await second.decide(COMPANY, play.id, approve=True)
        done = await second.wait_play(COMPANY, play.id, timeout=10)
        assert done.state is PlayState.DONE
        assert done.output == {"n": 2}
        nursery.cancel_scope.cancel()
