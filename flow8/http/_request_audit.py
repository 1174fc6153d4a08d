"""Every request leaves an audit entry: who, what, outcome, how long, from where.

`begin` runs before the route and `record` after it (both from `_middleware`). Recording only
builds one small entry and hands it to the audit log without waiting; masking and storing
happen in the log's batch writer, off the request's path.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable

from quart import Response, g
from quart.wrappers import Request

from flow8.services.audit import AuditEntry

from ._client_ip import IPNetwork, client_address

_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Probes would drown the trail; they carry no user and change nothing.
_UNAUDITED = frozenset({"/healthz", "/metrics"})


def begin(request: Request) -> None:
    """Start the clock and fix the request's correlation id (the client's, when well formed)."""
    g.started = time.perf_counter()
    sent = request.headers.get("X-Request-Id")
    g.correlation_id = sent if sent and _CORRELATION.match(sent) else secrets.token_hex(8)


def record(
    request: Request,
    response: Response,
    audit: Callable[[AuditEntry], None],
    trusted_proxies: tuple[IPNetwork, ...] = (),
) -> None:
    """Answer with the correlation id and report the request to the audit trail."""
    correlation_id = g.get("correlation_id", "")
    response.headers["X-Request-Id"] = correlation_id
    path = request.path
    if path in _UNAUDITED:
        return
    started = g.get("started")
    duration = (time.perf_counter() - started) * 1000 if started is not None else None
    principal = g.get("principal")
    if principal is None:
        company_id = user_id = user_email = details = None
    else:
        company_id, user = principal.company_id, principal.user
        user_id, user_email = user.id, user.email
        key_id = principal.api_key_id
        # "keyId", not "apiKeyId": the masking rules treat any "api key" field as a secret,
        # and the id (listed by GET /api/auth/api-keys) is what tells requests apart.
        details = {"keyId": key_id} if key_id else None
    audit(
        AuditEntry(
            "http_request",
            company_id=company_id,
            user_id=user_id,
            user_email=user_email,
            ip=client_address(request.remote_addr, request.headers, trusted_proxies),
            user_agent=request.headers.get("User-Agent", "")[:500],
            correlation_id=correlation_id or None,
            method=request.method,
            path=path[:2000],
            status=response.status_code,
            duration_ms=round(duration, 3) if duration is not None else None,
            details=details,
        )
    )
