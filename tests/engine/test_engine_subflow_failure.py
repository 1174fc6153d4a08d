"""A sync subflow whose child fails (or is cancelled) fails its step and so its play; a retry
of the step starts the child again; an async subflow does not wait and is not failed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine_testkit import (
    COMPANY,
    layers_by_ref,
    make_flow,
    run,
    running_engine,
    spec,
)
from support.waits import wait_for_play, wait_until

from flow8.domain import LayerState, PlayState, parse_flow_definition
from flow8.engine import Engine
from flow8.engine._records import MAX_ERROR_LENGTH, elided
from flow8.modules import ModuleContext, ModuleFailure
from flow8.store import Store


def _failing_first(times: int) -> tuple[Any, list[str]]:
    """A module that fails its first ``times`` calls (``boom <n>``), then answers 'ok'; and
    the plays that called it."""
    calls: list[str] = []

    async def flaky(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        calls.append(ctx.play_id)
        if len(calls) <= times:
            raise ModuleFailure(f"boom {len(calls)}")
        return "ok"

    return flaky, calls


async def _child_and_parent(
    engine: Engine, settings: dict[str, Any] | None = None, **args: Any
) -> tuple[str, str]:
    """A child flow running `flaky`, and a parent flow: a subflow step of it (with the
    step's ``settings`` and further ``args``), then a step answering 'reached'."""
    child = await make_flow(engine, {"flowlets": [{"ref": "work", "appId": "flaky"}]})
    sub = {"ref": "sub", "appId": "subflow", "args": {"flowId": child.id, **args}}
    sub.update(settings or {})
    parent = await make_flow(
        engine,
        {"flowlets": [sub, {"ref": "after", "appId": "set", "args": {"value": "reached"}}]},
    )
    return child.id, parent.id


async def test_a_failing_sync_subflow_fails_its_step_and_the_play(engine: Engine) -> None:
    flaky, _ = _failing_first(1)
    engine.registry.register(spec("flaky", flaky))
    child_flow, parent_flow = await _child_and_parent(engine)
    play = await run(engine, await engine.flows.get(COMPANY, parent_flow))
    assert play.state is PlayState.FAIL
    kids = await engine.store.tenant(COMPANY).collection("plays").find({"parent_play_id": play.id})
    assert len(kids) == 1
    kid = await engine.get_play(COMPANY, kids[0]["_id"])
    assert kid.state is PlayState.FAIL
    assert kid.error == "step 'work': boom 1"
    expected = f"subflow play {kid.id} of flow {child_flow!r} failed: step 'work': boom 1"
    assert play.error == f"step 'sub': {expected}"
    layers = await layers_by_ref(engine, play)
    assert layers["sub"].state is LayerState.FAIL
    assert layers["sub"].error == expected
    assert layers["sub"].output is None
    assert layers["after"].state is LayerState.SKIP  # later steps do not run


async def test_a_retried_subflow_step_starts_its_child_again(engine: Engine) -> None:
    flaky, calls = _failing_first(1)
    engine.registry.register(spec("flaky", flaky))
    retry = {"retry": {"count": 1, "delayMs": 10}}
    _, parent_flow = await _child_and_parent(engine, retry)
    play = await run(engine, await engine.flows.get(COMPANY, parent_flow))
    assert play.state is PlayState.DONE, play.error
    assert play.output == "reached"
    layers = await layers_by_ref(engine, play)
    sub = layers["sub"]
    assert [a.error is None for a in sub.attempts] == [False, True]
    assert sub.output["state"] == "DONE"
    assert sub.output["out"] == "ok"
    # Two children: the first failed, the retry's ran the flow again and is the output.
    assert len(set(calls)) == 2
    first = await engine.get_play(COMPANY, calls[0])
    assert first.state is PlayState.FAIL
    assert sub.output["playId"] == calls[1]


async def test_a_cancelled_sync_subflow_fails_its_step(engine: Engine) -> None:
    child = await make_flow(
        engine, {"flowlets": [{"ref": "w", "appId": "delay", "args": {"ms": 200_000}}]}
    )
    parent = await make_flow(
        engine, {"flowlets": [{"ref": "sub", "appId": "subflow", "args": {"flowId": child.id}}]}
    )
    play = await engine.start_play(COMPANY, parent.id)
    plays = engine.store.tenant(COMPANY).collection("plays")
    kid = await wait_until(
        lambda: plays.find_one({"parent_play_id": play.id}), what="the child started"
    )
    await wait_for_play(engine, COMPANY, kid["_id"], PlayState.WAIT)  # the long delay parks it
    await engine.cancel_play(COMPANY, kid["_id"])
    done = await engine.wait_play(COMPANY, play.id, timeout=10)
    assert done.state is PlayState.FAIL
    assert done.error == (
        f"step 'sub': subflow play {kid['_id']} of flow {child.id!r} was cancelled"
    )


async def test_an_async_subflow_does_not_wait_for_its_child_nor_fail(engine: Engine) -> None:
    flaky, _ = _failing_first(1)
    engine.registry.register(spec("flaky", flaky))
    _, parent_flow = await _child_and_parent(engine, **{"async": True})
    play = await run(engine, await engine.flows.get(COMPANY, parent_flow))
    assert play.state is PlayState.DONE, play.error
    layers = await layers_by_ref(engine, play)
    kid_id = layers["sub"].output["playId"]
    assert layers["sub"].output["out"] is None
    kid = await engine.wait_play(COMPANY, kid_id, timeout=10)
    assert kid.state is PlayState.FAIL  # and its parent was DONE regardless


async def test_a_deep_recursion_reports_the_depth_limit_at_its_root(store: Store) -> None:
    """25 levels of `step 'again': subflow play ... failed: ` are longer than an error may
    be: the middle is cut, the top play still says which limit stopped the chain."""
    async with running_engine(store, max_subflow_depth=25) as engine:
        flow = await make_flow(engine, {"flowlets": [{"ref": "x", "appId": "noop"}]})
        again = {"ref": "again", "appId": "subflow", "args": {"flowId": flow.id}}
        definition = parse_flow_definition({"name": "r", "flowlets": [again]})
        await engine.flows.update(COMPANY, flow.id, definition)
        play = await run(engine, flow, timeout=60)
    assert play.state is PlayState.FAIL
    error = play.error or ""
    assert error.startswith("step 'again': subflow play ")
    assert " [...] " in error
    assert error.endswith("step 'again': SUBFLOW_DEPTH_LIMIT: subflow depth limit (25) reached")
    assert len(error) <= MAX_ERROR_LENGTH


def test_a_long_nested_error_keeps_its_root_cause() -> None:
    cause = "SUBFLOW_DEPTH_LIMIT: subflow depth limit (8) reached"
    nested = "step 'again': subflow play p failed: " * 100 + cause
    short = elided(nested, MAX_ERROR_LENGTH - 300)
    assert len(short) == MAX_ERROR_LENGTH - 300
    assert short.startswith("step 'again': subflow play p failed: ")
    assert short.endswith(cause)
    assert " [...] " in short
    assert elided(cause, 100) == cause  # short enough: as it is
