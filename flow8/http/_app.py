"""The app factory: one Quart-Trio app serving REST, WebSocket, admin and health routes."""

from __future__ import annotations

import trio
from quart import Response

from . import _admin, _hardening
from ._admin_auth import AdminGate
from ._context import Flow8App, app
from ._deps import HttpDeps
from ._responses import json_response


def create_app(deps: HttpDeps) -> Flow8App:
    application = Flow8App("flow8")
    application.deps = deps
    application.closing = trio.Event()
    application.admin_gate = AdminGate(
        token=deps.settings.admin_token or None,
        ttl_seconds=deps.settings.admin_cookie_ttl_seconds,
        clock=deps.clock,
    )
    _hardening.install(application)
    application.register_blueprint(_admin.blueprint)
    application.add_url_rule("/healthz", view_func=_healthz, methods=["GET"])
    return application


async def _healthz() -> Response:
    if not app().deps.ready():
        return json_response({"status": "starting"}, status=503)
    return json_response({"status": "ok"})
