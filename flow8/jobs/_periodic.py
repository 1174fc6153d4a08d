"""Periodic jobs: a task child that runs ``work()`` every ``interval`` seconds and keeps the
statistics shown with its node in ``/admin/actors`` (``info``) and at ``GET /api/jobs``.

A run that raises is logged and recorded (``lastError``); the job runs again at its next time
(a store outage should not climb the supervisor's restart intensity). Intervals are on Trio's
clock, so tests on the autojump clock run hours of them in milliseconds; the times shown are
wall-clock UTC.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import trio

import actors
from flow8.logs import get_logger

log = get_logger("flow8.jobs")

# What one run of a job did: counts by kind (e.g. {"plays": 12, "layers": 40}).
Work = Callable[[], Awaitable[Mapping[str, int]]]
# The same counts per company, of the last run (for a job that works on company data).
ByCompany = Callable[[], Mapping[str, Mapping[str, int]]]


def _add(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for kind, n in counts.items():
        into[kind] = into.get(kind, 0) + n


def _iso(at: datetime | None) -> str | None:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z") if at else None


@attrs.define
class JobStats:
    """What a job did last, and when it runs next."""

    name: str
    interval_seconds: float
    runs: int = 0
    failures: int = 0
    running: bool = False
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_duration_ms: float | None = None
    last_removed: dict[str, int] = attrs.field(factory=dict)
    last_error: str | None = None
    next_run_at: datetime | None = None
    total_removed: dict[str, int] = attrs.field(factory=dict)
    # None: the job's counts are not per company (instance caches)
    last_by_company: dict[str, dict[str, int]] | None = None
    total_by_company: dict[str, dict[str, int]] = attrs.field(factory=dict)

    def to_json(self, company_id: str | None = None) -> dict[str, Any]:
        """Every count (the operator's view, ``/admin/actors``) or, given ``company_id``, that
        company's counts only (``GET /api/jobs``: a company never sees another's)."""
        last, total = self.last_removed, self.total_removed
        if company_id is not None and self.last_by_company is not None:
            last = self.last_by_company.get(company_id, {})
            total = self.total_by_company.get(company_id, {})
        return {
            "name": self.name,
            "intervalSeconds": self.interval_seconds,
            "running": self.running,
            "runs": self.runs,
            "failures": self.failures,
            "lastRunAt": _iso(self.last_started_at),
            "lastFinishedAt": _iso(self.last_finished_at),
            "lastDurationMs": self.last_duration_ms,
            "lastRemoved": dict(last),
            "lastError": self.last_error,
            "nextRunAt": _iso(self.next_run_at),
            "totalRemoved": dict(total),
        }


@attrs.define
class PeriodicJob:
    """``work`` every ``interval`` seconds, the first run ``first_delay`` seconds after start."""

    name: str
    work: Work
    interval: float
    first_delay: float = 0.0
    by_company: ByCompany | None = None
    stats: JobStats = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.stats = JobStats(self.name, self.interval)

    async def run_once(self) -> Mapping[str, int]:
        """One run now, recorded in the statistics (raises what ``work`` raised)."""
        s = self.stats
        s.running = True
        s.last_started_at = datetime.now(UTC)
        started = trio.current_time()
        try:
            removed = dict(await self.work())
        except Exception as e:
            s.failures += 1
            s.last_error = f"{type(e).__name__}: {e}"[:500]
            raise
        finally:
            s.running = False
            s.runs += 1
            s.last_finished_at = datetime.now(UTC)
            s.last_duration_ms = round((trio.current_time() - started) * 1000, 3)
        s.last_error = None
        s.last_removed = removed
        _add(s.total_removed, removed)
        if self.by_company is not None:
            s.last_by_company = {c: dict(n) for c, n in self.by_company().items()}
            for company, counts in s.last_by_company.items():
                _add(s.total_by_company.setdefault(company, {}), counts)
        return removed

    def _plan(self, delay: float) -> None:
        self.stats.next_run_at = datetime.now(UTC) + timedelta(seconds=delay)

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._plan(self.first_delay)
        task_status.started()
        await trio.sleep(self.first_delay)
        while True:
            try:
                removed = await self.run_once()
                log.info("job_ran", job=self.name, **removed)
            except Exception as e:  # recorded in the statistics; the next run may succeed
                log.warning("job_failed", job=self.name, error=str(e))
            self._plan(self.interval)
            await trio.sleep(self.interval)

    def child(self) -> actors.ChildSpec:
        """The job as a child of the ``jobs`` supervisor, its statistics as the node's info."""
        return actors.task(self.name, self.serve, shutdown=5.0, info=self.stats.to_json)
