"""The middleware every HTTP request passes, as one ASGI layer around the Quart app.

Before Quart sees the request: the clock and correlation id (`_request_audit`), the body limit
(413 before anything reads the body, `_hardening`), CORS preflights (`_cors`). On the first
message of every answer, whichever part of Quart produced it (route, error handler, routing
404): CORS headers, security headers, `X-Request-Id`, and the request's audit entry (a request
whose client hangs up before any answer is audited too, as 499). WebSockets have their own
handshake checks in `_ws`.

Why ASGI and not Quart's before/after-request hooks: this sits on every request's path, and
the hooks cost a context lookup and an `ensure_async` each, plus werkzeug header objects whose
every lookup lower-cases and scans all headers. Here the request headers are the raw ASGI byte
pairs, read in one pass, and the answer's headers are extended with precomputed byte pairs
(`scripts/bench/api.py` measured the hooks at about 18 us of the `get` path's CPU).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from werkzeug.datastructures import Headers

from ._client_ip import FORWARDED_FOR, client_address
from ._context import Flow8App
from ._cors import Cors, Pair
from ._hardening import Hardening
from ._request_audit import TRAIL_KEY, UNAUDITED, Trail, correlation_id
from ._responses import json_bytes
from .exceptions import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUEST_ID = b"x-request-id"
CLIENT_CLOSED = 499
# Headers this layer owns on every answer; a value the app set for one of them is replaced.
_OURS = frozenset({_REQUEST_ID})


class Middleware:
    """Wraps `app.asgi_app` (so `app` stays the Quart instance servers and tests call)."""

    def __init__(self, inner: ASGIApp, application: Flow8App) -> None:
        settings = application.deps.settings
        self.inner = inner
        self.hardening = Hardening.of(settings)
        self.cors = Cors.of(settings.allowed_origins)
        self.trusted = settings.trusted_proxies
        self.audit = application.deps.audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        # One pass over the request headers for everything this layer reads.
        sent_id = length = origin = preflight = user_agent = None
        forwarded: list[str] = []
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                sent_id = value
            elif name == b"content-length":
                length = value
            elif name == b"origin":
                origin = value
            elif name == b"user-agent":
                user_agent = value
            elif name == b"access-control-request-method":
                preflight = value
            elif name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
        trail = Trail(
            time.perf_counter(),
            correlation_id(sent_id),
            self._client_ip(scope, forwarded),
            user_agent.decode("latin-1")[:500] if user_agent else "",
        )
        scope[TRAIL_KEY] = trail
        path: str = scope["path"]
        api = path.startswith("/api/")
        method: str = scope["method"]
        answered = False

        def audit(status: int) -> None:
            if path not in UNAUDITED:
                self.audit(trail.entry(method, path, status, time.perf_counter()))

        async def answer(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = True
                message["headers"] = self._headers(message["headers"], trail, origin, api)
                # Recorded before the answer leaves, so whoever got the answer can find the
                # entry once the audit log has written what it holds.
                audit(message["status"])
            await send(message)

        try:
            too_large = self.hardening.too_large(length)
            if too_large is not None:
                await _error(answer, too_large)
            elif method == "OPTIONS" and preflight is not None:
                await _empty(answer, 204, self.cors.preflight(origin or b""))
            else:
                await self.inner(scope, receive, answer)
        except Exception:
            if not answered:
                answered = True
                audit(500)  # the app itself failed before answering
            raise
        finally:
            if not answered:
                # Quart answers every error itself (500 included), so the app returns without
                # answering only when the client hung up first and quart-trio cancelled the
                # route: recorded as nginx's 499, "client closed request".
                audit(CLIENT_CLOSED)

    def _client_ip(self, scope: Scope, forwarded: list[str]) -> str | None:
        client = scope.get("client")
        peer = client[0] if client else "<local>"
        if not self.trusted or not forwarded:
            return peer  # no proxy is trusted (the default), or none spoke: the socket peer
        return client_address(peer, Headers([(FORWARDED_FOR, v) for v in forwarded]), self.trusted)

    def _headers(
        self, own: list[Pair], trail: Trail, origin: bytes | None, api: bool
    ) -> list[Pair]:
        # Names arrive lower-cased (Quart's `encode_headers`; ASGI asks it of every sender).
        # One pass over the answer's own headers: drop what this layer owns, note the rest.
        cors = self.cors.headers(origin)
        ours = _OURS.union(name for name, _ in cors) if cors else _OURS
        headers: list[Pair] = []
        present: set[bytes] = set()
        html = False
        for pair in own:
            name = pair[0]
            if name in ours:
                continue
            headers.append(pair)
            present.add(name)
            if name == b"content-type":
                html = pair[1].split(b";", 1)[0].strip().lower() == b"text/html"
        # Security headers are defaults: an answer that set its own (an HTML page's CSP) keeps it.
        for pair in self.hardening.headers(api=api, html=html):
            if pair[0] not in present:
                headers.append(pair)
        headers.extend(cors)
        headers.append((_REQUEST_ID, trail.correlation_id.encode("ascii")))
        return headers


async def _empty(send: Send, status: int, headers: list[Pair]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _error(send: Send, error: ApiError) -> None:
    body = json_bytes(error.body())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def install(application: Flow8App) -> None:
    # Quart types its ASGI callables with hypercorn's TypedDicts; this layer reads plain mappings.
    inner: ASGIApp = application.asgi_app  # type: ignore[assignment]
    application.asgi_app = Middleware(inner, application)  # type: ignore[method-assign,assignment]
