"""The audit trail of the current company, filtered and paginated (admins and owners)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from flow8.domain import field
from flow8.services.audit import AuditFilter
from flow8.services.identity import Action

from ._api import Req, Routes
from ._context import app
from ._page import PageQuery, make_page, page_of
from .exceptions import NotFound

routes = Routes("audit", "audit")


@attrs.frozen
class AuditQuery:
    page: int = field(default=0, minimum=0, maximum=1_000_000)
    size: int = field(default=25, minimum=1, maximum=100)
    action: str | None = field(default=None, max_length=100)
    user_id: str | None = field(default=None, max_length=64)
    target_type: str | None = field(default=None, max_length=100)
    target_id: str | None = field(default=None, max_length=200)
    method: str | None = field(default=None, max_length=10)
    status: int | None = field(default=None, minimum=100, maximum=599)
    since: datetime | None = None
    until: datetime | None = None


@attrs.frozen
class AuditEntryOut:
    id: str
    action: str
    created_at: datetime
    user_id: str | None = None
    user_email: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    correlation_id: str | None = None
    method: str | None = None
    path: str | None = None
    status: int | None = None
    duration_ms: float | None = None
    target_type: str | None = None
    target_id: str | None = None
    before: Any = None
    after: Any = None
    details: Any = None

    @classmethod
    def of(cls, doc: dict[str, Any]) -> AuditEntryOut:
        names = {a.name for a in attrs.fields(cls)} - {"id"}
        return cls(id=doc["_id"], **{k: v for k, v in doc.items() if k in names})


@routes.route(
    "GET",
    "/api/audit",
    action=Action.AUDIT_READ,
    summary="Audit entries of the current company, newest first",
    query=AuditQuery,
    response=page_of(AuditEntryOut),
)
async def list_audit(req: Req) -> object:
    q: AuditQuery = req.query
    queries = app().deps.audit_queries
    if queries is None:
        raise NotFound("audit store not configured")
    where = AuditFilter(
        q.action, q.user_id, q.target_type, q.target_id, q.method, q.status, q.since, q.until
    )
    rows, total = await queries.page(req.company_id, where, skip=q.page * q.size, limit=q.size)
    items = [AuditEntryOut.of(r) for r in rows]
    return make_page(AuditEntryOut, items, total, PageQuery(q.page, q.size))


@attrs.frozen
class AuditUserOut:
    id: str
    email: str | None = None


@attrs.frozen
class AuditFiltersOut:
    """The values the audit filters offer, as the audit-cache job last saw them."""

    actions: list[str]
    users: list[AuditUserOut]
    target_types: list[str]
    methods: list[str]
    statuses: list[int]
    refreshed_at: datetime


@routes.route(
    "GET",
    "/api/audit/filters",
    action=Action.AUDIT_READ,
    summary="The values behind the audit filters (actions, users, target types, methods, "
    "statuses), refreshed every few minutes",
    response=AuditFiltersOut,
)
async def audit_filters(req: Req) -> AuditFiltersOut:
    cache = app().deps.audit_filters
    if cache is None:
        raise NotFound("audit filters are not available on this instance")
    v = await cache.get(req.company_id)
    return AuditFiltersOut(
        actions=list(v.actions),
        users=[AuditUserOut(uid, email) for uid, email in v.users],
        target_types=list(v.target_types),
        methods=list(v.methods),
        statuses=list(v.statuses),
        refreshed_at=v.refreshed_at,
    )
