"""Every request leaves an audit entry: who, what, outcome, how long, from where."""

from __future__ import annotations

import re
import secrets
import time

from quart import Response, g, request

from flow8.services.audit import AuditEntry

from ._context import Flow8App

_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Probes would drown the trail; they carry no user and change nothing.
_UNAUDITED = frozenset({"/healthz", "/metrics"})


def install(app: Flow8App) -> None:
    @app.before_request
    async def _start() -> None:
        g.started = time.perf_counter()
        sent = request.headers.get("X-Request-Id", "")
        g.correlation_id = sent if _CORRELATION.match(sent) else secrets.token_hex(8)

    @app.after_request
    async def _record(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("correlation_id", "")
        if request.path in _UNAUDITED:
            return response
        started = g.get("started")
        duration = (time.perf_counter() - started) * 1000 if started else None
        principal = g.get("principal")
        app.deps.audit(
            AuditEntry(
                "http_request",
                company_id=principal.company_id if principal else None,
                user_id=principal.user.id if principal else None,
                user_email=principal.user.email if principal else None,
                ip=request.remote_addr,
                user_agent=request.headers.get("User-Agent", "")[:500],
                correlation_id=g.get("correlation_id"),
                method=request.method,
                path=request.path[:2000],
                status=response.status_code,
                duration_ms=round(duration, 3) if duration is not None else None,
                details={"apiKeyId": principal.api_key_id}
                if principal and principal.api_key_id
                else None,
            )
        )
        return response
