"""Limits on plays: a tree of subflows is capped, a company's starts are rate-limited and
its running plays capped (queued, never dropped), and a start that stalls answers with the
play it created rather than a retryable error."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from engine_testkit import (
    COMPANY,
    make_flow,
    running_engine,
    spec,
    stallable_store,
)
from support.waits import wait_for_play, wait_until

from flow8.domain import PlayState, parse_flow_definition
from flow8.engine import Engine, PlayLimitReached, StartTimedOut
from flow8.engine._admission import Admission
from flow8.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_start_rate_is_a_token_bucket_per_company() -> None:
    clock = Clock()
    admission = Admission(rate=5, running=0, clock=clock)
    for _ in range(5):  # a second's worth at once
        admission.admit("acme")
    with pytest.raises(PlayLimitReached) as refused:
        admission.admit("acme")
    assert refused.value.code == "PLAY_RATE_LIMIT"
    assert refused.value.retry_after == pytest.approx(0.2)
    admission.admit("globex")  # other companies have their own bucket
    clock.now += 0.2
    admission.admit("acme")  # one token back after 1/rate seconds
    with pytest.raises(PlayLimitReached):
        admission.admit("acme")


def test_running_plays_are_counted_per_company() -> None:
    admission = Admission(rate=0, running=2)
    admission.started("acme")
    assert admission.has_room("acme")
    admission.started("acme")
    assert not admission.has_room("acme")
    assert admission.has_room("globex")
    assert admission.full_companies() == ["acme"]
    admission.ended("acme")
    assert admission.has_room("acme")
    assert admission.full_companies() == []


async def test_a_flow_that_starts_itself_stops_at_the_tree_limit(store: Store) -> None:
    async with running_engine(store, max_descendant_plays=20) as engine:
        flow = await make_flow(engine, {"flowlets": [{"ref": "noop", "appId": "noop"}]})
        flow = await engine.flows.update(
            COMPANY,
            flow.id,
            parse_flow_definition(
                {
                    "name": "fork",
                    "flowlets": [
                        {
                            "ref": f"child{i}",
                            "index": 0,
                            "appId": "subflow",
                            "args": {"flowId": flow.id, "async": True},
                        }
                        for i in range(3)
                    ],
                }
            ),
        )
        root = await engine.start_play(COMPANY, flow.id)
        plays = store.tenant(COMPANY).collection("plays")

        async def all_ended() -> bool:
            return not await plays.count({"status": {"$in": ["NEW", "RUN"]}})

        await wait_until(all_ended, timeout=30, what="every play of the tree ended")
        assert await plays.count({}) == 21  # the root and the 20 plays it may start
        doc = await plays.find_one({"_id": root.id})
        assert doc is not None
        assert doc["descendants"] == 20
        refused = await plays.find({"status": "FAIL"})
        assert refused
        assert all("PLAY_TREE_LIMIT" in (d["error"] or "") for d in refused)


async def test_a_play_holds_back_before_a_subflow_while_its_company_starts_queue(
    store: Store,
) -> None:
    """With its company's play starts queued up at the gate, a play reaching a subflow step
    waits before it (held back, its step not begun) while another company's plays and
    subflows run; once the queue has room it starts its child and ends."""
    async with running_engine(
        store, max_starting_per_company=1, max_queued_starts_per_company=1
    ) as engine:
        go_on = trio.Event()

        async def hold(_ctx: object, _args: object) -> dict[str, bool]:
            await go_on.wait()
            return {"held": True}

        engine.registry.register(spec("hold", hold), replace=True)
        flows = {}
        for company in (COMPANY, "globex"):
            child = await make_flow(engine, {"flowlets": [{"ref": "n", "appId": "noop"}]}, company)
            flows[company] = await make_flow(
                engine,
                {
                    "flowlets": [
                        {"ref": "first", "appId": "hold", "index": 0},
                        {
                            "ref": "sub",
                            "appId": "subflow",
                            "index": 1,
                            "args": {"flowId": child.id, "async": True},
                        },
                    ]
                },
                company,
            )
        parent = await engine.start_play(COMPANY, flows[COMPANY].id)
        free = trio.Event()

        async def occupy() -> None:  # a start of the company that does not end yet
            async with engine.starts.hold(COMPANY):
                await free.wait()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(occupy)  # the company's one slot
            await wait_until(lambda: engine.starts.held_by(COMPANY) == 1, what="slot taken")
            nursery.start_soon(occupy)  # and one start waiting: crowded
            await wait_until(lambda: engine.starts.waiting == 1, what="a start waiting")
            go_on.set()  # the parent reaches its subflow step
            await wait_until(lambda: engine.starts.held_back == 1, what="the parent held back")
            layers = await engine.get_layers(COMPANY, parent.id)
            assert [la.ref for la in layers] == ["first"]  # its subflow step has not begun
            other = await engine.start_play("globex", flows["globex"].id)
            done = await engine.wait_play("globex", other.id, timeout=10)
            assert done.state is PlayState.DONE  # another company is not held back
            assert engine.starts.held_back == 1
            free.set()
        done = await engine.wait_play(COMPANY, parent.id, timeout=10)
        assert done.state is PlayState.DONE
        layers = {la.ref: la for la in await engine.get_layers(COMPANY, parent.id)}
        child_play = await engine.get_play(COMPANY, layers["sub"].output["playId"])
        assert child_play.parent_play_id == parent.id
        assert engine.starts.held_back == 0


async def test_a_company_over_its_running_limit_is_queued_not_dropped(store: Store) -> None:
    gate = trio.Event()
    running_now: list[int] = []

    async with running_engine(store, company_running_plays=2) as engine:

        async def hold(ctx: object, args: object) -> object:
            running_now.append(engine.admission._counts[COMPANY])
            await gate.wait()
            return 1

        engine.registry.register(spec("hold", hold), replace=True)
        flow = await make_flow(engine, {"flowlets": [{"ref": "h", "appId": "hold"}]})
        started = [await engine.start_play(COMPANY, flow.id) for _ in range(6)]
        await trio.sleep(0.5)  # (virtual time) ten dispatcher polls: ample room to over-claim
        assert engine.running == 2
        states = [(await engine.get_play(COMPANY, p.id)).state for p in started]
        assert states.count(PlayState.RUN) == 2
        assert states.count(PlayState.NEW) == 4  # queued
        gate.set()
        for p in started:
            done = await engine.wait_play(COMPANY, p.id, timeout=20)
            assert done.state is PlayState.DONE
        assert max(running_now) <= 2


@pytest.mark.wall_clock  # stalls sqlite's writer
async def test_a_start_that_stalls_answers_with_the_play_it_stored(tmp_path: Path) -> None:
    """The store's writer is not running: the insert is handed over but never committed.
    After the deadline the start answers the play (it exists as soon as the writer runs),
    and a start that never got as far raises StartTimedOut (nothing was created)."""
    async with stallable_store(tmp_path) as stallable:
        store = stallable.store
        async with running_engine(store, max_starting=1) as engine:
            flow = await make_flow(engine, {"flowlets": [{"ref": "a", "appId": "noop"}]})
            await stallable.stall()  # the writer stalls from here on
            with trio.fail_after(5):
                play = await engine.start_play(COMPANY, flow.id, timeout=0.5)
            assert play.state is PlayState.RUN  # claimed at birth; its insert is queued
            # a start still waiting for its turn at the deadline has stored nothing:
            async with engine.starts.hold("another company"):  # the one start slot
                with pytest.raises(StartTimedOut), trio.fail_after(5):
                    await engine.start_play(COMPANY, flow.id, timeout=0.5)
            stallable.resume()  # the writer is back
            done = await engine.wait_play(COMPANY, play.id, timeout=10)
            assert done.state is PlayState.DONE
            plays = store.tenant(COMPANY).collection("plays")
            assert await plays.count({}) == 1
            await wait_for_play(engine, COMPANY, play.id, PlayState.DONE)


@pytest.mark.wall_clock  # stalls sqlite's writer
@pytest.mark.parametrize("key", [None, "order-9"])
async def test_a_start_cancelled_after_its_insert_hands_the_play_to_the_dispatcher(
    tmp_path: Path, key: str | None
) -> None:
    """A start cancelled between handing its claimed play to the store and starting its actor
    (a sibling step failed, a client hung up) releases the play at once: it runs within a
    poll, not after its 30 s lease lapses."""
    async with stallable_store(tmp_path) as stallable:
        store = stallable.store
        async with running_engine(store, lease_seconds=30) as engine:
            flow = await make_flow(engine, {"flowlets": [{"ref": "a", "appId": "noop"}]})
            await stallable.stall()  # writes queue up from here
            with trio.move_on_after(0.5) as waited:
                await engine.start_play(COMPANY, flow.id, idempotency_key=key)
            assert waited.cancelled_caught  # cancelled while its insert was queued
            stallable.resume()
            plays = store.tenant(COMPANY).collection("plays")
            await wait_until(
                lambda: plays.find_one({"status": "DONE"}), what="the play run by a dispatcher"
            )


async def test_a_child_waited_for_ends_with_its_cancelled_parent(engine: Engine) -> None:
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
    await engine.cancel_play(COMPANY, play.id)
    assert (await engine.wait_play(COMPANY, play.id, timeout=10)).state is PlayState.CANCEL
    await wait_for_play(engine, COMPANY, kid["_id"], PlayState.CANCEL)
