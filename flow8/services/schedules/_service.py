"""The schedules service: a company's cron schedules of its flows (collection ``schedules``).

Validation names the field at fault (``cron``, ``timezone``, ``misfire``, ``args``, ...).
Every change calls ``on_change(company_id, schedule_id)`` so this instance's scheduler sees
it at once; other instances see it within their re-read interval (``updated_at``).
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from flow8.domain import Play, TriggerKind
from flow8.services.flows import FlowRepository
from flow8.services.plays import PlayService
from flow8.store import Store

from ._models import MISFIRE, Schedule
from ._time import CronError, parse_cron, parse_timezone, truncate_ms, upcoming
from .exceptions import InvalidSchedule, Problem, ScheduleNotFound

COLLECTION = "schedules"
DESCRIPTION_MAX = 500
CRON_MAX = 200
_FIELDS = ("cron", "timezone", "args", "enabled", "misfire", "description")


def utcnow() -> datetime:
    """Now, to the millisecond; ``time.time()`` so that tests on virtual time move it."""
    return truncate_ms(datetime.fromtimestamp(time.time(), UTC))


def schedule_input(args: Mapping[str, Any], scheduled_at: datetime, fired_at: datetime) -> Any:
    """The input of a scheduled play: the schedule's args plus when it was due and fired."""
    return {**args, "scheduledAt": _iso(scheduled_at), "firedAt": _iso(fired_at)}


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tick_key(schedule_id: str, fire_at: datetime) -> str:
    """The idempotency key of the play of one tick."""
    return f"schedule:{schedule_id}:{_iso(fire_at)}"


def _no_change(company_id: str, schedule_id: str) -> None:
    return None


def check(data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """The stored fields of a create (or, ``partial``, an update) body; ``InvalidSchedule``
    listing every problem, each naming its field."""
    problems: list[Problem] = []
    out: dict[str, Any] = {}
    unknown = sorted(set(data) - set(_FIELDS))
    for name in unknown:
        problems.append(Problem(name, "unknown field"))
    if "cron" in data or not partial:
        cron = data.get("cron")
        if not isinstance(cron, str):
            problems.append(Problem("cron", "is required: a cron expression (text)"))
        elif len(cron) > CRON_MAX:
            problems.append(Problem("cron", f"is longer than {CRON_MAX} characters"))
        else:
            try:
                parse_cron(cron)
                out["cron"] = " ".join(cron.split())
            except CronError as e:
                problems.append(Problem("cron", str(e)))
    if "timezone" in data or not partial:
        zone = data.get("timezone", "UTC")
        if not isinstance(zone, str) or not zone:
            problems.append(
                Problem("timezone", "must be an IANA timezone name, e.g. Europe/Berlin")
            )
        else:
            try:
                parse_timezone(zone)
                out["timezone"] = zone
            except CronError as e:
                problems.append(Problem("timezone", str(e)))
    if "args" in data or not partial:
        args = data.get("args")
        if args is None:
            out["args"] = {}
        elif not isinstance(args, dict):
            problems.append(Problem("args", "must be an object (the play's input fields)"))
        elif "scheduledAt" in args or "firedAt" in args:
            problems.append(Problem("args", "scheduledAt and firedAt are set by the scheduler"))
        else:
            out["args"] = args
    if "enabled" in data or not partial:
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            problems.append(Problem("enabled", "must be true or false"))
        else:
            out["enabled"] = enabled
    if "misfire" in data or not partial:
        misfire = data.get("misfire", "skip")
        if misfire not in MISFIRE:
            problems.append(
                Problem("misfire", "must be skip (fire nothing missed) or run_once (one play)")
            )
        else:
            out["misfire"] = misfire
    if "description" in data or not partial:
        description = data.get("description", "")
        if description is None:
            description = ""
        if not isinstance(description, str):
            problems.append(Problem("description", "must be text"))
        elif len(description) > DESCRIPTION_MAX:
            problems.append(Problem("description", f"is longer than {DESCRIPTION_MAX} characters"))
        else:
            out["description"] = description
    if problems:
        raise InvalidSchedule(problems)
    return out


@attrs.define
class ScheduleService:
    """Every method is scoped to ``company_id``: another company's schedule is not found."""

    store: Store
    flows: FlowRepository
    plays: PlayService
    on_change: Callable[[str, str], None] = _no_change

    def _coll(self, company_id: str) -> Any:
        return self.store.tenant(company_id).collection(COLLECTION)

    async def create(self, company_id: str, flow_id: str, data: Mapping[str, Any]) -> Schedule:
        await self.flows.get(company_id, flow_id)  # FlowNotFound (another company's too)
        fields = check(data)
        now = utcnow()
        doc: dict[str, Any] = {
            "flow_id": flow_id,
            **fields,
            "created_at": now,
            "updated_at": now,
            "since": now,
            "rev": 1,
        }
        doc["next_fire_at"] = self._next(fields, now) if fields["enabled"] else None
        doc["_id"] = await self._coll(company_id).insert_one(doc)
        doc["company_id"] = company_id
        self.on_change(company_id, doc["_id"])
        return Schedule.from_doc(doc)

    @staticmethod
    def _next(fields: Mapping[str, Any], after: datetime) -> datetime | None:
        found = upcoming(fields["cron"], fields["timezone"], after, 1)
        return found[0] if found else None

    async def get(self, company_id: str, schedule_id: str) -> Schedule:
        doc = await self._coll(company_id).find_one({"_id": schedule_id})
        if doc is None:
            raise ScheduleNotFound("schedule not found")
        return Schedule.from_doc(doc)

    async def list(self, company_id: str, *, flow_id: str | None = None) -> builtins.list[Schedule]:
        query = {"flow_id": flow_id} if flow_id else {}
        docs = await self._coll(company_id).find(query, sort=[("_id", 1)], limit=10_000)
        return [Schedule.from_doc(d) for d in docs]

    async def update(
        self, company_id: str, schedule_id: str, data: Mapping[str, Any]
    ) -> tuple[Schedule, Schedule]:
        """Replace the fields given; answers (before, after)."""
        before = await self.get(company_id, schedule_id)  # ScheduleNotFound first
        change = check(data, partial=True)
        if not change:
            return before, before
        now = utcnow()
        merged = {**before.summary(), **change}
        update: dict[str, Any] = {**change, "updated_at": now}
        timetable = any(
            change.get(k, getattr(before, k)) != getattr(before, k)
            for k in ("cron", "timezone", "enabled")
        )
        if timetable:
            update["since"] = now  # ticks before the change are not owed
        update["next_fire_at"] = self._next(merged, now) if merged["enabled"] else None
        result = await self._coll(company_id).update_one(
            {"_id": schedule_id}, {"$set": update, "$inc": {"rev": 1}}
        )
        if result.matched_count == 0:
            raise ScheduleNotFound("schedule not found")
        self.on_change(company_id, schedule_id)
        return before, await self.get(company_id, schedule_id)

    async def delete(self, company_id: str, schedule_id: str) -> Schedule:
        gone = await self.get(company_id, schedule_id)
        await self._coll(company_id).delete_one({"_id": schedule_id})
        self.on_change(company_id, schedule_id)
        return gone

    async def delete_for_flow(self, company_id: str, flow_id: str) -> builtins.list[Schedule]:
        """Delete every schedule of a flow that is being deleted (its ticks could only fail
        from now on); answers what was removed, for the audit trail."""
        gone = await self.list(company_id, flow_id=flow_id)
        if gone:
            await self._coll(company_id).delete_many({"flow_id": flow_id})
            for schedule in gone:
                self.on_change(company_id, schedule.id)
        return gone

    async def run_now(self, company_id: str, schedule_id: str) -> Play:
        """Start one play of the schedule now (its args, trigger ``schedule``), outside its
        timetable: no tick is claimed and the next fire is unchanged."""
        schedule = await self.get(company_id, schedule_id)
        now = utcnow()
        return await self.plays.start(
            company_id,
            schedule.flow_id,
            schedule_input(schedule.args, now, now),
            trigger=TriggerKind.SCHEDULE,
            source=schedule.id,
        )
