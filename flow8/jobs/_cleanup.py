"""The periodic cleanup jobs under ``jobs``: ``retention`` (every 2 minutes by default),
``audit-cache`` (every 3 minutes) and ``ttl-cache`` (every minute)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

import actors
from flow8.services.audit import AuditEntry, AuditFilterCache
from flow8.services.retention import RetentionPolicies
from flow8.store import Store

from ._periodic import PeriodicJob
from ._retention import Retention

AUDIT_CACHE_SECONDS = 180.0
TTL_CACHE_SECONDS = 60.0


@attrs.define
class CleanupJobs:
    retention: Retention
    jobs: tuple[PeriodicJob, ...]

    def children(self) -> list[actors.ChildSpec]:
        return [job.child() for job in self.jobs]

    def stats(self, company_id: str | None = None) -> list[dict[str, Any]]:
        """Each job's statistics: every count, or with ``company_id`` that company's only
        (as ``GET /api/jobs`` shows them)."""
        return [job.stats.to_json(company_id) for job in self.jobs]

    def job(self, name: str) -> PeriodicJob:
        return next(j for j in self.jobs if j.name == name)


def cleanup_jobs(
    store: Store,
    policies: RetentionPolicies,
    audit: Callable[[AuditEntry], None],
    filters: AuditFilterCache,
    evictors: Sequence[Callable[[], int]] = (),
    *,
    retention_interval: float = 120.0,
    batch_size: int = 500,
    audit_cache_interval: float = AUDIT_CACHE_SECONDS,
    ttl_cache_interval: float = TTL_CACHE_SECONDS,
) -> CleanupJobs:
    """The three jobs; ``evictors`` are the in-memory caches' ``evict_expired`` methods."""
    retention = Retention(store, policies, audit, batch_size=batch_size)

    async def evict() -> dict[str, int]:
        return {"entries": sum(e() for e in evictors)}

    return CleanupJobs(
        retention,
        (
            PeriodicJob(
                "retention",
                retention.run_once,
                retention_interval,
                retention_interval,
                by_company=lambda: retention.last_by_company,
            ),
            PeriodicJob(
                "audit-cache",
                filters.refresh,
                audit_cache_interval,
                by_company=lambda: filters.last_by_company,
            ),
            PeriodicJob("ttl-cache", evict, ttl_cache_interval, ttl_cache_interval),
        ),
    )
