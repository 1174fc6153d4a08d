"""The app factory: one Quart-Trio app serving REST, WebSocket, admin and health routes."""

from __future__ import annotations

import trio
from quart import Response

from . import (
    _admin,
    _audit_routes,
    _channel_routes,
    _company_routes,
    _component_routes,
    _credential_routes,
    _flow_routes,
    _hardening,
    _identity_routes,
    _instance_routes,
    _kv_routes,
    _metrics,
    _middleware,
    _module_routes,
    _play_routes,
    _retention_routes,
    _schedule_routes,
    _usage_routes,
    _ws,
    ui,
)
from ._admin_auth import AdminGate
from ._api import Routes, RouteSpec
from ._context import Flow8App, app
from ._deps import HttpDeps
from ._openapi import build_openapi
from ._responses import json_response

ROUTE_GROUPS: tuple[Routes, ...] = (
    _identity_routes.routes,
    _company_routes.routes,
    _audit_routes.routes,
    _flow_routes.routes,
    _play_routes.routes,
    _kv_routes.routes,
    _credential_routes.routes,
    _component_routes.routes,
    _module_routes.routes,
    _schedule_routes.routes,
    _channel_routes.routes,
    _retention_routes.routes,
    _usage_routes.routes,
    _instance_routes.routes,
)


def route_specs() -> list[RouteSpec]:
    """Every API route, as declared (drives RBAC, validation and the OpenAPI document)."""
    return [spec for group in ROUTE_GROUPS for spec in group.specs]


def create_app(deps: HttpDeps) -> Flow8App:
    application = Flow8App("flow8", static_folder=None)  # ui serves /static itself
    application.deps = deps
    application.closing = trio.Event()
    application.admin_gate = AdminGate(
        token=deps.settings.admin_token or None,
        ttl_seconds=deps.settings.admin_cookie_ttl_seconds,
        clock=deps.clock,
    )
    _middleware.install(application)
    _hardening.install(application)
    application.register_blueprint(_admin.blueprint)
    application.register_blueprint(_metrics.blueprint)
    for group in ROUTE_GROUPS:
        group.mount(application)
    document = build_openapi(route_specs())

    async def openapi() -> Response:
        return json_response(document)

    application.add_url_rule("/api/openapi.json", view_func=openapi, methods=["GET"])
    application.add_url_rule("/healthz", view_func=_healthz, methods=["GET"])
    _ws.install(application)
    ui.install(application)  # the browser pages and their static files
    return application


async def _healthz() -> Response:
    if not app().deps.ready():
        return json_response({"status": "starting"}, status=503)
    return json_response({"status": "ok"})
