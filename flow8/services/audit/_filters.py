"""The values behind the audit trail's filters (actions, users, target types, methods,
statuses), per company, held in memory: ``GET /api/audit/filters`` answers from here and the
``audit-cache`` job refreshes it every few minutes by one pass over ``audit_logs``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import trio

from flow8.store import Store

# Distinct values kept per field and company: a filter menu, not an index.
MAX_VALUES = 500
_FIELDS = ("action", "target_type", "method", "status")


@attrs.frozen
class AuditFilterValues:
    actions: tuple[str, ...]
    users: tuple[tuple[str, str | None], ...]  # (user id, email)
    target_types: tuple[str, ...]
    methods: tuple[str, ...]
    statuses: tuple[int, ...]
    refreshed_at: datetime


class _Collect:
    def __init__(self) -> None:
        self.values: dict[str, set[Any]] = {f: set() for f in _FIELDS}
        self.users: dict[str, str | None] = {}
        self.read = 0

    def add(self, doc: dict[str, Any]) -> None:
        self.read += 1
        for f in _FIELDS:
            v = doc.get(f)
            if v is not None and len(self.values[f]) < MAX_VALUES:
                self.values[f].add(v)
        uid = doc.get("user_id")
        if uid is not None and (uid in self.users or len(self.users) < MAX_VALUES):
            self.users[uid] = doc.get("user_email") or self.users.get(uid)

    def done(self, at: datetime) -> AuditFilterValues:
        v = self.values
        return AuditFilterValues(
            actions=tuple(sorted(str(x) for x in v["action"])),
            users=tuple(sorted(self.users.items(), key=lambda u: (u[1] or "", u[0]))),
            target_types=tuple(sorted(str(x) for x in v["target_type"])),
            methods=tuple(sorted(str(x) for x in v["method"])),
            statuses=tuple(sorted(int(x) for x in v["status"] if isinstance(x, int))),
            refreshed_at=at,
        )


_PROJECTION = {"action": 1, "target_type": 1, "method": 1, "status": 1, "user_id": 1,
               "user_email": 1, "company_id": 1}  # fmt: skip


@attrs.define
class AuditFilterCache:
    store: Store
    page_size: int = 2000
    _values: dict[str, AuditFilterValues] = attrs.field(init=False, factory=dict)
    # Entries the last refresh read, per company.
    last_by_company: dict[str, dict[str, int]] = attrs.field(init=False, factory=dict)

    async def get(self, company_id: str) -> AuditFilterValues:
        """The company's values as last refreshed (read once now if never refreshed)."""
        found = self._values.get(company_id)
        if found is None:
            found = await self._scan_company(company_id)
            self._values[company_id] = found
        return found

    async def _scan_company(self, company_id: str) -> AuditFilterValues:
        logs = self.store.tenant(company_id).collection("audit_logs")
        collect = _Collect()
        last = ""
        while True:
            page = await logs.find(
                {"_id": {"$gt": last}}, sort=[("_id", 1)], limit=self.page_size,
                projection=_PROJECTION,
            )  # fmt: skip
            for doc in page:
                collect.add(doc)
            if len(page) < self.page_size:
                return collect.done(datetime.now(UTC))
            last = page[-1]["_id"]
            await trio.lowlevel.checkpoint()

    async def refresh(self) -> dict[str, int]:
        """One pass over every company's audit entries; replaces what is held."""
        logs = self.store.cross_tenant.collection("audit_logs")
        per: dict[str, _Collect] = {}
        last, read = "", 0
        while True:
            page = await logs.find(
                {"_id": {"$gt": last}}, sort=[("_id", 1)], limit=self.page_size,
                projection=_PROJECTION,
            )  # fmt: skip
            for doc in page:
                per.setdefault(doc["company_id"], _Collect()).add(doc)
            read += len(page)
            if len(page) < self.page_size:
                break
            last = page[-1]["_id"]
            await trio.lowlevel.checkpoint()  # let requests through between pages
        at = datetime.now(UTC)
        self._values = {cid: c.done(at) for cid, c in per.items()}
        self.last_by_company = {cid: {"entriesRead": c.read} for cid, c in per.items()}
        return {"entriesRead": read, "companies": len(per)}
