"""What metered steps (AI calls) spend: on each layer, summed on the play, counted per day,
flow and model for the usage report, and held against the company's and the flow's budgets.

The metered module here is a twin of an AI step: it "calls a provider" (counts the call)
and records what the call cost, as the AI modules do (``ctx.record_usage``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

import attrs
import pytest
import trio
from engine_testkit import COMPANY, fast_settings, make_flow, new_engine, run
from support.waits import wait_for_play

from flow8.domain import AiUsage, Budget, BudgetPeriod, PlayState, UsageTotals
from flow8.engine import Engine
from flow8.events import EventBus
from flow8.modules import ModuleContext, ModuleSpec
from flow8.services.audit import AuditEntry
from flow8.services.usage import UsageService
from flow8.store import Store


@attrs.define
class Provider:
    """What reached the "provider": one entry per call."""

    calls: list[str] = attrs.field(factory=list)
    fail_first: set[str] = attrs.field(factory=set)


def metered(provider: Provider) -> ModuleSpec:
    async def ask(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        provider.calls.append(ctx.ref)
        ctx.record_usage(
            AiUsage(
                args.get("provider", "openai"),
                args.get("model", "gpt-4o-mini"),
                args["in"],
                args["out"],
                args["cost"],
            )
        )
        if ctx.ref in provider.fail_first:
            provider.fail_first.discard(ctx.ref)
            raise RuntimeError("the provider answered 500")
        return {"response": "ok"}

    return ModuleSpec(
        "ask", "test", "a metered call", {"type": "object"}, {}, False, ask, metered=True
    )


@pytest.fixture
async def setup(store: Store) -> AsyncIterator[tuple[Engine, UsageService, Provider, list[Any]]]:
    audited: list[AuditEntry] = []
    usage = UsageService(store, audited.append)
    provider = Provider()
    engine = new_engine(store, EventBus(), fast_settings())
    engine.budgets = usage
    engine.registry.register(metered(provider))
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.serve)
        yield engine, usage, provider, audited
        nursery.cancel_scope.cancel()


def _step(ref: str, cost: float, *, tin: int = 100, tout: int = 20, **more: Any) -> dict[str, Any]:
    return {"ref": ref, "appId": "ask", "args": {"in": tin, "out": tout, "cost": cost, **more}}


async def test_the_play_carries_the_sum_of_its_layers(setup: Any) -> None:
    engine, usage, provider, _ = setup
    provider.fail_first.add("b")
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                _step("a", 0.25, tin=1000, tout=200),
                # fails once after its call was made: both calls cost, both are counted
                {
                    **_step("b", 0.5, model="claude-3-5-haiku", provider="anthropic"),
                    "retry": {"count": 1, "delayMs": 1},
                },
                {"ref": "free", "appId": "set", "args": {"value": 1}},
            ]
        },
    )
    play = await run(engine, flow)
    assert play.state is PlayState.DONE, play.error
    layers = {la.ref: la for la in await engine.get_layers(COMPANY, play.id)}
    assert layers["a"].usage == (AiUsage("openai", "gpt-4o-mini", 1000, 200, 0.25),)
    assert len(layers["b"].usage) == 2
    assert len(layers["b"].attempts) == 2
    assert layers["free"].usage == ()
    stored = await engine.get_play(COMPANY, play.id)
    assert stored.usage == UsageTotals().plus(u for la in layers.values() for u in la.usage)
    assert stored.usage == UsageTotals(3, 1200, 240, 1.25)

    today = datetime.now(UTC).date()
    by_model = await usage.report(COMPANY, today, today, "model")
    assert {r.key: r.totals for r in by_model.rows} == {
        "anthropic/claude-3-5-haiku": UsageTotals(2, 200, 40, 1.0),
        "openai/gpt-4o-mini": UsageTotals(1, 1000, 200, 0.25),
    }
    by_flow = await usage.report(COMPANY, today, today, "flow")
    assert [(r.key, r.totals.cost) for r in by_flow.rows] == [(flow.id, 1.25)]
    assert by_flow.total == stored.usage
    assert (await usage.report(COMPANY, date(2020, 1, 1), date(2020, 1, 2), "day")).rows == ()
    # another company's report does not see any of it
    assert (await usage.report("other", today, today, "day")).total == UsageTotals()


async def test_a_play_without_metered_steps_stores_no_usage(setup: Any, store: Store) -> None:
    engine, *_ = setup
    flow = await make_flow(
        engine, {"flowlets": [{"ref": "s", "appId": "set", "args": {"value": 1}}]}
    )
    play = await run(engine, flow)
    assert play.state is PlayState.DONE
    doc = await store.tenant(COMPANY).collection("plays").find_one({"_id": play.id})
    assert doc is not None
    assert "usage" not in doc
    layer = await store.tenant(COMPANY).collection("play_layers").find_one({"play_id": play.id})
    assert layer is not None
    assert "usage" not in layer


async def test_a_company_budget_stops_the_next_step_before_its_call(setup: Any) -> None:
    engine, usage, provider, audited = setup
    await usage.set_budget(COMPANY, None, Budget(BudgetPeriod.MONTH, 1.0))
    flow = await make_flow(
        engine, {"flowlets": [_step("one", 0.6), _step("two", 0.6), _step("three", 0.6)]}
    )
    play = await run(engine, flow)
    assert play.state is PlayState.FAIL
    assert play.error is not None
    assert play.error.startswith("step 'three': BUDGET_EXCEEDED: the company's monthly budget")
    assert "of 1 is spent (1.2 since" in play.error
    assert provider.calls == ["one", "two"]  # the third never reached the provider
    layers = {la.ref: la for la in await engine.get_layers(COMPANY, play.id)}
    assert len(layers["three"].attempts) == 1
    assert layers["three"].usage == ()
    refusals = [e for e in audited if e.action == "budget_exceeded"]
    assert [(e.company_id, e.target_id, e.details) for e in refusals] == [
        (COMPANY, play.id, {"flowId": flow.id, "ref": "three"})
    ]
    [entry] = await usage.budgets(COMPANY)
    assert entry.flow_id is None
    assert entry.spent == pytest.approx(1.2)
    # a higher budget lets the next play through
    await usage.set_budget(COMPANY, None, Budget(BudgetPeriod.MONTH, 10.0))
    assert (await run(engine, flow)).state is PlayState.DONE


async def test_a_flow_budget_stops_only_its_flow(setup: Any) -> None:
    engine, usage, provider, _ = setup
    capped = await make_flow(engine, {"flowlets": [_step("x", 2.0), _step("y", 0.1)]})
    other = await make_flow(engine, {"flowlets": [_step("z", 2.0)]})
    await usage.set_budget(COMPANY, capped.id, Budget(BudgetPeriod.DAY, 1.5))
    failed = await run(engine, capped)
    assert failed.state is PlayState.FAIL
    assert failed.error is not None
    assert "the flow's daily budget of 1.5 is spent" in failed.error
    assert (await run(engine, other)).state is PlayState.DONE
    assert provider.calls == ["x", "z"]
    entries = {e.flow_id: e for e in await usage.budgets(COMPANY)}
    assert entries[capped.id].spent == 2.0
    assert entries[capped.id].budget.max_cost == 1.5
    gone = await usage.delete_budget(COMPANY, capped.id)
    assert gone.flow_id == capped.id
    assert (await run(engine, capped)).state is PlayState.DONE


async def test_a_parked_play_keeps_its_totals_and_adds_to_them_when_it_resumes(
    setup: Any,
) -> None:
    engine, _, provider, _ = setup
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                _step("before", 0.5),
                {**_step("after", 0.25, tin=10, tout=5), "needsApproval": True},
            ]
        },
    )
    started = await engine.start_play(COMPANY, flow.id)
    waiting = await wait_for_play(engine, COMPANY, started.id, PlayState.WAIT)
    assert waiting.usage == UsageTotals(1, 100, 20, 0.5)
    await engine.decide(COMPANY, started.id, approve=True, by="boss")
    done = await engine.wait_play(COMPANY, started.id, timeout=10)
    assert done.state is PlayState.DONE
    assert provider.calls == ["before", "after"]
    assert (await engine.get_play(COMPANY, started.id)).usage == UsageTotals(2, 110, 25, 0.75)
