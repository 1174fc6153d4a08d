"""API bodies of the schedule routes. The service checks the fields (cron, timezone,
misfire, ...) and names the one at fault; these shapes only say what may be sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import attrs

from flow8.domain import JsonData
from flow8.services.schedules import Schedule

Misfire = Literal["skip", "run_once"]


@attrs.frozen
class ScheduleCreate:
    """`cron`: 5 fields, 6 with seconds first, or `@hourly`, `@daily`, `@weekly`,
    `@monthly`; `timezone`: IANA name (default UTC); `misfire`: `skip` (default) or
    `run_once`; `args`: the play's input fields."""

    cron: str
    timezone: str = "UTC"
    args: dict[str, Any] = attrs.field(factory=dict)
    enabled: bool = True
    misfire: Misfire = "skip"
    description: str = ""


@attrs.frozen
class ScheduleUpdate:
    """Every field optional; a field given replaces the stored one."""

    cron: str | None = None
    timezone: str | None = None
    args: dict[str, Any] | None = None
    enabled: bool | None = None
    misfire: Misfire | None = None
    description: str | None = None


@attrs.frozen
class ScheduleQuery:
    flow_id: str | None = None


@attrs.frozen
class ScheduleOut:
    id: str
    flow_id: str
    cron: str
    timezone: str
    args: JsonData
    enabled: bool
    misfire: str
    description: str
    next_fire_at: datetime | None  # null when disabled
    next_fires: list[datetime]  # the next five fire instants (UTC), whether enabled or not
    last_fire_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: Schedule, now: datetime) -> ScheduleOut:
        upcoming = s.next_fires(now, 5)
        return cls(
            id=s.id,
            flow_id=s.flow_id,
            cron=s.cron,
            timezone=s.timezone,
            args=JsonData(dict(s.args)),
            enabled=s.enabled,
            misfire=s.misfire,
            description=s.description,
            next_fire_at=upcoming[0] if s.enabled and upcoming else None,
            next_fires=upcoming,
            last_fire_at=s.last_fire_at,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


@attrs.frozen
class ScheduleList:
    items: list[ScheduleOut]
