"""Plays that cannot be stored or cannot be run never loop: values the store refuses fail
their step; an actor that keeps crashing ends its play with PLAY_CRASHED; cancel always ends
a play that has not finished; retries are bounded; long loops share the event loop."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest
import trio
import trio.lowlevel
from engine_testkit import (
    COMPANY,
    layers_by_ref,
    make_flow,
    run,
    running_engine,
    spec,
)
from support.heap import frozen_heap
from support.waits import wait_for_play, wait_until

from flow8.domain import FlowValidationError, LayerState, PlayState, WaitReason
from flow8.engine import Engine
from flow8.modules import ModuleContext
from flow8.store import Store


@pytest.mark.parametrize(
    ("step", "field", "reason"),
    [
        (
            {"appId": "set", "args": {"value": "{{ 99999999999999999999*99999999999999999999 }}"}},
            "arguments",
            "does not fit in 64 bits",
        ),
        (
            {"appId": "json-parse", "args": {"text": "[" * 2000 + "]" * 2000}},
            "output",
            "nested deeper than 100 levels",
        ),
        ({"appId": "big"}, "output", "does not fit in 64 bits"),
    ],
)
async def test_a_value_the_store_refuses_fails_its_step_not_the_play_actor(
    engine: Engine, step: dict[str, Any], field: str, reason: str
) -> None:
    async def big(_ctx: ModuleContext, _args: Mapping[str, Any]) -> Any:
        return {"n": [1, 2**4000]}  # too long even to print

    engine.registry.register(spec("big", big), replace=True)
    flow = await make_flow(
        engine, {"flowlets": [{"ref": "poison", **step}, {"ref": "after", "appId": "noop"}]}
    )
    started = trio.current_time()
    done = await run(engine, flow)
    assert trio.current_time() - started < 5  # ended, not re-claimed after a lease lapse
    assert done.state is PlayState.FAIL
    assert done.error is not None
    assert done.error.startswith(f"step 'poison': its {field} cannot be stored: ")
    assert reason in done.error
    layers = await layers_by_ref(engine, done)
    assert layers["poison"].state is LayerState.FAIL
    assert layers["poison"].output is None
    assert layers["after"].state is LayerState.SKIP
    assert engine.running == 0


async def test_an_error_text_the_store_would_refuse_is_stored_readable(engine: Engine) -> None:
    async def fails(_ctx: ModuleContext, _args: Mapping[str, Any]) -> Any:
        raise ValueError("bad byte \udfff in input")

    engine.registry.register(spec("fails", fails), replace=True)
    flow = await make_flow(engine, {"flowlets": [{"ref": "f", "appId": "fails"}]})
    done = await run(engine, flow)
    assert done.state is PlayState.FAIL
    assert done.error == "step 'f': bad byte ? in input"


async def _parked_for_approval(engine: Engine) -> str:
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "first", "appId": "set", "args": {"value": 1}},
                {"ref": "gate", "appId": "noop", "needsApproval": True},
            ]
        },
    )
    play = await engine.start_play(COMPANY, flow.id)
    await wait_for_play(engine, COMPANY, play.id, PlayState.WAIT)
    return play.id


async def _corrupt_first_layer(store: Store, play_id: str) -> None:
    """A record the engine cannot read back: the play crashes its actor each time it loads."""
    layers = store.tenant(COMPANY).collection("play_layers")
    changed = await layers.update_one(
        {"play_id": play_id, "ref": "first"}, {"$set": {"state": "NOT-A-STATE"}}
    )
    assert changed.modified_count == 1


async def test_a_play_whose_actor_keeps_crashing_fails_with_play_crashed(store: Store) -> None:
    async with running_engine(store, max_play_crashes=3) as engine:
        play_id = await _parked_for_approval(engine)
        await _corrupt_first_layer(store, play_id)
        started = trio.current_time()  # the engine's clock: virtual time in this test
        await engine.decide(COMPANY, play_id, approve=True)
        await wait_for_play(engine, COMPANY, play_id, PlayState.FAIL, timeout=20)
        elapsed = trio.current_time() - started
        failed = await engine.get_play(COMPANY, play_id)
        assert failed.error is not None
        assert failed.error.startswith("PLAY_CRASHED: the play crashed 3 times; last error: ")
        assert failed.error.endswith("ValueError: 'NOT-A-STATE' is not a valid LayerState")
        assert 3 <= elapsed < 10  # backed off 1 s, then 2 s, between the three crashes
        doc = await store.tenant(COMPANY).collection("plays").find_one({"_id": play_id})
        assert doc is not None
        assert doc["crashes"] == 3
        assert doc["lease_owner"] is None
        await trio.sleep(1.5)  # (virtual time) and it stays ended: nothing re-claims it
        assert (await engine.get_play(COMPANY, play_id)).state is PlayState.FAIL


async def test_cancel_ends_a_play_between_crashes(store: Store) -> None:
    async with running_engine(store, max_play_crashes=100) as engine:
        play_id = await _parked_for_approval(engine)
        await _corrupt_first_layer(store, play_id)
        await engine.decide(COMPANY, play_id, approve=True)
        plays = store.tenant(COMPANY).collection("plays")

        async def crashed_once() -> bool:
            return bool(((await plays.find_one({"_id": play_id})) or {}).get("crashes"))

        await wait_until(crashed_once, what="the first crash counted")
        cancelled = await engine.cancel_play(COMPANY, play_id)
        assert cancelled.state is PlayState.CANCEL
        assert (await engine.get_play(COMPANY, play_id)).state is PlayState.CANCEL
        layers = store.tenant(COMPANY).collection("play_layers")
        gate = await layers.find_one({"play_id": play_id, "ref": "gate"})
        assert gate is not None
        assert (gate["state"], gate["error"]) == ("FAIL", "cancelled")


async def test_cancel_ends_a_running_play_whose_instance_is_gone(store: Store) -> None:
    """A RUN play whose lease lapsed (its instance died) is cancelled at once, not when a
    dispatcher next resumes it."""
    async with running_engine(store, lease_seconds=30) as engine:
        plays = store.tenant(COMPANY).collection("plays")
        flow = await make_flow(engine, {"flowlets": [{"ref": "a", "appId": "noop"}]})
        await plays.insert_one(
            {
                "_id": "orphan",
                "flow_id": flow.id,
                "flow_version": 1,
                "status": "RUN",
                "created_at": time.time(),
                "idempotency_key": "play:orphan",
                "lease_owner": "a-dead-instance",
                "lease_expires_at": time.time() - 1,
                "cancel_requested": None,
            }
        )
        cancelled = await engine.cancel_play(COMPANY, "orphan")
        assert cancelled.state is PlayState.CANCEL
        assert cancelled.error == "cancelled"


async def test_retry_policies_are_bounded_when_the_flow_is_saved(engine: Engine) -> None:
    bad = {
        "flowlets": [
            {
                "ref": "r",
                "appId": "noop",
                "retry": {
                    "count": 1_000_000,
                    "delayMs": 86_400_000,
                    "maxDelayMs": 10**12,
                    "backoffMultiplier": 1e9,
                },
            },
            {"ref": "x" * 101, "appId": "noop", "name": "n" * 201},
        ]
    }
    with pytest.raises(FlowValidationError) as refused:
        await make_flow(engine, bad)
    problems = {p.path: p.message for p in refused.value.problems}
    assert problems == {
        "flowlets[0].retry.count": "must be between 0 and 10",
        "flowlets[0].retry.delayMs": "must be between 0 and 3600000",
        "flowlets[0].retry.maxDelayMs": "must be between 0 and 3600000",
        "flowlets[0].retry.backoffMultiplier": "must be between 1 and 10",
        "flowlets[1].ref": "must be at most 100 characters",
        "flowlets[1].name": "must be at most 200 characters",
    }


async def test_attempts_are_bounded_and_a_long_back_off_parks_the_play(store: Store) -> None:
    calls: list[float] = []

    async def flaky(_ctx: ModuleContext, _args: Mapping[str, Any]) -> Any:
        calls.append(trio.current_time())
        raise RuntimeError(f"failure {len(calls)}")

    async with running_engine(store, hold_delay_seconds=0.3) as engine:
        engine.registry.register(spec("flaky", flaky), replace=True)
        flow = await make_flow(
            engine,
            {
                "flowlets": [
                    {
                        "ref": "f",
                        "appId": "flaky",
                        "retry": {"count": 3, "delayMs": 100, "backoffMultiplier": 5},
                    }
                ]
            },
        )
        play = await engine.start_play(COMPANY, flow.id)
        # delays 0.1 s (held), then 0.5 s: longer than hold_delay, so the play parks
        await wait_for_play(engine, COMPANY, play.id, PlayState.WAIT)
        parked = await engine.get_play(COMPANY, play.id)
        assert parked.wait_reason is WaitReason.RETRY
        assert engine.running == 0
        done = await engine.wait_play(COMPANY, play.id, timeout=20)
        assert done.state is PlayState.FAIL
        assert done.error == "step 'f': failure 4"
        assert len(calls) == 4  # 1 attempt + 3 retries, across the park and the resume
        layer = (await layers_by_ref(engine, done))["f"]
        assert [a.number for a in layer.attempts] == [1, 2, 3, 4]
        assert calls[2] - calls[1] >= 0.45  # the parked back-off was honoured


async def test_a_long_iteration_shares_the_event_loop(engine: Engine) -> None:
    items = list(range(6000))
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "it", "appId": "iterator", "args": {"items": items}},
                {"ref": "sq", "appId": "set", "args": {"value": "{{ $prev.it.item }}"}},
                {"ref": "agg", "appId": "aggregator", "args": {"sourceRef": "it"}},
            ]
        },
    )
    gaps: list[float] = []

    async def ticker(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        last = time.perf_counter()
        while True:
            await trio.lowlevel.checkpoint()
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    with frozen_heap():
        async with trio.open_nursery() as nursery:
            await nursery.start(ticker)
            started = time.perf_counter()
            done = await run(engine, flow, timeout=120)
            took = time.perf_counter() - started
            nursery.cancel_scope.cancel()
    assert done.state is PlayState.DONE
    assert done.output == {"items": items, "count": len(items)}
    assert len(gaps) > 100
    # Without yielding, the ticker would wait for the whole loop (`took`); with it, the
    # longest wait is a few steps' worth. The bound is relative, with room for a slow,
    # shared machine that deschedules the process now and then.
    assert max(gaps) < min(0.25, took / 4), (
        f"the loop was held for {max(gaps) * 1000:.0f} ms of {took * 1000:.0f} ms"
    )
