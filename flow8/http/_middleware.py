"""The middleware every HTTP request passes, as one ASGI layer around the Quart app.

Before Quart sees the request: the clock and correlation id (`_request_audit`), the body limit
(413 before anything reads the body, `_hardening`), CORS preflights (`_cors`). On the first
message of every answer, whichever part of Quart produced it (route, error handler, routing
404): CORS headers, security headers, `X-Request-Id`, and the request's audit entry (a request
whose client hangs up before any answer is audited too, as 499), and the request's metrics
(by the route template `Flow8App.dispatch_request` noted). WebSockets have their own
handshake checks in `_ws`.

While a request is handled, its correlation id (and the trace id of a valid W3C
`traceparent`) is on every log line and on the plays it starts (`flow8.services.tracing`); a
WebSocket gets the same for its whole connection.

Every HTTP/1 request's body is watched on its way to the app (`_Inflow`), so that a request
refused before its body was read never leaves its keep-alive connection wedged; see `_Inflow`
for what used to happen and why.

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

import trio
from werkzeug.datastructures import Headers

from flow8.services.tracing import correlation_id, enter_request, leave_request

from ._client_ip import FORWARDED_FOR, client_address
from ._context import Flow8App
from ._cors import Cors, Pair
from ._hardening import Hardening
from ._request_audit import TRAIL_KEY, UNAUDITED, Trail
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
_CLOSE = (b"connection", b"close")
_HTTP1 = frozenset({"1.0", "1.1"})
# How long an answer waits for the rest of a request body its route did not read (the client
# is usually still sending it) before it gives up on the connection instead. A client slower
# than this holds a request no longer than Quart's BODY_TIMEOUT lets it hold one anyway.
DRAIN_SECONDS = 5.0


class _Inflow:
    """An HTTP/1 request's body on its way to the app, and the end of its answer.

    What wedged keep-alive connections (Hypercorn 0.18, quart-trio 0.12): Hypercorn does its
    per-connection bookkeeping inside the `send` of the answer's last message, in the app's
    task. `H11Protocol._maybe_recycle` first pushes `http.disconnect` to the app's receive
    channel (`_close_stream`), then either starts the next keep-alive cycle and re-arms the
    idle timer (`send(Updated(idle=True))`), or, when the request body has not all arrived
    (`their_state` is still SEND_BODY: a route refused the request before reading it and the
    body was still on the wire), closes the connection (`send(Closed())` -> `send_eof()`,
    `aclose()`). Meanwhile quart-trio's receiver task (`TrioASGIHTTPConnection.handle_messages`)
    takes that `http.disconnect` and cancels the nursery holding the task that is still inside
    `send`; the next checkpoint there raises Cancelled. In the close case that is `send_eof`'s:
    the socket is neither closed nor recycled, the rest of the body arrives, h11 answers the next
    request with PAUSED (`their_state` DONE, data waiting) and Hypercorn waits on `can_read`
    forever: the client never gets an answer, and once it gives up the server's socket sits in
    CLOSE-WAIT. Whether the receiver runs first is Trio's coin toss (each batch of runnable
    tasks is reversed at random), hence "about one run in two". In the recycle case it is the
    idle timer's lock: measured, 199 of 200 keep-alive requests left their connection without
    a keep-alive timeout.

    So (1) `http.disconnect` reaches the app only once the last message's `send` has returned
    (`finish`); shielding that send in a CancelScope would do the same but costs ~5 us a
    request, this ~0.5; and (2) an answer that starts before the body is all in first waits
    (`settle`) for the app's receiver to take the rest, up to the body limit and
    DRAIN_SECONDS, so the connection stays usable; past either, the answer says
    `Connection: close` and Hypercorn closes the connection after it, as the client expects.
    """

    __slots__ = ("_arrived", "_budget", "_finished", "_receive", "complete", "finishing", "over")

    def __init__(self, receive: Receive, *, complete: bool, limit: int) -> None:
        self._receive = receive
        self._budget = limit  # body bytes still worth waiting for
        # A request without Content-Length or Transfer-Encoding has no body: h11 ends it with
        # its headers, and Hypercorn queues that end at once, whether or not the app reads it.
        self.complete = complete
        self.over = False  # more than the body limit: not worth waiting for
        self.finishing = False  # the answer's last message is being sent
        self._arrived: trio.Event | None = None
        self._finished: trio.Event | None = None

    async def receive(self) -> Message:
        """`receive` as the app sees it."""
        message = await self._receive()
        if message["type"] == "http.request":
            if message.get("more_body", False):
                self._budget -= len(message.get("body", b""))
                if self._budget < 0:
                    self.over = True
                    if self._arrived is not None:
                        self._arrived.set()
                return message
            self.complete = True
        else:  # http.disconnect: nothing more will come
            self.complete = True
            if self.finishing:
                self._finished = trio.Event()
                await self._finished.wait()
        if self._arrived is not None:
            self._arrived.set()
        return message

    async def settle(self) -> bool:
        """Wait for the rest of the body (the app's receiver takes it); True once it is in."""
        if not self.over:
            self._arrived = trio.Event()
            with trio.move_on_after(DRAIN_SECONDS):
                await self._arrived.wait()
        return self.complete

    async def finish(self, send: Send, message: Message) -> None:
        """Send the answer's last message with `http.disconnect` held back meanwhile."""
        self.finishing = True
        try:
            await send(message)
        finally:
            self.finishing = False
            if self._finished is not None:
                self._finished.set()


class Middleware:
    """Wraps `app.asgi_app` (so `app` stays the Quart instance servers and tests call)."""

    def __init__(self, inner: ASGIApp, application: Flow8App) -> None:
        settings = application.deps.settings
        self.inner = inner
        self.hardening = Hardening.of(settings)
        self.cors = Cors.of(settings.allowed_origins)
        self.trusted = settings.trusted_proxies
        self.audit = application.deps.audit
        metrics = application.deps.metrics
        self.meter = metrics.requests if metrics is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await self._websocket(scope, receive, send)
            else:
                await self.inner(scope, receive, send)
            return
        # One pass over the request headers for everything this layer reads.
        sent_id = length = origin = preflight = user_agent = traceparent = None
        chunked = False
        forwarded: list[str] = []
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                sent_id = value
            elif name == b"traceparent":
                traceparent = value
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
            elif name == b"transfer-encoding":
                chunked = True
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
        inflow = (
            _Inflow(
                receive,
                complete=not chunked and (length is None or length == b"0"),
                limit=self.hardening.limit,
            )
            if scope["http_version"] in _HTTP1
            else None  # HTTP/2 ends a stream alone, and refuses a Connection header
        )

        def audit(status: int) -> None:
            now = time.perf_counter()
            if self.meter is not None:
                self.meter.observe(trail.route, method, status, now - trail.started)
            if path not in UNAUDITED:
                self.audit(trail.entry(method, path, status, now))

        async def answer(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = True
                # Started before the body was all in: wait for it, or close after this answer.
                close = inflow is not None and not inflow.complete and not await inflow.settle()
                message["headers"] = self._headers(message["headers"], trail, origin, api, close)
                # Recorded before the answer leaves, so whoever got the answer can find the
                # entry once the audit log has written what it holds.
                audit(message["status"])
            elif inflow is not None and not message.get("more_body", False):
                await inflow.finish(send, message)
                return
            await send(message)

        # This request's task (Hypercorn starts one per request) and those it starts log its
        # id; left in `finally`, so nothing outlives the request in a task that serves more.
        entered = enter_request(trail.correlation_id, traceparent)
        try:
            too_large = self.hardening.too_large(length)
            if too_large is not None:
                if inflow is not None:
                    inflow.over = True
                await _alone(inflow, _error(answer, too_large))
            elif method == "OPTIONS" and preflight is not None:
                await _alone(inflow, _empty(answer, 204, self.cors.preflight(origin or b"")))
            else:
                await self.inner(scope, receive if inflow is None else inflow.receive, answer)
        except Exception:
            if not answered:
                answered = True
                audit(500)  # the app itself failed before answering
            raise
        finally:
            leave_request(entered)
            if not answered:
                # Quart answers every error itself (500 included), so the app returns without
                # answering only when the client hung up first and quart-trio cancelled the
                # route: recorded as nginx's 499, "client closed request".
                audit(CLIENT_CLOSED)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket (`/ws`) logs one correlation id for its whole connection: the
        handshake's `X-Request-Id` when well formed, else a fresh one."""
        sent_id = traceparent = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                sent_id = value
            elif name == b"traceparent":
                traceparent = value
        entered = enter_request(correlation_id(sent_id), traceparent)
        try:
            await self.inner(scope, receive, send)
        finally:
            leave_request(entered)

    def _client_ip(self, scope: Scope, forwarded: list[str]) -> str | None:
        client = scope.get("client")
        peer = client[0] if client else "<local>"
        if not self.trusted or not forwarded:
            return peer  # no proxy is trusted (the default), or none spoke: the socket peer
        return client_address(peer, Headers([(FORWARDED_FOR, v) for v in forwarded]), self.trusted)

    def _headers(
        self, own: list[Pair], trail: Trail, origin: bytes | None, api: bool, close: bool
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
        if close:
            headers.append(_CLOSE)
        return headers


async def _alone(inflow: _Inflow | None, answering: Awaitable[None]) -> None:
    """Give this layer's own answer. With a body on its way and no app to take it, a task
    takes it meanwhile: Hypercorn's queue to the app holds 10 messages, and once it is full
    the answer's last `send` (which queues `http.disconnect`) would wait forever."""
    if inflow is None or inflow.complete:
        await answering
        return
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_discard, inflow)
        await answering
        nursery.cancel_scope.cancel()


async def _discard(inflow: _Inflow) -> None:
    while (await inflow.receive())["type"] == "http.request":
        pass


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
