"""Audit entries in the store: tenant entries in `audit_logs`, company-less ones (failed logins
for unknown accounts) in the system collection `system_audit_logs`; and the queries over them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from flow8.store import Store

SYSTEM_COLLECTION = "system_audit_logs"


@attrs.frozen
class StoreAuditSink:
    store: Store

    async def write(self, company_id: str | None, docs: Sequence[dict[str, Any]]) -> None:
        if company_id is None:
            await self.store.system.collection(SYSTEM_COLLECTION).insert_many(docs)
        else:
            await self.store.tenant(company_id).collection("audit_logs").insert_many(docs)


@attrs.frozen
class AuditFilter:
    action: str | None = None
    user_id: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    method: str | None = None
    status: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def to_query(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        for name in ("action", "user_id", "target_type", "target_id", "method", "status"):
            value = getattr(self, name)
            if value is not None:
                query[name] = value
        created: dict[str, Any] = {}
        if self.since is not None:
            created["$gte"] = self.since
        if self.until is not None:
            created["$lt"] = self.until
        if created:
            query["created_at"] = created
        return query


@attrs.frozen
class AuditQueries:
    store: Store

    async def page(
        self, company_id: str, where: AuditFilter, *, skip: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        logs = self.store.tenant(company_id).collection("audit_logs")
        query = where.to_query()
        order = [("created_at", -1), ("_id", -1)]
        rows = await logs.find(query, sort=order, skip=skip, limit=limit)
        return rows, await logs.count(query)
