"""The ``scheduler`` job: cron schedules -> plays, each tick claimed exactly once.

How it works (one per instance; several instances may share the database):

* A heap of each enabled schedule's next fire instant (UTC). The task sleeps until the
  earliest one, or until woken: by a change made through this instance's
  ``ScheduleService`` (``changed``), or every ``reread_interval`` seconds to re-read the
  schedules whose ``updated_at`` moved (another instance's changes) and to finish claimed
  ticks whose play was never started (an instance killed between the two writes).
* A due tick is **claimed** by inserting ``(company, schedule, fire instant)`` into
  ``schedule_ticks``, whose unique index lets exactly one instance win; the loser moves on.
  The winner starts the play with trigger ``schedule``, input = args plus
  ``{scheduledAt, firedAt}``, and idempotency key ``schedule:<id>:<fire instant>`` (so a
  retried start never makes a second play), then records the play on the tick.
* Before firing, the schedule is read again by id (a point read): deleted, disabled or
  changed elsewhere, it is re-planned instead.
* Misfire: a tick more than ``misfire_grace`` seconds late (the instance was down, or
  stalled) is missed. ``skip`` fires nothing missed and goes on with the next tick due;
  ``run_once`` fires one play for all missed ticks, as the latest of them.
* Fire instants follow ``flow8.services.schedules`` (timezone and DST rules).
* A store outage pauses the loop (``OutagePause``) instead of crashing it; once the store
  answers, every schedule is planned again from it, as after a restart, so a tick the outage
  kept from firing fires late (within ``misfire_grace``) or by its misfire rule.
"""

from __future__ import annotations

import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import trio

from flow8.domain import FlowValidationError, TriggerKind
from flow8.logs import get_logger
from flow8.services.exceptions import EngineError
from flow8.services.plays import PlayLimitReached, PlayService
from flow8.services.schedules import (
    COLLECTION,
    Schedule,
    fire_times,
    schedule_input,
    tick_key,
)
from flow8.store import UNREACHABLE, DuplicateKey, OutagePause, Store, new_id

log = get_logger("flow8.scheduler")

TICKS = "schedule_ticks"
TICK_TTL = timedelta(days=2)  # longer than the plays' idempotency window (24 h)
_RECOVER_AFTER = timedelta(seconds=10)  # a claimed tick without its play for this long
_COUNT_MISSED = 1_000  # missed ticks counted (statistics only: "at least" beyond)
# Windows before the end of an outage searched for its latest tick, narrowest first, so an
# every-second schedule down for a month costs a minute's ticks, not millions.
_LOOK_BACK = tuple(
    timedelta(seconds=s) for s in (60, 3600, 86_400, 32 * 86_400, 400 * 86_400, 3000 * 86_400)
)
_LOOK_BACK_TICKS = 5_000


def _now() -> datetime:
    # time.time(): the wall clock, which tests on virtual time move with Trio's clock
    return datetime.fromtimestamp(time.time(), UTC)


def _ms(instant: datetime) -> datetime:
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


@attrs.define
class _Entry:
    schedule: Schedule
    gen: int
    next_at: datetime | None = None


@attrs.define
class Scheduler:
    """``serve`` is the ``scheduler`` actor's body; ``changed`` is wired into the
    ``ScheduleService`` of the same instance."""

    store: Store
    plays: PlayService
    reread_interval: float = 3.0
    misfire_grace: float = 5.0
    instance: str = attrs.field(factory=new_id)
    _entries: dict[tuple[str, str], _Entry] = attrs.field(factory=dict, init=False)
    _heap: list[tuple[datetime, int, int, tuple[str, str], bool]] = attrs.field(
        factory=list, init=False
    )
    _seq: itertools.count[int] = attrs.field(factory=itertools.count, init=False)
    _pending: set[tuple[str, str]] = attrs.field(factory=set, init=False)
    _wake: trio.Event = attrs.field(factory=trio.Event, init=False)
    _watermark: datetime | None = attrs.field(default=None, init=False)
    # statistics
    fired: int = attrs.field(default=0, init=False)
    lost_claims: int = attrs.field(default=0, init=False)
    missed: int = attrs.field(default=0, init=False)
    failed: int = attrs.field(default=0, init=False)
    last_fire_at: datetime | None = attrs.field(default=None, init=False)
    last_run_at: datetime | None = attrs.field(default=None, init=False)

    # -- wiring ---------------------------------------------------------------------------

    def changed(self, company_id: str, schedule_id: str) -> None:
        """A schedule was created, changed or deleted on this instance: re-plan it now."""
        self._pending.add((company_id, schedule_id))
        self._wake.set()

    def statistics(self) -> dict[str, Any]:
        """Last run, next fire and counters (for the admin tree and ``GET /api/jobs``)."""
        upcoming = self._peek()
        return {
            "schedules": sum(1 for e in self._entries.values() if e.next_at is not None),
            "lastRunAt": _iso(self.last_run_at),
            "lastFireAt": _iso(self.last_fire_at),
            "nextFireAt": _iso(upcoming),
            "fired": self.fired,
            "lostClaims": self.lost_claims,
            "missed": self.missed,
            "failed": self.failed,
        }

    # -- the loop ---------------------------------------------------------------------------

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._forget_plan()
        await self._reread()
        task_status.started()
        # A store outage pauses the loop rather than crashing it (see OutagePause). The pauses
        # stay well inside the misfire grace: a tick an outage shorter than the grace kept
        # back still fires, late, rather than being missed for the pause's sake.
        longest = min(self.reread_interval, self.misfire_grace / 4)
        outage = OutagePause("scheduler", first=min(0.5, longest), longest=longest)
        next_reread = trio.current_time() + self.reread_interval
        while True:
            self._wake = trio.Event()
            try:
                next_reread = await self._round(next_reread)
            except UNREACHABLE as e:
                await outage.wait(e)
                # The round may have taken a tick off the plan and not fired it: plan every
                # schedule again from the store at the next round, as a restart would (a
                # tick claimed but not started is left pending, for the recovery pass).
                self._forget_plan()
                next_reread = trio.current_time()
                continue
            outage.over()
            delay = next_reread - trio.current_time()
            top = self._peek()
            if top is not None:
                delay = min(delay, (top - _now()).total_seconds())
            if delay > 0:
                with trio.move_on_after(delay):
                    await self._wake.wait()

    async def _round(self, next_reread: float) -> float:
        """Re-plan what changed here; every ``reread_interval``, pick up other instances'
        changes and recover pending ticks; fire what is due. Returns the next re-read time."""
        pending, self._pending = self._pending, set()
        for key in pending:
            await self._reload(key)
        if trio.current_time() >= next_reread:
            # Before firing: after an outage, the round that re-plans everything must also
            # fire what is due, or it would pass for the store being back without a write.
            await self._reread()  # every schedule, when the plan was forgotten
            await self._recover()
            next_reread = trio.current_time() + self.reread_interval
        await self._fire_due()
        return next_reread

    def _forget_plan(self) -> None:
        self._entries.clear()
        self._heap.clear()
        self._watermark = None

    def _peek(self) -> datetime | None:
        while self._heap:
            at, _, gen, key, _ = self._heap[0]
            entry = self._entries.get(key)
            if entry is not None and entry.gen == gen and entry.next_at == at:
                return at
            heapq.heappop(self._heap)  # stale: the schedule changed or went
        return None

    def _push(self, entry: _Entry, at: datetime | None, *, catch_up: bool = False) -> None:
        entry.next_at = at
        if at is not None:
            key = (entry.schedule.company_id, entry.schedule.id)
            heapq.heappush(self._heap, (at, next(self._seq), entry.gen, key, catch_up))

    # -- planning ---------------------------------------------------------------------------

    def _plan(self, schedule: Schedule, after: datetime | None = None) -> None:
        """(Re)place the schedule in the heap at its next tick after ``after`` (its anchor:
        the latest tick claimed, or when its timetable changed)."""
        key = (schedule.company_id, schedule.id)
        old = self._entries.get(key)
        entry = _Entry(schedule, gen=(old.gen + 1) if old else 0)
        self._entries[key] = entry
        if not schedule.enabled:
            return
        anchor = after or schedule.anchor
        # Keep the tick already planned when the timetable did not change.
        same = old is not None and after is None and old.schedule.since == schedule.since
        planned = old.next_at if old is not None and same else None
        if planned is not None and planned > anchor:
            anchor = planned - timedelta(microseconds=1)
        self._push(entry, next(fire_times(schedule.cron, schedule.timezone, anchor), None))

    def _catch_up(self, entry: _Entry, due: datetime, now: datetime) -> None:
        """``due`` is missed (and maybe more after it): plan by the misfire rule. ``skip``: the
        first tick not missed; ``run_once``: the latest missed tick, fired once for all."""
        schedule = entry.schedule
        late = now - timedelta(seconds=self.misfire_grace)
        missed = _count_until(schedule, due, late)
        self.missed += missed
        if schedule.misfire == "run_once":
            log.info("schedule_misfire_run_once", schedule=schedule.id, missed=missed)
            self._push(entry, _latest_until(schedule, due, late), catch_up=True)
            return
        log.info("schedule_misfire_skip", schedule=schedule.id, missed=missed)
        self._push(entry, next(fire_times(schedule.cron, schedule.timezone, late), None))

    async def _reload(self, key: tuple[str, str]) -> None:
        company_id, schedule_id = key
        doc = (
            await self.store.tenant(company_id)
            .collection(COLLECTION)
            .find_one({"_id": schedule_id})
        )
        if doc is None:
            self._entries.pop(key, None)
            return
        known = self._entries.get(key)
        if known is None or known.schedule.rev != int(doc.get("rev") or 1):
            self._plan(Schedule.from_doc(doc))

    async def _reread(self) -> None:
        """Schedules changed since the last re-read (all of them the first time)."""
        query: dict[str, Any] = {}
        if self._watermark is not None:
            # a margin for clocks of instances that differ a little
            query = {"updated_at": {"$gte": self._watermark - timedelta(seconds=30)}}
        docs = await self.store.cross_tenant.collection(COLLECTION).find(query)
        for doc in docs:
            key = (doc["company_id"], doc["_id"])
            known = self._entries.get(key)
            if known is None or known.schedule.rev != int(doc.get("rev") or 1):
                self._plan(Schedule.from_doc(doc))
            updated = doc.get("updated_at")
            if updated is not None and (self._watermark is None or updated > self._watermark):
                self._watermark = updated
        if self._watermark is None:
            self._watermark = _now()

    # -- firing -----------------------------------------------------------------------------

    async def _fire_due(self) -> None:
        while True:
            top = self._peek()
            now = _now()
            if top is None or top > now:
                return
            at, _, _, key, catch_up = heapq.heappop(self._heap)
            entry = self._entries[key]
            entry.next_at = None
            # Deleted, disabled or changed elsewhere since it was planned?
            doc = await self.store.tenant(key[0]).collection(COLLECTION).find_one({"_id": key[1]})
            if doc is None:
                self._entries.pop(key, None)
                continue
            if int(doc.get("rev") or 1) != entry.schedule.rev:
                self._plan(Schedule.from_doc(doc))
                continue
            if not catch_up and at < now - timedelta(seconds=self.misfire_grace):
                self._catch_up(entry, at, now)
                continue
            await self._fire(entry.schedule, at)
            self._push(
                entry, next(fire_times(entry.schedule.cron, entry.schedule.timezone, at), None)
            )

    async def _fire(self, schedule: Schedule, at: datetime) -> None:
        fired_at = _ms(_now())
        at = _ms(at)
        args = schedule_input(schedule.args, at, fired_at)
        ticks = self.store.tenant(schedule.company_id).collection(TICKS)
        try:
            tick_id = await ticks.insert_one(
                {
                    "schedule_id": schedule.id,
                    "fire_at": at,
                    "flow_id": schedule.flow_id,
                    "input": args,
                    "claimed_by": self.instance,
                    "claimed_at": fired_at,
                    "pending": True,
                    "expires_at": at + TICK_TTL,
                }
            )
        except DuplicateKey:
            self.lost_claims += 1  # another instance fired this tick
            return
        self.last_run_at = fired_at
        self.last_fire_at = at
        await self._start(schedule.company_id, tick_id, schedule.id, schedule.flow_id, at, args)
        upcoming = next(fire_times(schedule.cron, schedule.timezone, at), None)
        await (
            self.store.tenant(schedule.company_id)
            .collection(COLLECTION)
            .update_one(
                {
                    "_id": schedule.id,
                    "$or": [{"last_fire_at": None}, {"last_fire_at": {"$lt": at}}],
                },
                {"$set": {"last_fire_at": at, "next_fire_at": upcoming}},
            )
        )

    async def _start(
        self,
        company_id: str,
        tick_id: str,
        schedule_id: str,
        flow_id: str,
        at: datetime,
        args: Any,
    ) -> None:
        """Start the tick's play (idempotent by its key) and record it on the tick."""
        ticks = self.store.tenant(company_id).collection(TICKS)
        try:
            play = await self.plays.start(
                company_id,
                flow_id,
                args,
                trigger=TriggerKind.SCHEDULE,
                source=schedule_id,
                idempotency_key=tick_key(schedule_id, at),
            )
        except PlayLimitReached as e:
            log.warning("schedule_play_deferred", schedule=schedule_id, reason=str(e))
            return  # stays pending: the recovery pass tries again
        except (EngineError, FlowValidationError) as e:
            self.failed += 1
            log.warning("schedule_play_failed", schedule=schedule_id, error=str(e)[:500])
            await ticks.update_one(
                {"_id": tick_id}, {"$set": {"error": str(e)[:500]}, "$unset": {"pending": ""}}
            )
            return
        self.fired += 1
        await ticks.update_one(
            {"_id": tick_id}, {"$set": {"play_id": play.id}, "$unset": {"pending": ""}}
        )

    async def _recover(self) -> None:
        """Claimed ticks whose play was never started (their instance died in between)."""
        cutoff = _now() - _RECOVER_AFTER
        stale = await self.store.cross_tenant.collection(TICKS).find(
            {"pending": True, "claimed_at": {"$lt": cutoff}}, limit=50
        )
        for tick in stale:
            log.info("schedule_tick_recovered", schedule=tick["schedule_id"], tick=tick["_id"])
            await self._start(
                tick["company_id"],
                tick["_id"],
                tick["schedule_id"],
                tick["flow_id"],
                tick["fire_at"],
                tick["input"],
            )


def _count_until(schedule: Schedule, due: datetime, late: datetime) -> int:
    """How many ticks from ``due`` (one) to ``late`` (at most ``_COUNT_MISSED``)."""
    count = 0
    for at in fire_times(schedule.cron, schedule.timezone, due - timedelta(microseconds=1)):
        if at > late or count >= _COUNT_MISSED:
            break
        count += 1
    return max(count, 1)


def _latest_until(schedule: Schedule, due: datetime, late: datetime) -> datetime:
    """The latest tick at or before ``late`` (``due`` itself at least: it is one)."""
    floor = due - timedelta(microseconds=1)
    for window in _LOOK_BACK:
        start = max(floor, late - window)
        latest: datetime | None = None
        for scanned, at in enumerate(fire_times(schedule.cron, schedule.timezone, start)):
            if at > late or scanned >= _LOOK_BACK_TICKS:
                break
            latest = at
        if latest is not None:
            return latest
        if start == floor:
            break
    return due


def _iso(instant: datetime | None) -> str | None:
    if instant is None:
        return None
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
