"""PlayService: start/run, layers, cancel, approve/reject, retry, idempotency, tenancy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio
from support.waits import wait_for_play

from flow8.domain import LayerState, PlayState, TriggerKind
from flow8.engine import Engine, EngineSettings
from flow8.events import EventBus
from flow8.modules import default_registry
from flow8.services.flows import FlowRepository, FlowService
from flow8.services.kv import KvStore
from flow8.services.plays import PlayNotFound, PlayService, PlayStateError
from flow8.store import open_store


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[tuple[FlowService, PlayService]]:
    async with (
        open_store(f"sqlite:///{tmp_path / 'p.db'}", data_dir=tmp_path) as store,
        trio.open_nursery() as nursery,
    ):
        # The dispatcher stops before the store closes, as in the supervision tree.
        registry = default_registry()
        flows = FlowRepository(store, registry)
        settings = EngineSettings(poll_interval=0.05)
        engine = Engine(store, EventBus(), settings, registry, flows=flows, kv=KvStore(store))
        await nursery.start(engine.serve)
        yield FlowService(flows), PlayService(engine)
        nursery.cancel_scope.cancel()


async def test_run_and_inspect(services: tuple[FlowService, PlayService]) -> None:
    flows, plays = services
    flow = await flows.create(
        "acme",
        {
            "name": "d",
            "flowlets": [{"ref": "x", "appId": "set", "args": {"value": "{{ $prev.args.v * 2 }}"}}],
        },
    )
    play = await plays.run("acme", flow.id, {"v": 4}, timeout=10)
    assert play.state is PlayState.DONE
    assert play.output == 8
    assert play.trigger.kind is TriggerKind.API
    assert play.flow_version == 1
    layers, count = await plays.layers("acme", play.id)
    assert [la.state for la in layers] == [LayerState.DONE]
    assert count == 1
    page, total = await plays.list("acme", flow_id=flow.id, state=PlayState.DONE)
    assert total == 1
    assert page[0].id == play.id
    with pytest.raises(PlayNotFound):
        await plays.get("globex", play.id)
    with pytest.raises(PlayNotFound):
        await plays.layers("globex", play.id)


async def test_approve_reject_cancel_retry(services: tuple[FlowService, PlayService]) -> None:
    flows, plays = services
    flow = await flows.create(
        "acme",
        {
            "name": "a",
            "flowlets": [
                {"ref": "ok", "appId": "noop", "needsApproval": True},
                {"ref": "bad", "appId": "fail", "args": {"message": "x"}},
            ],
        },
    )
    first = await plays.start("acme", flow.id, idempotency_key="req-1")
    again = await plays.start("acme", flow.id, idempotency_key="req-1")
    assert again.id == first.id
    await wait_for_play(plays, "acme", first.id, PlayState.WAIT)
    await plays.approve("acme", first.id, by="ops")
    failed = await plays.wait("acme", first.id, timeout=10)
    assert failed.state is PlayState.FAIL
    with pytest.raises(PlayStateError):
        await plays.approve("acme", first.id)
    second = await plays.start("acme", flow.id)
    await wait_for_play(plays, "acme", second.id, PlayState.WAIT)
    rejected = await plays.reject("acme", second.id, by="ops")
    assert rejected.error == "rejected by ops"
    third = await plays.start("acme", flow.id)
    await wait_for_play(plays, "acme", third.id, PlayState.WAIT)
    assert (await plays.cancel("acme", third.id)).state is PlayState.CANCEL
    await flows.update(
        "acme",
        flow.id,
        {
            "name": "a",
            "flowlets": [
                {"ref": "ok", "appId": "noop", "needsApproval": True},
                {"ref": "bad", "appId": "noop"},
            ],
        },
    )
    retried = await plays.retry("acme", first.id, "bad")
    done = await plays.wait("acme", retried.id, timeout=10)
    assert done.state is PlayState.DONE  # the approved step was reused, not asked again
    layers = {la.ref: la for la in (await plays.layers("acme", done.id))[0]}
    assert layers["ok"].state is LayerState.DONE


async def test_list_filters_by_creation_time_window(
    services: tuple[FlowService, PlayService],
) -> None:
    flows, plays = services
    flow = await flows.create("acme", {"name": "t", "flowlets": [{"ref": "a", "appId": "noop"}]})
    first = await plays.run("acme", flow.id, {}, timeout=10)
    await trio.sleep(0.005)  # the store keeps millisecond timestamps: keep the two apart
    second = await plays.run("acme", flow.id, {}, timeout=10)
    assert first.created_at < second.created_at
    between = datetime.fromtimestamp((first.created_at + second.created_at) / 2, UTC)
    page, total = await plays.list("acme", created_from=between)
    assert (total, [p.id for p in page]) == (1, [second.id])
    page, total = await plays.list("acme", created_before=between)
    assert (total, [p.id for p in page]) == (1, [first.id])
    before_first = datetime.fromtimestamp(first.created_at - 1, UTC)
    page, total = await plays.list("acme", created_from=before_first, created_before=between)
    assert [p.id for p in page] == [first.id]
    page, total = await plays.list("acme")
    assert [p.id for p in page] == [second.id, first.id]  # newest first


async def test_layers_are_paged_in_execution_order(
    services: tuple[FlowService, PlayService],
) -> None:
    flows, plays = services
    flow = await flows.create(
        "acme",
        {
            "name": "loop",
            "flowlets": [
                {"ref": "it", "appId": "iterator", "args": {"items": list(range(120))}},
                {"ref": "each", "appId": "set", "args": {"value": "{{ $prev.it.item }}"}},
                {"ref": "agg", "appId": "aggregator", "args": {"sourceRef": "it"}},
            ],
        },
    )
    done = await plays.run("acme", flow.id, timeout=30)
    assert done.state is PlayState.DONE
    first, total = await plays.layers("acme", done.id, page=0, size=100)
    second, again = await plays.layers("acme", done.id, page=1, size=100)
    assert total == again == 122  # the iterator, 120 iterations, the aggregator
    assert [la.ref for la in first[:2]] == ["it", "each"]
    assert [la.output for la in first[1:4]] == [0, 1, 2]
    assert len(second) == 22
    assert [la.ref for la in second[-2:]] == ["each", "agg"]
    assert second[-2].iteration == (119,)
