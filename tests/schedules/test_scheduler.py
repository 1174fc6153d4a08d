"""The scheduler on Trio's autojump clock: one play per tick, misfire rules after an outage,
changes reaching the heap without a restart, and two instances sharing one store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import trio
from schedules_kit import (
    COMPANY,
    FLOW,
    Kit,
    body,
    now,
    schedule_kit,
    scheduled,
    sleep_until_second,
)

import actors
from flow8.domain import TriggerKind, parse_flow_definition
from flow8.jobs import Scheduler, jobs_child, scheduler_child
from flow8.modules import default_registry
from flow8.services.flows import FlowRepository
from flow8.store import open_store


@pytest.fixture
async def kit() -> AsyncIterator[Kit]:
    async with open_store("memory://schedules") as store, schedule_kit(store) as k:
        yield k


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def test_every_second_for_ten_seconds_starts_exactly_ten_plays(kit: Kit) -> None:
    await kit.start_scheduler()
    await sleep_until_second(0.5)
    start = now()
    made = await kit.schedules.create(COMPANY, kit.flow_id, body(args={"region": "eu"}))
    await trio.sleep(10)
    kit.stop_schedulers()
    plays = await kit.plays_of_flow()
    first = start.replace(microsecond=0) + timedelta(seconds=1)
    assert scheduled(plays) == [_iso(first + timedelta(seconds=i)) for i in range(10)]
    for play in plays:
        assert play.trigger.kind == TriggerKind.SCHEDULE
        assert play.trigger.source == made.id
        assert play.input["region"] == "eu"
        assert play.input["firedAt"] >= play.input["scheduledAt"]
        assert play.idempotency_key is not None
        assert play.idempotency_key.endswith(f"schedule:{made.id}:{play.input['scheduledAt']}")


async def test_a_disabled_flows_schedule_starts_nothing_and_says_why(kit: Kit) -> None:
    paused = await FlowRepository(kit.store, default_registry()).create(
        COMPANY, parse_flow_definition({**FLOW, "name": "paused", "enabled": False})
    )
    scheduler = await kit.start_scheduler()
    await kit.schedules.create(COMPANY, paused.id, body())
    await trio.sleep(3.5)
    kit.stop_schedulers()
    plays, total = await kit.engine.list_plays(COMPANY, flow_id=paused.id)
    assert (plays, total) == ([], 0)
    assert scheduler.failed >= 3  # each tick, recorded on the tick with the reason
    ticks = await kit.store.tenant(COMPANY).collection("schedule_ticks").find({})
    assert ticks
    assert all("is disabled" in t["error"] for t in ticks)


async def test_two_instances_on_one_store_start_one_play_per_tick(kit: Kit) -> None:
    await kit.start_scheduler()
    await kit.start_scheduler()
    await sleep_until_second(0.5)
    start = now()
    await kit.schedules.create(COMPANY, kit.flow_id, body())
    await trio.sleep(10)
    kit.stop_schedulers()
    first = start.replace(microsecond=0) + timedelta(seconds=1)
    plays = await kit.plays_of_flow()
    assert scheduled(plays) == [_iso(first + timedelta(seconds=i)) for i in range(10)]


async def _outage(kit: Kit, misfire: str) -> tuple[list[str], list[str], list[str]]:
    """A minutely schedule runs 2 ticks, every instance is down for an hour, then one comes
    back for a minute. Answers the scheduled times before, the ticks missed, and after."""
    await kit.start_scheduler()
    await sleep_until_second(30, every=60)
    await kit.schedules.create(COMPANY, kit.flow_id, body(cron="* * * * *", misfire=misfire))
    await trio.sleep(120)  # ticks at +30 s and +90 s
    kit.stop_schedulers()
    down = now()
    await trio.sleep(3600)
    up = now()
    await kit.start_scheduler()
    await trio.sleep(60)  # one tick due at +30 s
    kit.stop_schedulers()
    got = scheduled(await kit.plays_of_flow())
    minute = timedelta(minutes=1)
    first_missed = down.replace(second=0, microsecond=0) + minute
    missed = [_iso(first_missed + i * minute) for i in range(60)]
    assert up - down >= timedelta(hours=1)
    return got[:2], missed, got[2:]


async def test_misfire_skip_fires_nothing_missed_after_an_hour_down(kit: Kit) -> None:
    before, missed, after = await _outage(kit, "skip")
    assert len(before) == 2
    assert len(after) == 1  # the next regular tick only
    assert after[0] not in missed
    assert after[0] > missed[-1]


async def test_misfire_run_once_fires_one_play_for_all_missed_ticks(kit: Kit) -> None:
    before, missed, after = await _outage(kit, "run_once")
    assert len(before) == 2
    assert len(after) == 2  # one for the hour missed (as its latest tick), then the next tick
    assert after[0] == missed[-1]
    assert after[1] > missed[-1]


async def test_changes_reach_the_scheduler_without_a_restart(kit: Kit) -> None:
    await kit.start_scheduler()
    await sleep_until_second(0.5)
    made = await kit.schedules.create(COMPANY, kit.flow_id, body(enabled=False))
    await trio.sleep(3)
    assert await kit.plays_of_flow() == []
    await kit.schedules.update(COMPANY, made.id, {"enabled": True})
    await trio.sleep(3)
    assert len(await kit.plays_of_flow()) == 3
    await kit.schedules.update(COMPANY, made.id, {"cron": "*/2 * * * * *"})
    await trio.sleep(4)
    assert len(await kit.plays_of_flow()) == 5
    await kit.schedules.delete(COMPANY, made.id)
    await trio.sleep(5)
    assert len(await kit.plays_of_flow()) == 5


async def test_another_instances_change_is_picked_up_by_the_periodic_reread(kit: Kit) -> None:
    # A change made on another instance wakes nothing here: the re-read finds it.
    other = await kit.start_scheduler()
    kit.schedules.on_change = lambda company_id, schedule_id: None  # not this instance's
    await sleep_until_second(0.5)
    await kit.schedules.create(COMPANY, kit.flow_id, body(cron="*/10 * * * * *"))
    await trio.sleep(30)
    kit.stop_schedulers()
    assert len(await kit.plays_of_flow()) == 3
    assert other.statistics()["fired"] == 3


async def test_the_scheduler_shows_its_last_and_next_fire_in_the_actor_tree(kit: Kit) -> None:
    scheduler = Scheduler(kit.store, kit.plays)
    kit.schedules.on_change = scheduler.changed
    root = actors.SupervisorSpec([jobs_child(scheduler_child(scheduler))])
    async with actors.open_runtime(root) as runtime:
        await sleep_until_second(0.5)
        await kit.schedules.create(COMPANY, kit.flow_id, body())
        await trio.sleep(3)
        (jobs,) = runtime.tree()["children"]
        (node,) = jobs["children"]
        assert (jobs["name"], node["name"], node["state"]) == ("jobs", "scheduler", "running")
        info = node["info"]
        assert (info["schedules"], info["fired"], info["lostClaims"]) == (1, 3, 0)
        assert info["nextFireAt"] > info["lastFireAt"]
        assert info["lastRunAt"] >= info["lastFireAt"]


async def test_run_once_after_hours_down_fires_the_latest_missed_second_once(kit: Kit) -> None:
    # 7,200 ticks missed: one play for them, then the ticks less than 5 s late, then on time.
    await kit.start_scheduler()
    await sleep_until_second(0.5)
    await kit.schedules.create(COMPANY, kit.flow_id, body(misfire="run_once"))
    await trio.sleep(2)
    kit.stop_schedulers()
    await trio.sleep(7_200)
    up = now()
    await kit.start_scheduler()
    await trio.sleep(3)
    kit.stop_schedulers()
    after = scheduled(await kit.plays_of_flow())[2:]
    latest_missed = (up - timedelta(seconds=5)).replace(microsecond=0)
    assert after == [_iso(latest_missed + timedelta(seconds=i)) for i in range(9)]
