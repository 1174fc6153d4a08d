"""KV entries of the current company, per scope (global, flow, flow group)."""

from __future__ import annotations

from flow8.domain import IS_REQUIRED
from flow8.services.identity import Action

from ._api import Req, Routes, audit_change
from ._context import kv_service
from ._engine_models import KvEntryOut, KvQuery, KvScopeQuery, KvSet
from ._page import PageQuery, page_of, slice_page
from .exceptions import NotFound, ValidationFailed

routes = Routes("kv", "kv")


def _scope_args(scope: str, scope_key: str | None) -> dict[str, str | None]:
    """Service arguments for a scope. A flow or group scope without its key names no scope
    at all: refused (422) by every route alike, so that a read cannot answer "empty" for
    what a write refuses."""
    if scope == "global":
        return {"scope": scope}
    if not scope_key:
        problem = {"field": "scopeKey", "message": f"{IS_REQUIRED} for scope {scope}"}
        raise ValidationFailed([problem])
    if scope == "flow":
        return {"scope": scope, "flow_id": scope_key}
    return {"scope": scope, "group": scope_key}


@routes.route(
    "GET",
    "/api/kv",
    action=Action.READ,
    summary="Live KV entries of one scope, by key",
    query=KvQuery,
    response=page_of(KvEntryOut),
)
async def list_kv(req: Req) -> object:
    q: KvQuery = req.query
    scope = _scope_args(q.scope, q.scope_key)
    rows = await kv_service().list(req.company_id, **scope)  # type: ignore[arg-type]
    items = [
        KvEntryOut(
            key=r["key"],
            value=r["value"],
            scope=q.scope,
            scope_key=q.scope_key,
            expires_at=r["expiresAt"],
            secret=r["secret"],
        )
        for r in rows
    ]
    return slice_page(KvEntryOut, items, PageQuery(q.page, q.size))


@routes.route(
    "POST",
    "/api/kv",
    action=Action.KV_WRITE,
    summary="Set a KV entry (create or replace)",
    body=KvSet,
    response=KvEntryOut,
)
async def set_kv(req: Req) -> KvEntryOut:
    body: KvSet = req.body
    scope = _scope_args(body.scope, body.scope_key)
    entry = await kv_service().set(
        req.company_id,
        body.key,
        body.value,
        ttl_seconds=body.ttl_seconds,
        secret=body.secret,
        **scope,  # type: ignore[arg-type]
    )
    # KV values are secret at rest: the trail records which entry changed, not its value.
    details = {"scope": body.scope, "scopeKey": body.scope_key, "secret": body.secret}
    audit_change(req, "kv_set", "kv", body.key, details=details)
    return KvEntryOut(
        key=body.key,
        value=entry["value"],
        scope=body.scope,
        scope_key=body.scope_key,
        expires_at=entry["expiresAt"],
        secret=entry["secret"],
    )


@routes.route(
    "DELETE",
    "/api/kv/{key}",
    action=Action.KV_WRITE,
    summary="Delete a KV entry",
    query=KvScopeQuery,
    status=204,
    errors=(404,),
)
async def delete_kv(req: Req, key: str) -> None:
    q: KvScopeQuery = req.query
    scope = _scope_args(q.scope, q.scope_key)
    deleted = await kv_service().delete(req.company_id, key, **scope)  # type: ignore[arg-type]
    if not deleted:
        raise NotFound("KV entry not found", code="KV_NOT_FOUND")
    audit_change(req, "kv_deleted", "kv", key, details={"scope": q.scope, "scopeKey": q.scope_key})
