"""Components of the current company. Admins and owners manage them; everyone in the
company may list them. Answers and audit entries name secret config fields, never their
values."""

from __future__ import annotations

from typing import Any

from flow8.services.identity import Action

from ._api import Req, Routes, audit_change
from ._component_models import (
    ComponentCreate,
    ComponentList,
    ComponentOut,
    ComponentQuery,
    ComponentTestOut,
    ComponentUpdate,
    ProviderList,
    ProviderOut,
)
from ._context import component_service

routes = Routes("components", "components")


@routes.route(
    "GET",
    "/api/components/providers",
    action=Action.READ,
    summary="Every component provider: its kind, config JSON Schema and secret fields",
    response=ProviderList,
)
async def list_providers(req: Req) -> ProviderList:
    return ProviderList(
        [
            ProviderOut(
                kind=p["kind"],
                provider=p["provider"],
                description=p["description"],
                config_schema=p["configSchema"],
                secret_fields=p["secretFields"],
                extra=p["extra"],
                builtin_default=p["builtinDefault"],
            )
            for p in component_service().providers()
        ]
    )


@routes.route(
    "GET",
    "/api/components",
    action=Action.READ,
    summary="Components of the current company (secret fields by name only)",
    query=ComponentQuery,
    response=ComponentList,
)
async def list_components(req: Req) -> ComponentList:
    q: ComponentQuery = req.query
    found = await component_service().list(req.company_id, kind=q.kind)
    return ComponentList([ComponentOut.of(c) for c in found])


def _raw(req: Req) -> dict[str, Any]:
    return req.raw_body if isinstance(req.raw_body, dict) else {}


@routes.route(
    "POST",
    "/api/components",
    action=Action.COMPONENT_WRITE,
    summary="Configure a component (secret fields are encrypted and never shown again)",
    body=ComponentCreate,
    response=ComponentOut,
    status=201,
    errors=(409,),
)
async def create_component(req: Req) -> ComponentOut:
    body: ComponentCreate = req.body
    made = await component_service().create(
        req.company_id,
        {
            "name": body.name,
            "kind": body.kind,
            "provider": body.provider,
            "config": _raw(req).get("config") or {},
            "isDefault": body.is_default,
        },
    )
    audit_change(req, "component_created", "component", made.id, after=made.summary())
    return ComponentOut.of(made)


@routes.route(
    "GET",
    "/api/components/{componentId}",
    action=Action.READ,
    summary="A component (secret fields by name only)",
    response=ComponentOut,
    errors=(404,),
)
async def get_component(req: Req, componentId: str) -> ComponentOut:
    return ComponentOut.of(await component_service().get(req.company_id, componentId))


@routes.route(
    "PUT",
    "/api/components/{componentId}",
    action=Action.COMPONENT_WRITE,
    summary="Rename, reconfigure (null removes a field, an absent one keeps its value) or "
    "make a component its kind's default",
    body=ComponentUpdate,
    response=ComponentOut,
    errors=(404, 409),
)
async def update_component(req: Req, componentId: str) -> ComponentOut:
    raw = _raw(req)
    change: dict[str, Any] = {
        k: raw[k] for k in ("name", "config", "isDefault", "kind", "provider") if k in raw
    }
    before, after = await component_service().update(req.company_id, componentId, change)
    if after is not before:
        audit_change(
            req,
            "component_updated",
            "component",
            componentId,
            before=before.summary(),
            after=after.summary(),
        )
    return ComponentOut.of(after)


@routes.route(
    "DELETE",
    "/api/components/{componentId}",
    action=Action.COMPONENT_WRITE,
    summary="Delete a component (steps naming it fail until the flow names another)",
    status=204,
    errors=(404,),
)
async def delete_component(req: Req, componentId: str) -> None:
    gone = await component_service().delete(req.company_id, componentId)
    audit_change(req, "component_deleted", "component", componentId, before=gone.summary())


@routes.route(
    "POST",
    "/api/components/{componentId}/test",
    action=Action.COMPONENT_WRITE,
    summary="Check that the component can reach what it is configured for (a real "
    "connection): ok, or what failed",
    response=ComponentTestOut,
    errors=(404,),
)
async def test_component(req: Req, componentId: str) -> ComponentTestOut:
    result = await component_service().test(req.company_id, componentId)
    audit_change(req, "component_tested", "component", componentId, details={"ok": result["ok"]})
    return ComponentTestOut(result["ok"], result["message"], result["durationMs"])
