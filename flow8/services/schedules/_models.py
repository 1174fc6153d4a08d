"""A stored schedule as the service hands it out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._time import upcoming

MISFIRE = ("skip", "run_once")


@attrs.frozen
class Schedule:
    """``since``: when the timetable (cron, timezone, enabled) last changed; ticks before it
    are not due. ``last_fire_at``: the latest tick claimed (by any instance)."""

    id: str
    company_id: str
    flow_id: str
    cron: str
    timezone: str
    args: Mapping[str, Any]
    enabled: bool
    misfire: str
    description: str
    created_at: datetime
    updated_at: datetime
    since: datetime
    last_fire_at: datetime | None = None
    rev: int = 1

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Schedule:
        return cls(
            id=doc["_id"],
            company_id=doc["company_id"],
            flow_id=doc["flow_id"],
            cron=doc["cron"],
            timezone=doc.get("timezone") or "UTC",
            args=dict(doc.get("args") or {}),
            enabled=bool(doc.get("enabled", True)),
            misfire=doc.get("misfire") or "skip",
            description=doc.get("description") or "",
            created_at=doc["created_at"],
            updated_at=doc.get("updated_at", doc["created_at"]),
            since=doc.get("since", doc["created_at"]),
            last_fire_at=doc.get("last_fire_at"),
            rev=int(doc.get("rev") or 1),
        )

    @property
    def anchor(self) -> datetime:
        """Ticks strictly after this instant are due."""
        if self.last_fire_at is not None and self.last_fire_at > self.since:
            return self.last_fire_at
        return self.since

    def next_fires(self, after: datetime, count: int = 5) -> list[datetime]:
        """The next ``count`` fire instants after ``after`` (whether enabled or not)."""
        return upcoming(self.cron, self.timezone, after, count)

    def summary(self) -> dict[str, Any]:
        """For the audit log."""
        return {
            "flowId": self.flow_id,
            "cron": self.cron,
            "timezone": self.timezone,
            "args": dict(self.args),
            "enabled": self.enabled,
            "misfire": self.misfire,
            "description": self.description,
        }
