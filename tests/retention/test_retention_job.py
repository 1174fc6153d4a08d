"""The retention job on a real sqlite store: what it deletes, what it never deletes, its
batches, and a run cancelled half-way."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import retention_support as seed
import trio

from flow8.config import RetentionDefault
from flow8.jobs import Retention
from flow8.services.audit import AuditEntry
from flow8.services.retention import Policy, RetentionDefaults, RetentionPolicies, resolve
from flow8.store import Store, open_store

ACME, GLOBEX = "acme", "globex"


def ten_minutes_later() -> float:
    """The clock of a run 10 minutes on: past the journal's grace (5 minutes)."""
    return time.time() + 600


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'r.db'}", data_dir=tmp_path) as s:
        await seed.company(s, ACME)
        await seed.company(s, GLOBEX)
        yield s


class Recorded:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def __call__(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


def job(store: Store, *, batch_size: int = 500, **kw: Any) -> tuple[Retention, Recorded]:
    audit = Recorded()
    policies = RetentionPolicies(store, kw.pop("defaults", RetentionDefaults()))
    return Retention(store, policies, audit, batch_size=batch_size, **kw), audit


def test_the_most_specific_policy_wins_and_defaults_fill_in() -> None:
    def p(scope: str, target: str, tid: str | None, days: float) -> Policy:
        return Policy("x", scope, target, tid, days, 0, 0, True)

    defaults = RetentionDefaults()
    policies = [p("plays", "company", None, 60), p("plays", "group", "billing", 40),
                p("plays", "flow", "f1", 20), p("audit", "company", None, 50)]  # fmt: skip
    assert resolve(policies, "plays", defaults, flow_id="f1", group="billing").max_age_days == 20
    assert resolve(policies, "plays", defaults, flow_id="f2", group="billing").max_age_days == 40
    assert resolve(policies, "plays", defaults, flow_id="f2", group="ops").max_age_days == 60
    assert resolve(policies, "audit", defaults).max_age_days == 50
    fallback = resolve(policies, "plays.filtered", defaults, flow_id="f1", group="billing")
    assert (fallback.id, fallback.max_age_days, fallback.min_entries) == (None, 30, 10)
    assert fallback.enforced_minimum_days == 3
    assert resolve([], "audit", defaults).summary() == {
        "scope": "audit", "target": "company", "targetId": None, "maxAgeDays": 30,
        "minEntries": 10, "enforcedMinimumDays": 14, "enabled": True,
    }  # fmt: skip
    assert resolve([], "plays", defaults).max_age_days == 90
    assert resolve([], "plays", defaults).min_entries == 100


async def test_old_finished_plays_go_with_their_layers_and_kv_young_ones_stay(
    store: Store,
) -> None:
    await seed.flow(store, ACME, "f1")
    old = await seed.plays(store, ACME, "f1", 30, age_days=120, kv=True)
    young = await seed.plays(store, ACME, "f1", 5, age_days=10)
    newest = await seed.plays(store, ACME, "f1", 100, age_days=1)
    retention, audit = job(store, batch_size=7)
    removed = await retention.run_once()
    assert removed["plays"] == 30
    assert removed["layers"] == 30 * seed.LAYERS
    assert removed["kv"] == 30
    assert await seed.play_ids(store, ACME) == set(young) | set(newest)
    assert not set(old) & set(await seed.layer_counts(store, ACME))
    assert await store.tenant(ACME).collection("kv").count({}) == 0
    await seed.assert_whole(store, ACME)
    # one summary audit entry for the run, in the company's trail
    [entry] = audit.entries
    assert (entry.action, entry.company_id) == ("retention_run", ACME)
    assert entry.details["plays"] == 30
    # a second run finds nothing more and records nothing
    assert (await retention.run_once())["plays"] == 0
    assert len(audit.entries) == 1


async def test_running_and_waiting_plays_are_never_removed(store: Store) -> None:
    await seed.flow(store, ACME, "f1")
    kept: set[str] = set()
    for status in ("NEW", "RUN", "WAIT", "DEFERRED"):
        kept |= set(await seed.plays(store, ACME, "f1", 3, age_days=400, status=status))
    finished: set[str] = set()
    for status in ("DONE", "FAIL", "CANCEL"):
        finished |= set(await seed.plays(store, ACME, "f1", 3, age_days=400, status=status))
    await RetentionPolicies(store).create(
        ACME, {"scope": "plays", "target": "company", "maxAgeDays": 1, "minEntries": 0}
    )
    retention, _ = job(store)
    assert (await retention.run_once())["plays"] == len(finished)
    assert await seed.play_ids(store, ACME) == kept
    await seed.assert_whole(store, ACME)


async def test_nothing_below_min_entries_or_younger_than_the_enforced_minimum_goes(
    store: Store,
) -> None:
    await seed.flow(store, ACME, "small")
    await seed.flow(store, ACME, "big")
    few = await seed.plays(store, ACME, "small", 8, age_days=200)
    await seed.plays(store, ACME, "big", 20, age_days=200)
    recent = await seed.plays(store, ACME, "big", 4, age_days=2)
    policies = RetentionPolicies(store)
    await policies.create(
        ACME,
        {"scope": "plays", "target": "company", "maxAgeDays": 5, "minEntries": 10,
         "enforcedMinimumDays": 3},
    )  # fmt: skip
    retention, _ = job(store)
    await retention.run_once()
    assert set(few) <= await seed.play_ids(store, ACME, "small")  # 8 < minEntries 10
    big = await seed.play_ids(store, ACME, "big")
    assert len(big) == 10
    assert set(recent) <= big  # the newest 10 stay
    # the enforced minimum: a policy cannot ask for less, and the configured floor holds
    defaults = RetentionDefaults(plays=RetentionDefault(90, 0, 3))
    await seed.flow(store, GLOBEX, "g")
    two_days = await seed.plays(store, GLOBEX, "g", 5, age_days=2)
    ancient = await seed.plays(store, GLOBEX, "g", 5, age_days=100)
    retention, _ = job(store, defaults=defaults)
    await retention.run_once()
    assert await seed.play_ids(store, GLOBEX) == set(two_days)
    assert not set(ancient) & await seed.play_ids(store, GLOBEX)


async def test_filtered_plays_follow_their_own_policy(store: Store) -> None:
    await seed.flow(store, ACME, "f1", group="billing")
    filtered = await seed.plays(store, ACME, "f1", 6, age_days=40, filtered=True)
    plain = await seed.plays(store, ACME, "f1", 6, age_days=40)
    await seed.plays(store, ACME, "f1", 10, age_days=0.5)
    retention, _ = job(store, batch_size=4)
    removed = await retention.run_once()
    assert removed["filteredPlays"] == 6
    assert removed["plays"] == 0
    assert await seed.play_ids(store, ACME, "f1") >= set(plain)
    assert not set(filtered) & await seed.play_ids(store, ACME)
    await seed.assert_whole(store, ACME)


async def test_group_and_flow_policies_and_disabled_ones(store: Store) -> None:
    await seed.flow(store, ACME, "f1", group="billing")
    await seed.flow(store, ACME, "f2", group="billing")
    await seed.flow(store, ACME, "f3")
    p1 = await seed.plays(store, ACME, "f1", 5, age_days=50)
    p2 = await seed.plays(store, ACME, "f2", 5, age_days=50)
    p3 = await seed.plays(store, ACME, "f3", 5, age_days=50)
    policies = RetentionPolicies(store)
    await policies.create(ACME, {"scope": "plays", "target": "company", "maxAgeDays": 10})
    await policies.create(
        ACME, {"scope": "plays", "target": "group", "targetId": "billing", "maxAgeDays": 10}
    )
    await policies.create(
        ACME,
        {
            "scope": "plays",
            "target": "flow",
            "targetId": "f1",
            "maxAgeDays": 10,
            "enabled": False,
        },
    )
    retention, _ = job(store)
    await retention.run_once()
    left = await seed.play_ids(store, ACME)
    assert set(p1) <= left  # its own policy is disabled: nothing of it goes
    assert not (set(p2) | set(p3)) & left


async def test_audit_entries_go_by_the_company_policy_keeping_the_newest(store: Store) -> None:
    await seed.audit_entries(store, ACME, 50, age_days=60)
    await seed.audit_entries(store, ACME, 5, age_days=1)
    await seed.audit_entries(store, GLOBEX, 12, age_days=60)
    await RetentionPolicies(store).create(
        GLOBEX, {"scope": "audit", "maxAgeDays": 14, "minEntries": 5}
    )
    retention, _ = job(store, batch_size=16)
    removed = await retention.run_once()
    acme_logs = store.tenant(ACME).collection("audit_logs")
    assert await acme_logs.count({}) == 10  # default: 30 days, keep at least 10
    assert await store.tenant(GLOBEX).collection("audit_logs").count({}) == 5
    assert removed["audit"] == 45 + 7


async def test_batches_are_bounded_and_the_job_yields_between_them(store: Store) -> None:
    await seed.flow(store, ACME, "f1")
    await seed.plays(store, ACME, "f1", 23, age_days=200)
    await RetentionPolicies(store).create(
        ACME, {"scope": "plays", "maxAgeDays": 1, "minEntries": 0}
    )
    seen: list[int] = []

    async def between() -> None:
        seen.append(len(await seed.play_ids(store, ACME)))
        await seed.assert_whole(store, ACME)
        await trio.lowlevel.checkpoint()

    retention, _ = job(store, batch_size=5, between_batches=between)
    await retention.run_once()
    assert seen[:5] == [18, 13, 8, 3, 0]


async def test_a_run_cancelled_between_batches_leaves_whole_plays_and_the_next_finishes(
    store: Store,
) -> None:
    await seed.flow(store, ACME, "f1")
    await seed.plays(store, ACME, "f1", 40, age_days=200, kv=True)
    await RetentionPolicies(store).create(
        ACME, {"scope": "plays", "maxAgeDays": 1, "minEntries": 0}
    )
    batches = 0

    async def crash_after_two() -> None:
        nonlocal batches
        batches += 1
        if batches == 2:
            await trio.sleep_forever()  # cancelled here

    retention, _ = job(store, batch_size=8, between_batches=crash_after_two)
    with trio.move_on_after(2):
        await retention.run_once()
    assert len(await seed.play_ids(store, ACME)) == 24
    await seed.assert_whole(store, ACME)
    retention, _ = job(store, batch_size=8, clock=ten_minutes_later)
    await retention.run_once()
    assert await seed.play_ids(store, ACME) == set()
    assert await seed.layer_counts(store, ACME) == {}
    assert await store.tenant(ACME).collection("kv").count({}) == 0


@pytest.mark.parametrize("cancel_after", [0.0005, 0.002, 0.005, 0.01, 0.03])
async def test_a_run_cancelled_anywhere_never_shows_a_half_deleted_play(
    store: Store, cancel_after: float
) -> None:
    """Cancelled at some point of a batch (in a write, between the play and its layers): no
    play is left without its layers; layers whose play is gone are unreachable and a later
    run removes them."""
    await seed.flow(store, ACME, "f1")
    await seed.plays(store, ACME, "f1", 60, age_days=200)
    await RetentionPolicies(store).create(
        ACME, {"scope": "plays", "maxAgeDays": 1, "minEntries": 0}
    )
    retention, _ = job(store, batch_size=10)
    with trio.move_on_after(cancel_after):
        await retention.run_once()
    await seed.writes_landed(store)
    present = await seed.play_ids(store, ACME)
    counts = await seed.layer_counts(store, ACME)
    assert all(counts.get(p) == seed.LAYERS for p in present)  # no play without its layers
    retention, _ = job(store, batch_size=10, clock=ten_minutes_later)
    await retention.run_once()
    assert await seed.play_ids(store, ACME) == set()
    assert await seed.layer_counts(store, ACME) == {}


async def test_a_crash_at_every_step_of_a_run_leaves_whole_plays_and_the_next_run_finishes(
    tmp_path: Path,
) -> None:
    """On the memory store every store call is one checkpoint: cancelling the run after k of
    them, for every k, stops it at each step in turn, between deleting plays and their layers
    included. A play is never left without its layers; steps left by plays already gone are
    removed by the first run once the journal's grace has passed."""
    orphaned_runs = 0
    for k in range(90):  # every k: the scheduler may order the two tasks either way
        async with open_store(f"memory://crash{k}", data_dir=tmp_path) as mem:
            await seed.company(mem, ACME)
            await seed.flow(mem, ACME, "f1")
            await seed.plays(mem, ACME, "f1", 12, age_days=200, kv=True)
            await RetentionPolicies(mem).create(
                ACME, {"scope": "plays", "maxAgeDays": 1, "minEntries": 0}
            )
            retention, _ = job(mem, batch_size=4, between_batches=trio.lowlevel.checkpoint)
            async with trio.open_nursery() as nursery:

                async def crash(scope: trio.CancelScope = nursery.cancel_scope, n: int = k) -> None:
                    for _ in range(n):
                        await trio.lowlevel.checkpoint()
                    scope.cancel()

                nursery.start_soon(retention.run_once)
                nursery.start_soon(crash)
            present = await seed.play_ids(mem, ACME)
            counts = await seed.layer_counts(mem, ACME)
            assert all(counts.get(p) == seed.LAYERS for p in present), k
            orphans = set(counts) - present
            orphaned_runs += bool(orphans)
            # at once (another instance may still be on that batch) the journal is left alone
            await job(mem, batch_size=4)[0].run_once()
            assert set(await seed.layer_counts(mem, ACME)) == orphans, k
            await job(mem, batch_size=4, clock=ten_minutes_later)[0].run_once()
            assert await seed.play_ids(mem, ACME) == set(), k
            assert await seed.layer_counts(mem, ACME) == {}, k
            assert await mem.tenant(ACME).collection("kv").count({}) == 0, k
    assert orphaned_runs > 0  # some crashes did fall between a play and its layers
