"""The middleware every HTTP request passes, as one before- and one after-request hook.

Before the route: correlation id and clock (`_request_audit`), body limit (`_hardening`), CORS
preflight (`_cors`). After it, on every answer including errors: CORS headers, security
headers, `X-Request-Id` and the request's audit entry. The concerns stay in their modules; they
are called from one hook each way because Quart pays a context lookup and an `ensure_async`
per hook per request, and this stack sits on every request's path. WebSockets have their own
handshake checks in `_ws`.
"""

from __future__ import annotations

from quart import Response
from quart.globals import request_ctx

from . import _request_audit
from ._context import Flow8App
from ._cors import Cors
from ._hardening import Hardening


def install(app: Flow8App) -> None:
    hardening = Hardening.of(app.deps.settings)
    cors = Cors(frozenset(app.deps.settings.allowed_origins))
    audit = app.deps.audit
    trusted_proxies = app.deps.settings.trusted_proxies

    async def _before() -> Response | None:
        request = request_ctx.request  # one context lookup for the whole hook
        _request_audit.begin(request)
        hardening.check_body(request)
        return cors.preflight(request)

    async def _after(response: Response) -> Response:
        request = request_ctx.request
        cors.add_headers(request, response)
        hardening.add_headers(request, response)
        _request_audit.record(request, response, audit, trusted_proxies)
        return response

    app.before_request(_before)
    app.after_request(_after)
