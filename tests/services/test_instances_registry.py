"""The instance registry against a real sqlite store: the lowest free index claimed once per
group, released by the last of a group, taken over after a lapse, re-claimed when lost; and the
channel port blocks the indexes pick."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio

from flow8.config import PortRange
from flow8.services.instances import InstanceRegistry, channel_block
from flow8.store import Store, open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'i.db'}", data_dir=tmp_path) as opened:
        yield opened


class Clock:
    """A wall clock the test moves (the registry's expiries are datetimes in the store). It
    starts at the real time: the store's TTL hides documents whose expiry has passed on the
    real clock, so a fixed start day fails once that day is over."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _registry(
    store: Store, clock: Callable[[], datetime], group: str = "", **kw: object
) -> InstanceRegistry:
    return InstanceRegistry(store, group=group, ttl_seconds=20.0, clock=clock, **kw)  # type: ignore[arg-type]


async def test_groups_starting_at_once_take_distinct_lowest_indexes(store: Store) -> None:
    clock = Clock()
    registries = [_registry(store, clock) for _ in range(5)]
    got: list[int] = []

    async def register(r: InstanceRegistry) -> None:
        got.append(await r.register())

    async with trio.open_nursery() as nursery:
        for r in registries:
            nursery.start_soon(register, r)
    assert sorted(got) == [1, 2, 3, 4, 5]
    live = await registries[0].live()
    assert sorted((i.index, i.id) for i in live) == sorted(
        (r.index, r.instance_id) for r in registries
    )


async def test_the_workers_of_one_group_share_its_index(store: Store) -> None:
    clock = Clock()
    alone = _registry(store, clock)
    assert await alone.register() == 1
    workers = [_registry(store, clock, group="host-a", worker=k) for k in (1, 2, 3)]
    assert [await w.register() for w in workers] == [2, 2, 2]
    assert sorted(i.worker or 0 for i in await alone.live() if i.group == "host-a") == [1, 2, 3]


async def test_the_last_worker_of_a_group_to_stop_releases_its_index(store: Store) -> None:
    clock = Clock()
    first, second = (_registry(store, clock, group="host-a", worker=k) for k in (1, 2))
    await first.register()
    await second.register()
    await first.release()
    assert await _registry(store, clock).register() == 2  # index 1 still held by the group
    await second.release()
    assert await _registry(store, clock).register() == 1  # released at once, no lapse


async def test_a_lapsed_index_is_taken_by_the_next_instance_and_the_old_holder_moves(
    store: Store,
) -> None:
    clock = Clock()
    changed: list[int | None] = []
    stalled = _registry(store, clock, on_change=lambda: changed.append(stalled.index))
    assert await stalled.register() == 1
    clock.advance(10)
    await stalled.heartbeat()  # renewed: still its own after another 15 s
    clock.advance(15)
    assert await _registry(store, clock).register() == 2
    assert [i.index for i in await stalled.live()] == [1, 2]

    clock.advance(25)  # no heartbeat for 25 s (> ttl): the claim and the document lapse
    assert [i.index for i in await stalled.live()] == []
    newcomer = _registry(store, clock)
    assert await newcomer.register() == 1
    await stalled.heartbeat()  # it comes back: its index is gone, it claims the lowest free
    assert stalled.index == 2
    assert changed == [2]


async def test_a_heartbeat_keeps_the_index_when_nobody_took_it(store: Store) -> None:
    clock = Clock()
    changed: list[int] = []
    slow = _registry(store, clock, on_change=lambda: changed.append(1))
    await slow.register()
    clock.advance(30)  # lapsed, but nobody claimed it meanwhile
    await slow.heartbeat()
    assert slow.index == 1
    assert changed == []
    assert slow.statistics()["heartbeats"] == 1


def test_channel_blocks_follow_the_seed_layout() -> None:
    base = PortRange(7701, 7799)
    assert channel_block(base, 1) == base
    assert channel_block(base, 2) == PortRange(7800, 7899)
    assert channel_block(base, 3) == PortRange(7900, 7999)
    with pytest.raises(ValueError, match="past port 65535"):
        channel_block(base, 600)
    with pytest.raises(ValueError, match="starts at 1"):
        channel_block(base, 0)
