"""The events bus: filtering, and dropping slow subscribers without slowing publishers."""

from __future__ import annotations

import trio

from flow8.events import SUBSCRIBER_DROPPED, Event, EventBus, EventFilter


def ev(company: str, play: str, kind: str = "play:started", flow: str = "f") -> Event:
    return Event(kind, company, flow, play)


async def test_subscribers_see_only_what_they_filter_for() -> None:
    bus = EventBus()
    async with (
        bus.subscribe(EventFilter("acme")) as company,
        bus.subscribe(EventFilter("acme", play_id="p2")) as play,
        bus.subscribe(EventFilter("acme", types=frozenset({"play:completed"}))) as done,
    ):
        bus.publish(ev("acme", "p1"))
        bus.publish(ev("other", "p2"))
        bus.publish(ev("acme", "p2", "play:completed"))
        assert [e.play_id for e in _drain(company)] == ["p1", "p2"]
        assert [e.type for e in _drain(play)] == ["play:completed"]
        assert [e.play_id for e in _drain(done)] == ["p2"]
    assert bus.subscriber_count == 0


async def test_a_slow_subscriber_is_dropped_with_a_notice() -> None:
    bus = EventBus()
    async with (
        bus.subscribe(EventFilter("acme"), buffer=4) as slow,
        bus.subscribe(EventFilter("acme"), buffer=100) as fast,
    ):
        for i in range(50):
            bus.publish(ev("acme", f"p{i}"))  # never blocks
        received = [e async for e in slow]  # the channel ends after the notice
        assert received[-1].type == SUBSCRIBER_DROPPED
        assert len(received) == 4
        assert len(_drain(fast)) == 50
    assert bus.dropped_subscribers == 1


async def test_serve_closes_subscriptions_at_shutdown() -> None:
    bus = EventBus()
    async with bus.subscribe(EventFilter(None)) as events:
        bus.publish(ev("acme", "before"))
        async with trio.open_nursery() as nursery:
            await nursery.start(bus.serve)
            nursery.cancel_scope.cancel()
        with trio.fail_after(2):
            assert [e.play_id async for e in events] == ["before"]


def _drain(channel: trio.MemoryReceiveChannel[Event]) -> list[Event]:
    out = []
    while True:
        try:
            out.append(channel.receive_nowait())
        except trio.WouldBlock:
            return out
