"""Durability and control: approvals across restarts, suspension, leases, cancel, retry from
a step, idempotency keys, maxConcurrent, subflows and KV."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest
import trio
from engine_testkit import (
    COMPANY,
    fast_settings,
    layers_by_ref,
    make_flow,
    new_engine,
    run,
    running_engine,
    spec,
)
from structlog.testing import capture_logs
from support.waits import wait_for_play, wait_until
from trio.testing import wait_all_tasks_blocked

from flow8.domain import LayerState, PlayState, TriggerKind
from flow8.engine import Engine, PlayStateError
from flow8.events import EventBus
from flow8.modules import ModuleContext
from flow8.store import Store

APPROVAL_FLOW = {
    "flowlets": [
        {"ref": "prepare", "appId": "set", "args": {"value": "{{ $prev.args.amount }}"}},
        {
            "ref": "pay",
            "appId": "set",
            "needsApproval": True,
            "args": {"value": {"paid": "{{ $prev.prepare }}"}},
        },
    ]
}


async def test_approval_survives_a_restart(each_store: Store) -> None:
    store = each_store
    async with trio.open_nursery() as nursery:
        first = new_engine(store, EventBus(), fast_settings())
        await nursery.start(first.serve)
        flow = await make_flow(first, APPROVAL_FLOW)
        play = await first.start_play(COMPANY, flow.id, {"amount": 12})
        await wait_for_play(first, COMPANY, play.id, PlayState.WAIT)
        assert first.running == 0  # WAIT holds no actor
        nursery.cancel_scope.cancel()
    waiting = await first.get_play(COMPANY, play.id)
    assert waiting.wait_ref == "pay"
    layers = await layers_by_ref(first, waiting)
    assert layers["pay"].state is LayerState.WAIT
    async with trio.open_nursery() as nursery:
        second = new_engine(store, EventBus(), fast_settings())
        await nursery.start(second.serve)
        await second.decide(COMPANY, play.id, approve=True, by="boss")
        done = await second.wait_play(COMPANY, play.id, timeout=10)
        assert done.state is PlayState.DONE
        assert done.output == {"paid": 12}
        nursery.cancel_scope.cancel()


async def test_rejection_fails_the_play(engine: Engine) -> None:
    flow = await make_flow(engine, APPROVAL_FLOW)
    play = await engine.start_play(COMPANY, flow.id, {"amount": 1})
    await wait_for_play(engine, COMPANY, play.id, PlayState.WAIT)
    rejected = await engine.decide(COMPANY, play.id, approve=False, by="boss")
    assert rejected.state is PlayState.FAIL
    assert rejected.error == "rejected by boss"
    layers = await layers_by_ref(engine, rejected)
    assert layers["pay"].state is LayerState.FAIL
    with pytest.raises(PlayStateError):
        await engine.decide(COMPANY, play.id, approve=True)


async def test_long_delay_parks_the_play_and_the_dispatcher_wakes_it(engine: Engine) -> None:
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "wait", "appId": "delay", "args": {"ms": 1500}},
                {"ref": "after", "appId": "set", "args": {"value": "{{ $prev.wait }}"}},
            ]
        },
    )
    play = await engine.start_play(COMPANY, flow.id)
    await wait_for_play(engine, COMPANY, play.id, PlayState.WAIT)
    parked = await engine.get_play(COMPANY, play.id)
    assert parked.wait_reason is not None
    assert parked.wait_reason.value == "delay"
    assert engine.running == 0
    done = await engine.wait_play(COMPANY, play.id, timeout=10)
    assert done.state is PlayState.DONE
    assert done.output == {"delayedMs": 1500}


async def test_cancel_a_running_play_cancels_its_module(engine: Engine) -> None:
    running = trio.Event()
    cancelled = trio.Event()

    async def forever(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        running.set()
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    engine.registry.register(spec("forever", forever))
    flow = await make_flow(engine, {"flowlets": [{"ref": "f", "appId": "forever"}]})
    play = await engine.start_play(COMPANY, flow.id)
    await running.wait()
    await engine.cancel_play(COMPANY, play.id)
    done = await engine.wait_play(COMPANY, play.id, timeout=5)
    assert done.state is PlayState.CANCEL
    assert cancelled.is_set()
    assert (await layers_by_ref(engine, done))["f"].state is LayerState.FAIL
    with pytest.raises(PlayStateError):
        await engine.cancel_play(COMPANY, play.id)


async def test_cancel_a_waiting_play(engine: Engine) -> None:
    flow = await make_flow(engine, APPROVAL_FLOW)
    play = await engine.start_play(COMPANY, flow.id, {"amount": 1})
    await wait_for_play(engine, COMPANY, play.id, PlayState.WAIT)
    cancelled = await engine.cancel_play(COMPANY, play.id)
    assert cancelled.state is PlayState.CANCEL


async def test_lapsed_lease_resumes_from_the_first_unfinished_step(each_store: Store) -> None:
    store = each_store
    calls: dict[str, int] = {"first": 0, "pure": 0, "side": 0}
    entered = trio.Event()

    def registry_for(engine: Engine, *, hang: bool) -> None:
        async def first(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
            calls["first"] += 1
            return "one"

        async def pure(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
            calls["pure"] += 1
            entered.set()
            if hang:
                await trio.sleep_forever()
            return "two"

        engine.registry.register(spec("first", first))
        engine.registry.register(spec("pure", pure))

    flow_def = {
        "flowlets": [
            {"ref": "a", "appId": "first"},
            {"ref": "b", "appId": "pure"},
            {"ref": "c", "appId": "set", "args": {"value": "{{ $prev.b }}"}},
        ]
    }
    async with trio.open_nursery() as nursery:
        dying = new_engine(store, EventBus(), fast_settings(lease_seconds=0.6))
        registry_for(dying, hang=True)
        await nursery.start(dying.serve)
        flow = await make_flow(dying, flow_def)
        play = await dying.start_play(COMPANY, flow.id)
        await entered.wait()

        async def a_is_stored() -> bool:  # step a's pipelined layer reaches the store
            return [la.ref for la in await dying.get_layers(COMPANY, play.id)] == ["a"]

        await wait_until(a_is_stored, what="step a's layer stored")
        nursery.cancel_scope.cancel()  # the instance dies mid-step (no clean shutdown)
    assert (await dying.get_play(COMPANY, play.id)).state is PlayState.RUN
    async with trio.open_nursery() as nursery:
        heir = new_engine(store, EventBus(), fast_settings(lease_seconds=0.6))
        registry_for(heir, hang=False)
        await nursery.start(heir.serve)
        done = await heir.wait_play(COMPANY, play.id, timeout=10)
        nursery.cancel_scope.cancel()
    assert done.state is PlayState.DONE
    assert done.output == "two"
    assert calls == {"first": 1, "pure": 2, "side": 0}  # a's output was reused


async def test_interrupted_non_idempotent_step_is_not_rerun(each_store: Store) -> None:
    store = each_store
    runs = 0
    entered = trio.Event()

    async def charge(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        nonlocal runs
        runs += 1
        entered.set()
        await trio.sleep_forever()

    flow_def = {"flowlets": [{"ref": "charge", "appId": "charge"}]}
    async with trio.open_nursery() as nursery:
        dying = new_engine(store, EventBus(), fast_settings(lease_seconds=0.5))
        dying.registry.register(spec("charge", charge, idempotent=False))
        await nursery.start(dying.serve)
        flow = await make_flow(dying, flow_def)
        play = await dying.start_play(COMPANY, flow.id)
        await entered.wait()
        nursery.cancel_scope.cancel()
    async with trio.open_nursery() as nursery:
        heir = new_engine(store, EventBus(), fast_settings(lease_seconds=0.5))
        heir.registry.register(spec("charge", charge, idempotent=False))
        await nursery.start(heir.serve)
        done = await heir.wait_play(COMPANY, play.id, timeout=10)
        nursery.cancel_scope.cancel()
    assert done.state is PlayState.FAIL
    assert "interrupted" in (done.error or "")
    assert runs == 1


async def test_retry_from_step_on_the_latest_version_reuses_earlier_outputs(
    engine: Engine,
) -> None:
    counter = {"n": 0}

    async def count(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        counter["n"] += 1
        return counter["n"]

    engine.registry.register(spec("count", count))
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "a", "appId": "count"},
                {"ref": "b", "appId": "fail", "args": {"message": "bug"}},
            ]
        },
    )
    failed = await run(engine, flow)
    assert failed.state is PlayState.FAIL
    fixed = await engine.flows.update(
        COMPANY,
        flow.id,
        (
            await make_flow(
                engine,
                {
                    "flowlets": [
                        {"ref": "a", "appId": "count"},
                        {"ref": "b", "appId": "set", "args": {"value": "{{ $prev.a }}"}},
                    ]
                },
            )
        ).definition,
    )
    assert fixed.version == 2
    retried = await engine.retry_play(COMPANY, failed.id, "b")
    done = await engine.wait_play(COMPANY, retried.id, timeout=10)
    assert done.state is PlayState.DONE
    assert done.output == 1  # a's output from the failed play, not a new count
    assert done.flow_version == 2
    assert done.retry_of == failed.id
    assert done.trigger.kind is TriggerKind.RETRY
    assert counter["n"] == 1
    # The reused layer keeps its place, and the step run again comes after it.
    layers = await engine.get_layers(COMPANY, retried.id)
    assert [(la.ref, la.seq) for la in layers] == [("a", 1), ("b", 2)]
    with pytest.raises(PlayStateError):
        await engine.retry_play(COMPANY, done.id, "b")
    with pytest.raises(PlayStateError):
        await engine.retry_play(COMPANY, failed.id, "nope")


async def test_idempotency_key_returns_the_existing_play(engine: Engine) -> None:
    flow = await make_flow(engine, {"flowlets": [{"ref": "a", "appId": "noop"}]})
    other = await make_flow(engine, {"flowlets": [{"ref": "a", "appId": "noop"}]})
    one = await engine.start_play(COMPANY, flow.id, idempotency_key="order-1")
    two = await engine.start_play(COMPANY, flow.id, idempotency_key="order-1")
    three = await engine.start_play(COMPANY, other.id, idempotency_key="order-1")
    assert one.id == two.id
    assert three.id != one.id
    _, total = await engine.list_plays(COMPANY, flow_id=flow.id)
    assert total == 1


async def test_idempotency_key_expires_after_the_window(store: Store) -> None:
    async with running_engine(store, idempotency_window_seconds=0.2) as engine:
        await _idempotency_window(engine)


async def _idempotency_window(engine: Engine) -> None:
    flow = await make_flow(engine, {"flowlets": [{"ref": "a", "appId": "noop"}]})
    one = await engine.start_play(COMPANY, flow.id, idempotency_key="k")
    await trio.sleep(0.3)  # (virtual time) past the window
    two = await engine.start_play(COMPANY, flow.id, idempotency_key="k")
    assert one.id != two.id
    assert (await engine.start_play(COMPANY, flow.id, idempotency_key="k")).id == two.id


async def test_max_concurrent_defers_plays_beyond_the_limit(engine: Engine) -> None:
    active = 0
    peak = 0

    async def work(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await trio.sleep(0.5)
        active -= 1
        return ctx.play_id

    engine.registry.register(spec("work", work))
    flow = await make_flow(
        engine,
        {"execution": {"maxConcurrent": 2}, "flowlets": [{"ref": "w", "appId": "work"}]},
    )
    plays = [await engine.start_play(COMPANY, flow.id) for _ in range(5)]
    assert [p.state for p in plays].count(PlayState.DEFERRED) == 3
    for p in plays:
        done = await engine.wait_play(COMPANY, p.id, timeout=15)
        assert done.state is PlayState.DONE
    assert peak == 2


async def test_subflow_sync_and_async(engine: Engine) -> None:
    child = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "double", "appId": "set", "args": {"value": "{{ $prev.args.n * 2 }}"}}
            ]
        },
    )
    parent = await make_flow(
        engine,
        {
            "flowlets": [
                {
                    "ref": "sync",
                    "appId": "subflow",
                    "args": {"flowId": child.id, "args": {"n": "{{ $prev.args.n }}"}},
                },
                {
                    "ref": "bg",
                    "appId": "subflow",
                    "args": {"flowId": child.id, "args": {"n": 100}, "async": True},
                },
                {
                    "ref": "out",
                    "appId": "set",
                    "args": {
                        "value": {"sync": "{{ $prev.sync.out }}", "bg": "{{ $prev.bg.playId }}"}
                    },
                },
            ]
        },
    )
    play = await run(engine, parent, {"n": 21})
    assert play.state is PlayState.DONE, play.error
    assert play.output["sync"] == 42
    layers = await layers_by_ref(engine, play)
    assert layers["sync"].output["state"] == "DONE"
    kid = await engine.get_play(COMPANY, layers["sync"].output["playId"])
    assert kid.parent_play_id == play.id
    assert kid.depth == 1
    bg = await engine.wait_play(COMPANY, play.output["bg"], timeout=10)
    assert bg.output == 200
    assert bg.parent_play_id == play.id


async def test_subflow_recursion_is_depth_limited(store: Store) -> None:
    async with running_engine(store, max_subflow_depth=3) as engine:
        await _recursion_limited(engine)


async def _recursion_limited(engine: Engine) -> None:
    flow = await make_flow(engine, {"flowlets": [{"ref": "x", "appId": "noop"}]})
    recursive = {
        "flowlets": [
            {
                "ref": "again",
                "appId": "subflow",
                "args": {"flowId": flow.id, "args": "{{ $prev.args }}"},
            }
        ]
    }
    from flow8.domain import parse_flow_definition

    await engine.flows.update(COMPANY, flow.id, parse_flow_definition({"name": "r", **recursive}))
    play = await run(engine, flow)
    # The deepest step failed at the limit, and each play above failed with its child.
    assert play.state is PlayState.FAIL
    assert "SUBFLOW_DEPTH_LIMIT: subflow depth limit (3) reached" in (play.error or "")
    plays = engine.store.tenant(COMPANY).collection("plays")
    chain = [play]
    for _ in range(5):
        layer = (await layers_by_ref(engine, chain[-1]))["again"]
        assert layer.state is LayerState.FAIL
        assert "depth limit" in (layer.error or "")
        child = await plays.find_one({"parent_play_id": chain[-1].id})
        if child is None:
            assert layer.error == "SUBFLOW_DEPTH_LIMIT: subflow depth limit (3) reached"
            break  # the step that met the limit started no child
        assert (layer.error or "").startswith(
            f"subflow play {child['_id']} of flow {flow.id!r} failed"
        )
        chain.append(await engine.get_play(COMPANY, child["_id"]))
        assert chain[-1].state is PlayState.FAIL
    else:
        raise AssertionError("recursion was not limited")
    assert [p.depth for p in chain] == [0, 1, 2, 3]


async def test_kv_scopes_and_subflow_inheritance(engine: Engine) -> None:
    child = await make_flow(
        engine,
        {
            "kvInherit": True,
            "flowlets": [
                {"ref": "g", "appId": "kv-get", "args": {"key": "color"}},
                {"ref": "glob", "appId": "set", "args": {"value": "{{ $kvGlobal('region') }}"}},
                {
                    "ref": "out",
                    "appId": "set",
                    "args": {
                        "value": ["{{ $prev.g.value }}", "{{ $prev.glob }}", "{{ $kv('color') }}"]
                    },
                },
            ],
        },
    )
    parent = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "s", "appId": "kv-set", "args": {"key": "color", "value": "blue"}},
                {
                    "ref": "r",
                    "appId": "kv-set",
                    "args": {"key": "region", "value": "eu", "scope": "global", "ttlSeconds": 60},
                },
                {"ref": "sub", "appId": "subflow", "args": {"flowId": child.id}},
                {"ref": "a1", "appId": "kv-append", "args": {"key": "log", "value": 1}},
                {"ref": "a2", "appId": "kv-append", "args": {"key": "log", "value": 2}},
                {"ref": "read", "appId": "kv-get", "args": {"key": "log"}},
                {"ref": "del", "appId": "kv-delete", "args": {"key": "log"}},
                {"ref": "gone", "appId": "kv-get", "args": {"key": "log", "default": "none"}},
                {
                    "ref": "out",
                    "appId": "set",
                    "args": {
                        "value": {
                            "sub": "{{ $prev.sub.out }}",
                            "log": "{{ $prev.read }}",
                            "gone": "{{ $prev.gone }}",
                            "del": "{{ $prev.del.deleted }}",
                        }
                    },
                },
            ]
        },
    )
    play = await run(engine, parent)
    assert play.state is PlayState.DONE, play.error
    assert play.output == {
        "sub": ["blue", "eu", "blue"],
        "log": {"value": [1, 2], "found": True},
        "gone": {"value": "none", "found": False},
        "del": True,
    }
    # Stored encrypted: the raw value never reaches the database as plain text.
    found, value = await engine.kv.get(COMPANY, f"flow:{parent.id}", "color")
    assert (found, value) == (True, "blue")


async def test_kv_ttl_expires_values(engine: Engine) -> None:
    await engine.kv.set(COMPANY, "global", "temp", "x", 0.1)
    assert await engine.kv.get(COMPANY, "global", "temp") == (True, "x")
    await trio.sleep(0.2)  # (virtual time) past its TTL
    assert await engine.kv.get(COMPANY, "global", "temp") == (False, None)


async def test_kv_conflict_parent_prefers_the_parent_value(engine: Engine) -> None:
    child = await make_flow(
        engine,
        {
            "kvConflict": "parent",
            "flowlets": [
                {"ref": "own", "appId": "kv-set", "args": {"key": "k", "value": "child"}},
                {"ref": "g", "appId": "kv-get", "args": {"key": "k"}},
            ],
        },
    )
    isolated = await make_flow(
        engine,
        {"kvInherit": False, "flowlets": [{"ref": "g", "appId": "kv-get", "args": {"key": "k"}}]},
    )
    parent = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "s", "appId": "kv-set", "args": {"key": "k", "value": "parent"}},
                {"ref": "c", "appId": "subflow", "args": {"flowId": child.id}},
                {"ref": "i", "appId": "subflow", "args": {"flowId": isolated.id}},
                {
                    "ref": "out",
                    "appId": "set",
                    "args": {"value": ["{{ $prev.c.out.value }}", "{{ $prev.i.out.found }}"]},
                },
            ]
        },
    )
    play = await run(engine, parent)
    assert play.output == ["parent", False]


async def test_waiting_and_failure_events(engine: Engine) -> None:
    from flow8.events import EventFilter

    flow = await make_flow(engine, APPROVAL_FLOW)
    async with engine.events.subscribe(EventFilter(COMPANY, flow_id=flow.id)) as events:
        play = await engine.start_play(COMPANY, flow.id, {"amount": 1})
        await wait_for_play(engine, COMPANY, play.id, PlayState.WAIT)
        await engine.decide(COMPANY, play.id, approve=False)
        seen = []
        with trio.move_on_after(0.5):
            async for e in events:
                seen.append((e.type, e.data.get("ref") or e.data.get("state")))
    assert ("play:waiting", "pay") in seen
    assert seen[-1] == ("play:failed", "FAIL")


async def test_subflow_timeout_fails_the_step_and_cancels_the_child(engine: Engine) -> None:
    child = await make_flow(
        engine, {"flowlets": [{"ref": "slow", "appId": "delay", "args": {"ms": 5000}}]}
    )
    parent = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "sub", "appId": "subflow", "args": {"flowId": child.id, "timeout": 0.4}}
            ]
        },
    )
    play = await run(engine, parent)
    assert play.state is PlayState.FAIL
    assert "did not finish" in (play.error or "")
    kids, _ = await engine.list_plays(COMPANY, flow_id=child.id)
    assert [k.state for k in kids] == [PlayState.CANCEL]


async def test_a_play_whose_lease_was_taken_stops_without_reporting(store: Store) -> None:
    from flow8.events import EventFilter

    running = trio.Event()
    stopped = trio.Event()

    async def hang(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        running.set()
        try:
            await trio.sleep_forever()
        finally:
            stopped.set()

    async with running_engine(store, lease_seconds=0.6) as engine:
        engine.registry.register(spec("hang", hang))
        flow = await make_flow(engine, {"flowlets": [{"ref": "h", "appId": "hang"}]})
        async with engine.events.subscribe(EventFilter(COMPANY, flow_id=flow.id)) as events:
            play = await engine.start_play(COMPANY, flow.id)
            await running.wait()
            # Another instance claims the play (as after a stall past the lease).
            taken = await (
                store.tenant(COMPANY)
                .collection("plays")
                .update_one({"_id": play.id}, {"$set": {"lease_owner": "other-instance"}})
            )
            assert taken.matched_count == 1
            with trio.fail_after(5):
                await stopped.wait()
            await trio.sleep(0.1)  # (virtual time) a report would have been published by now
            types = []
            while True:
                try:
                    types.append(events.receive_nowait().type)
                except trio.WouldBlock:
                    break
        assert "play:failed" not in types
        assert "play:completed" not in types
        doc = await store.tenant(COMPANY).collection("plays").find_one({"_id": play.id})
        assert doc is not None
        assert doc["status"] == "RUN"
        assert doc["lease_owner"] == "other-instance"


@pytest.mark.parametrize("key", [None, "order-17"])
async def test_a_play_that_cannot_get_an_actor_is_left_to_the_dispatcher(
    store: Store, key: str | None
) -> None:
    # With or without an idempotency key (two code paths), the play is released at once.
    class StoppingSupervisor:
        async def start_task(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("supervisor is stopping")

    starter = new_engine(store, EventBus(), fast_settings())
    starter.attach(StoppingSupervisor())
    flow = await make_flow(
        starter, {"flowlets": [{"ref": "a", "appId": "set", "args": {"value": 7}}]}
    )
    with capture_logs() as logs:
        play = await starter.start_play(COMPANY, flow.id, idempotency_key=key)
    assert play.state is PlayState.NEW
    # The operator hears why a play stayed NEW: nothing else would say it.
    failed = [e for e in logs if e["event"] == "play.launch_failed_handed_back"]
    assert [(e["play_id"], "supervisor is stopping" in e["error"]) for e in failed] == [
        (play.id, True)
    ]
    assert (await starter.get_play(COMPANY, play.id)).state is PlayState.NEW
    if key is not None:  # the key still names this play
        assert (await starter.start_play(COMPANY, flow.id, idempotency_key=key)).id == play.id
    async with running_engine(store) as other:
        done = await other.wait_play(COMPANY, play.id, timeout=10)
    assert done.state is PlayState.DONE
    assert done.output == 7


async def test_a_play_without_an_actor_here_is_not_kept_alive_by_lease_renewal(
    store: Store,
) -> None:
    # A play whose actor is gone (it crashed, or its end could not be written) must lapse to
    # another instance; renewing every lease this instance ever took would hold it forever
    # while any other play runs here.
    async def hang(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        await trio.sleep_forever()

    plays = store.tenant(COMPANY).collection("plays")
    async with running_engine(store, lease_seconds=0.6, poll_interval=60) as engine:
        engine.registry.register(spec("hang", hang))
        busy = await make_flow(engine, {"flowlets": [{"ref": "h", "appId": "hang"}]})
        await engine.start_play(COMPANY, busy.id)  # keeps a play running here
        flow = await make_flow(engine, {"flowlets": [{"ref": "n", "appId": "noop"}]})
        idle = new_engine(store, EventBus(), fast_settings())  # no dispatcher: its play stays NEW
        orphan = await idle.start_play(COMPANY, flow.id)
        await plays.update_one(
            {"_id": orphan.id},
            {
                "$set": {
                    "status": "RUN",
                    "lease_owner": engine.owner,
                    "lease_expires_at": time.time() + 0.6,
                }
            },
        )
        await trio.sleep(1.5)  # (virtual time) seven rounds of lease renewal
        assert engine.running == 1
        doc = await plays.find_one({"_id": orphan.id})
        assert doc is not None
        assert doc["lease_expires_at"] < time.time()
    async with running_engine(store) as heir:
        done = await heir.wait_play(COMPANY, orphan.id, timeout=10)
    assert done.state is PlayState.DONE


async def test_starts_beyond_max_starting_wait_their_turn_in_arrival_order(store: Store) -> None:
    # A supervisor twin that starts each play task only when told: every start in progress
    # is then visibly stuck inside it, and the gate decides who gets in next.
    class GatedSupervisor:
        def __init__(self, nursery: trio.Nursery) -> None:
            self.nursery = nursery
            self.entered: list[str] = []
            self.release = [trio.Event() for _ in range(5)]
            self.changed = trio.Event()

        async def start_task(self, id: str, run: Any, **_: Any) -> None:
            turn = len(self.entered)
            self.entered.append(id)
            self.changed.set()
            await self.release[turn].wait()
            await self.nursery.start(run)

        async def wait_entered(self, count: int) -> None:
            with trio.fail_after(5):
                while len(self.entered) < count:
                    self.changed = trio.Event()
                    await self.changed.wait()

    engine = new_engine(store, EventBus(), fast_settings(max_starting=2))
    flow = await make_flow(engine, {"flowlets": [{"ref": "a", "appId": "noop"}]})
    started: dict[str, int] = {}  # play id -> arrival number
    async with trio.open_nursery() as nursery:
        supervisor = GatedSupervisor(nursery)
        engine.attach(supervisor)

        async def start(n: int) -> None:
            play = await engine.start_play(COMPANY, flow.id, {"n": n})
            started[play.id] = n

        for n in range(5):
            nursery.start_soon(start, n)
            await wait_all_tasks_blocked()  # start n waits somewhere: arrival order 0..4
        await supervisor.wait_entered(2)
        await wait_all_tasks_blocked()
        assert len(supervisor.entered) == 2  # the other three wait at the gate
        for turn in range(5):  # each finished start lets exactly one more in
            supervisor.release[turn].set()
            await supervisor.wait_entered(min(5, turn + 3))
            await wait_all_tasks_blocked()
            assert len(supervisor.entered) == min(5, turn + 3)
    assert [started[e.removeprefix("play-")] for e in supervisor.entered] == [0, 1, 2, 3, 4]
