"""Play events read back from the store (flow8.services.play_watch): two engines over one sqlite
file, as two workers of `flow8 serve --workers 2` are. Engine A runs the plays; engine B runs
none, so what B's watches report is all read from the store. Each is checked against what
A's own bus carried: the same frames (type and data), each once, and nothing twice when the
bus and the store both saw an event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from support.waits import wait_for_play, wait_until

from flow8.domain import PlayState
from flow8.engine import Engine, EngineSettings
from flow8.events import PLAY_COMPLETED, PLAY_FAILED, Event, EventBus, EventFilter
from flow8.modules import default_registry
from flow8.services import play_watch
from flow8.services.flows import FlowRepository, FlowService
from flow8.services.kv import KvStore
from flow8.services.play_watch import EventWatch, event_key
from flow8.services.plays import PlayService
from flow8.store import open_store

COMPANY = "acme"
FLOW = {
    "name": "watched",
    "flowlets": [
        {"ref": "first", "appId": "noop"},
        # not idempotent: its running state is recorded, so the store can show its start
        {"ref": "append", "appId": "kv-append", "args": {"key": "k", "value": 1}},
        {"ref": "wait", "appId": "delay", "args": {"ms": 300}},
        {"ref": "last", "appId": "noop"},
    ],
}


@attrs.frozen
class Side:
    engine: Engine
    bus: EventBus
    plays: PlayService


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[tuple[FlowService, Side, Side]]:
    async with (
        open_store(f"sqlite:///{tmp_path / 'p.db'}", data_dir=tmp_path) as store,
        trio.open_nursery() as nursery,
    ):
        registry = default_registry()
        flows = FlowRepository(store, registry)
        sides = []
        for name in ("a", "b"):
            bus = EventBus()
            settings = EngineSettings(poll_interval=0.05, instance_id=f"engine-{name}")
            engine = Engine(store, bus, settings, registry, flows=flows, kv=KvStore(store))
            sides.append(Side(engine, bus, PlayService(engine)))
        await nursery.start(sides[0].engine.serve)  # only A runs plays
        yield FlowService(flows), sides[0], sides[1]
        nursery.cancel_scope.cancel()


async def _until_done(watch: EventWatch) -> list[Event]:
    """Poll as /ws does (faster), until the watch has nothing left to read."""
    got: list[Event] = []
    with trio.fail_after(10):
        while not watch.done:
            got.extend(await watch.poll())
            await trio.sleep(0.02)
    return got


def _frame(event: Event) -> tuple[str, dict[str, Any]]:
    return event.type, event.data


async def test_a_play_of_another_engine_is_reported_from_the_store_as_its_bus_reports_it(
    two: tuple[FlowService, Side, Side],
) -> None:
    flows, a, b = two
    flow = await flows.create(COMPANY, FLOW)
    # Held before its first step, so that B's first look comes before anything runs.
    play = await a.plays.start(COMPANY, flow.id, approve_first=True)
    await wait_for_play(a.plays, COMPANY, play.id, PlayState.WAIT)
    assert not b.plays.runs_here(play.id)
    watch = await b.plays.watch(COMPANY, play.id)
    assert await watch.poll() == []  # the wait was there at the first look
    async with a.bus.subscribe(EventFilter(COMPANY, play_id=play.id)) as on_a:
        await a.plays.approve(COMPANY, play.id)
        assert a.plays.runs_here(play.id)
        polled = await _until_done(watch)
        local: list[Event] = []
        with trio.fail_after(5):
            async for event in on_a:  # what A's bus carried, up to the play's end
                local.append(event)
                if event.type in (PLAY_COMPLETED, PLAY_FAILED):
                    break

    keys = [event_key(e) for e in polled]
    assert len(keys) == len(set(keys))  # nothing twice
    by_key = {event_key(e): _frame(e) for e in local}
    assert [_frame(e) for e in polled] == [by_key[k] for k in keys]  # the same frames
    ended = [(e.type, e.data.get("ref")) for e in polled if e.type != "play:layer:started"]
    assert ended == [
        ("play:layer:completed", "first"),
        ("play:layer:completed", "append"),
        ("play:layer:completed", "wait"),
        ("play:layer:completed", "last"),
        ("play:completed", None),
    ]
    assert polled[-1].data["state"] == "DONE"
    # What B reported from the store, B's bus would not report again; what the store did not
    # show (a step's start: an idempotent step's is not recorded, and a look may miss the
    # other's) it would.
    assert [watch.note(e) for e in local] == [event_key(e) not in keys for e in local]
    again = [(e.type, e.data.get("ref")) for e in local if event_key(e) not in keys]
    assert {ref for _, ref in again} >= {"first", "wait", "last"}
    assert {kind for kind, _ in again} == {"play:layer:started"}


async def test_a_play_running_here_is_left_to_the_bus_and_nothing_comes_twice(
    two: tuple[FlowService, Side, Side],
) -> None:
    flows, a, _ = two
    flow = await flows.create(COMPANY, FLOW)
    play = await a.plays.start(COMPANY, flow.id, approve_first=True)
    await wait_for_play(a.plays, COMPANY, play.id, PlayState.WAIT)
    watch = await a.plays.watch(COMPANY, play.id)
    delivered: list[Event] = []
    from_store: list[Event] = []

    async def follow() -> None:
        while not watch.done:
            found = await watch.poll()
            from_store.extend(found)
            delivered.extend(found)
            await trio.sleep(0.01)

    async with (
        a.bus.subscribe(EventFilter(COMPANY, play_id=play.id)) as on_a,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(follow)
        await a.plays.approve(COMPANY, play.id)
        with trio.fail_after(10):
            async for event in on_a:  # as /ws does with the bus's events
                if watch.note(event):
                    delivered.append(event)
                if event.type == PLAY_COMPLETED:
                    break
        await wait_until(lambda: watch.done, what="the watch to end")
        # Once the play has left this engine, a look at the store finds nothing new.
        assert not a.plays.runs_here(play.id)
        assert await watch.poll() == []

    assert from_store == []  # it ran here throughout: the store was never read for it
    keys = [event_key(e) for e in delivered]
    assert len(keys) == len(set(keys))
    assert [e.type for e in delivered][-1] == PLAY_COMPLETED
    assert {e.data.get("ref") for e in delivered} >= {"first", "append", "wait", "last"}


async def test_a_local_event_already_read_from_the_store_is_not_sent_again(
    two: tuple[FlowService, Side, Side],
) -> None:
    """The race of a play that moves here: the store showed an event before the bus did."""
    flows, a, b = two
    flow = await flows.create(COMPANY, FLOW)
    play = await a.plays.start(COMPANY, flow.id)
    watch = await b.plays.watch(COMPANY, play.id)
    polled = await _until_done(watch)
    assert polled
    for event in polled:  # the same events, arriving from the bus afterwards
        copy = Event(event.type, event.company_id, event.flow_id, event.play_id, event.data)
        assert not watch.note(copy)
    log = Event("play:log", COMPANY, flow.id, play.id, {"ref": "first", "message": "hi"})
    assert watch.note(log)  # console lines are not deduplicated


async def test_flow_and_company_watches_report_other_engines_play_events(
    two: tuple[FlowService, Side, Side],
) -> None:
    flows, a, b = two
    flow = await flows.create(COMPANY, FLOW)
    other = await flows.create(COMPANY, {**FLOW, "name": "other"})
    company = await b.plays.watch_plays(COMPANY)
    of_flow = await b.plays.watch_plays(COMPANY, flow.id)
    play = await a.plays.start(COMPANY, flow.id)
    unrelated = await a.plays.start(COMPANY, other.id)
    for p in (play, unrelated):
        await a.plays.wait(COMPANY, p.id, timeout=10)
    seen: dict[str, list[Event]] = {"company": [], "flow": []}

    async def ended(name: str, watch: EventWatch, count: int) -> bool:
        seen[name].extend(await watch.poll())
        return sum(e.type == PLAY_COMPLETED for e in seen[name]) >= count

    await wait_until(lambda: ended("company", company, 2), what="both plays' ends")
    await wait_until(lambda: ended("flow", of_flow, 1), what="the flow's play's end")
    for name, plays in (("company", {play.id, unrelated.id}), ("flow", {play.id})):
        events = seen[name]
        assert {e.play_id for e in events} == plays
        for play_id in plays:
            mine = [e for e in events if e.play_id == play_id]
            assert [e.type for e in mine] == ["play:started", "play:completed"]
            assert mine[1].data["state"] == "DONE"
    assert await company.poll() == []  # each once
    assert await of_flow.poll() == []


async def test_a_wait_for_approval_is_reported_from_the_store_as_the_bus_reports_it(
    two: tuple[FlowService, Side, Side],
) -> None:
    flows, a, b = two
    flow = await flows.create(
        COMPANY,
        {
            "name": "approved",
            "flowlets": [
                {"ref": "first", "appId": "noop"},
                {"ref": "check", "appId": "noop", "needsApproval": True},
            ],
        },
    )
    play = await a.plays.start(COMPANY, flow.id, approve_first=True)
    await wait_for_play(a.plays, COMPANY, play.id, PlayState.WAIT)
    watch = await b.plays.watch(COMPANY, play.id)  # its first wait is past
    async with a.bus.subscribe(EventFilter(COMPANY, flow_id=flow.id)) as on_a:
        await a.plays.approve(COMPANY, play.id)
        await wait_for_play(a.plays, COMPANY, play.id, PlayState.WAIT)
        polled = await watch.poll()
        with trio.fail_after(5):
            async for local in on_a:
                if local.type == "play:waiting":
                    break
    waiting = [e for e in polled if e.type == "play:waiting"]
    assert [_frame(e) for e in waiting] == [_frame(local)]
    assert local.data["ref"] == "check"
    assert await watch.poll() == []
    await a.plays.approve(COMPANY, play.id)
    rest = await _until_done(watch)
    assert [(e.type, e.data.get("ref")) for e in rest][-2:] == [
        ("play:layer:completed", "check"),
        ("play:completed", None),
    ]


async def test_the_first_look_takes_every_layer_so_far_page_by_page(
    two: tuple[FlowService, Side, Side], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A play with more layers than one read takes is taken for known whole: the layers
    before the subscription are not reported afterwards, a page at a time."""
    monkeypatch.setattr(play_watch, "PAGE", 3)
    flows, a, b = two
    flow = await flows.create(
        COMPANY,
        {
            "name": "loop",
            "flowlets": [
                {"ref": "it", "appId": "iterator", "args": {"items": list(range(10))}},
                {"ref": "each", "appId": "noop"},
                {"ref": "agg", "appId": "aggregator", "args": {"sourceRef": "it"}},
                {"ref": "check", "appId": "noop", "needsApproval": True},
                {"ref": "last", "appId": "noop"},
            ],
        },
    )
    play = await a.plays.start(COMPANY, flow.id)
    await wait_for_play(a.plays, COMPANY, play.id, PlayState.WAIT)
    watch = await b.plays.watch(COMPANY, play.id)
    assert await watch.poll() == []
    await a.plays.approve(COMPANY, play.id)
    rest = await _until_done(watch)
    assert [(e.type, e.data.get("ref")) for e in rest] == [
        ("play:layer:completed", "check"),
        ("play:layer:completed", "last"),
        ("play:completed", None),
    ]


@attrs.define
class _WritesLandBetweenReads:
    """A play's layers collection whose first read, once armed, lets the engine write
    before it answers: what a look sees when the engine writes between two of its reads
    (they are not one snapshot)."""

    inner: Any
    meanwhile: Any = None  # an async callable, run once

    async def find(self, *args: Any, **kw: Any) -> Any:
        docs = await self.inner.find(*args, **kw)
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()
        return docs

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_step_is_never_reported_after_the_step_that_followed_it(
    two: tuple[FlowService, Side, Side],
) -> None:
    """The engine ends a step before it writes the next. Were a look to read the known
    layers before the new ones, an approved step's end could land between the two reads
    and be reported after its successor's (seen in CI, one run in many)."""
    flows, a, _ = two
    flow = await flows.create(
        COMPANY,
        {
            "name": "approved",
            "flowlets": [
                {"ref": "check", "appId": "noop", "needsApproval": True},
                {"ref": "last", "appId": "noop"},
            ],
        },
    )
    play = await a.plays.start(COMPANY, flow.id)
    await wait_for_play(a.plays, COMPANY, play.id, PlayState.WAIT)
    scope = a.engine.store.tenant(COMPANY)
    layers = _WritesLandBetweenReads(scope.collection("play_layers"))
    watch = play_watch.PlayWatch(
        COMPANY,
        play.id,
        flow.id,
        scope.collection("plays"),
        layers,
        lambda _: False,  # read everything from the store, as another process does
        lambda: a.plays.get(COMPANY, play.id),
    )
    await watch.first_look()

    async def approve_and_finish() -> None:
        await a.plays.approve(COMPANY, play.id)
        await wait_for_play(a.plays, COMPANY, play.id, PlayState.DONE)

    layers.meanwhile = approve_and_finish
    rest = await _until_done(watch)
    assert [(e.type, e.data.get("ref")) for e in rest] == [
        ("play:layer:completed", "check"),
        ("play:layer:completed", "last"),
        ("play:completed", None),
    ]
