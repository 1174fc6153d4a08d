"""Every request leaves an audit entry: who, what, outcome, how long, from where.

`_middleware` opens a `Trail` for each HTTP request before Quart sees it; the route wrapper
(`_api._run`) adds the caller once authenticated; `entry` turns the finished trail into the
audit entry, which the audit log masks and stores in its batch writer, off the request's path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flow8.services.audit import AuditEntry
from flow8.services.identity import Principal

# Probes would drown the trail; they carry no user and change nothing.
UNAUDITED = frozenset({"/healthz", "/metrics"})
TRAIL_KEY = "flow8.trail"  # where the trail sits in the ASGI scope (Quart's `request.scope`)


def trail_of(scope: Mapping[str, Any]) -> Trail | None:
    """The trail `_middleware` put in an ASGI scope, if it did."""
    found = scope.get(TRAIL_KEY)
    return found if isinstance(found, Trail) else None


class Trail:
    """What the audit entry of one request needs, gathered as the request passes."""

    __slots__ = ("correlation_id", "ip", "principal", "route", "started", "user_agent")

    def __init__(self, started: float, correlation_id: str, ip: str | None, user_agent: str):
        self.started = started
        self.correlation_id = correlation_id
        self.ip = ip
        self.user_agent = user_agent
        self.principal: Principal | None = None  # set by the route once authenticated
        # The matched route's template (`/api/plays/<playId>`), set as Quart dispatches the
        # request (`Flow8App.dispatch_request`); None when no route matched. For the metrics.
        self.route: str | None = None

    def entry(self, method: str, path: str, status: int, finished: float) -> AuditEntry:
        principal = self.principal
        if principal is None:
            company_id = user_id = user_email = details = None
        else:
            company_id, user = principal.company_id, principal.user
            user_id, user_email = user.id, user.email
            key_id = principal.api_key_id
            # "keyId", not "apiKeyId": the masking rules treat any "api key" field as a
            # secret, and the id (listed by GET /api/auth/api-keys) tells requests apart.
            details = {"keyId": key_id} if key_id else None
        return AuditEntry(
            "http_request",
            company_id=company_id,
            user_id=user_id,
            user_email=user_email,
            ip=self.ip,
            user_agent=self.user_agent,
            correlation_id=self.correlation_id,
            method=method,
            path=path[:2000],
            status=status,
            duration_ms=round((finished - self.started) * 1000, 3),
            details=details,
        )
