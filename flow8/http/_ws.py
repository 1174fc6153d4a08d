"""`/ws`: live play and layer events for a play, a flow, or the whole company.

Protocol (JSON text frames). Client to server::

    {"action": "subscribe", "playId": "..."}      one play
    {"action": "subscribe", "flowId": "..."}      every play of a flow
    {"action": "subscribe", "company": true}      every play of the company
    {"action": "unsubscribe", "subscription": "s1"}

Server to client: `{"type": "subscribed", "subscription": "s1", ...}`, then each event as
`{"type": "play:layer:completed", "subscription": "s1", "playId": ..., "data": {...}}`, and
`{"type": "error", "error": CODE, "message": ...}` for a bad request.

Authenticated like the REST API (session cookie or `Authorization: Bearer <API key>`); a
browser's Origin must be this server's own or a configured allowed origin. A refused
connection gets one error frame and close code 4000 + HTTP status (4401, 4403). Each connection has
a bounded outgoing queue: a client that stops reading is disconnected (close code 1013) rather
than buffering without bound. Server shutdown closes every socket at once (1001).

Plays running in another process. The event bus is in-process, and with ``flow8 serve
--workers N`` (or several instances sharing one store) a play runs in whichever process
started or resumed it, not necessarily the one holding the socket. So each subscription also
follows the store (``PlayService.watch`` / ``watch_plays``, see
``flow8.services.play_watch``): every ``POLL_SECONDS`` (0.5 s) it reads what changed of the
plays it covers that this process does not run, and sends the same frames the bus would (same
``type`` and ``data``). No broker, no extra writes: the engine's own play and layer documents
are read, by indexed queries. An event is sent once, whichever source saw it first (keyed by
layer and state, play and state); a play running here is left to the bus.

* A play subscription gets every play and layer event but ``play:log`` (console lines are
  only in the step's output). A step whose running state is not recorded (an idempotent one)
  shows no ``play:layer:started``, only its end. Its follower stops once the play's end
  was sent.
* A flow or company subscription gets the play events (``play:started``, ``play:waiting``,
  ``play:completed``, ``play:failed``) of other processes' plays, not their layer events:
  reading every running play's layers twice a second does not scale to a company. Each look
  reads up to 500 plays created since the last one (at a faster start rate some are missed;
  by ``created_at``, so hosts whose clocks differ by over 10 s miss each other's) and
  follows up to 200 unfinished ones.

Events from before the subscription are not replayed, from the bus or the store.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import attrs
import trio
from quart import websocket

from flow8.logs import get_logger
from flow8.services.audit import AuditEntry
from flow8.services.exceptions import StoreError
from flow8.services.flows import FlowNotFound
from flow8.services.identity import Action, IdentityError, Principal
from flow8.services.play_watch import POLL_SECONDS, EventWatch
from flow8.services.plays import PlayNotFound
from flow8.services.storage import invalid_text_in

from ._api import authenticate, client_ip
from ._context import app
from ._errors_map import from_identity, from_store
from .exceptions import ApiError, Forbidden

MAX_SUBSCRIPTIONS = 32
log = get_logger("flow8.ws")


def _origin_allowed() -> bool:
    origin = websocket.headers.get("Origin")
    if origin is None:
        return True  # not a browser: no ambient cookie to abuse, credentials are explicit
    parts = urlsplit(origin)
    own = {f"http://{websocket.host}", f"https://{websocket.host}"}
    allowed = app().deps.settings.allowed_origins
    return f"{parts.scheme}://{parts.netloc}" in own or origin in allowed


@attrs.define
class _Connection:
    principal: Principal
    out: trio.MemorySendChannel[str]
    nursery: trio.Nursery
    subscriptions: dict[str, trio.CancelScope] = attrs.field(factory=dict)
    counter: int = 0
    too_slow: bool = False

    def push(self, message: dict[str, Any]) -> None:
        try:
            self.out.send_nowait(json.dumps(message, separators=(",", ":"), default=str))
        except trio.WouldBlock:
            # The client is not reading: end the connection instead of buffering forever.
            self.too_slow = True
            self.nursery.cancel_scope.cancel()

    def error(self, code: str, message: str) -> None:
        self.push({"type": "error", "error": code, "message": message})

    async def handle(self, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            self.error("INVALID_JSON", "frames must be JSON objects")
            return
        if not isinstance(msg, dict):
            self.error("INVALID_JSON", "frames must be JSON objects")
            return
        bad_text = invalid_text_in(msg)
        if bad_text is not None:
            self.error("VALIDATION_FAILED", f"{bad_text[0] or '(frame)'}: {bad_text[1]}")
            return
        action = msg.get("action")
        if action == "unsubscribe":
            scope = self.subscriptions.pop(str(msg.get("subscription")), None)
            if scope is None:
                self.error("SUBSCRIPTION_NOT_FOUND", "no such subscription")
                return
            scope.cancel()
            self.push({"type": "unsubscribed", "subscription": msg.get("subscription")})
            return
        if action != "subscribe":
            self.error("UNKNOWN_ACTION", "action must be subscribe or unsubscribe")
            return
        await self._subscribe(msg)

    def _store_failed(self, error: StoreError) -> None:
        """A subscription checked against a store that failed: the client hears that the
        server could not check (and may retry), never that its play or flow is gone."""
        api_error = from_store(error)
        if api_error.status >= 500:
            log.warning("ws.subscribe_failed", error=type(error).__name__)
        self.error(api_error.code, api_error.message)

    async def _subscribe(self, msg: dict[str, Any]) -> None:
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            self.error("TOO_MANY_SUBSCRIPTIONS", f"at most {MAX_SUBSCRIPTIONS} per connection")
            return
        company = self.principal.company_id
        assert company is not None
        deps = app().deps
        play_id, flow_id = msg.get("playId"), msg.get("flowId")
        on: tuple[str | None, str | None]  # the (play, flow) subscribed to
        watch: EventWatch | None = None  # the store, for plays other processes run
        if play_id is not None:
            if not isinstance(play_id, str) or deps.plays is None:
                self.error("VALIDATION_FAILED", "playId must be a string")
                return
            try:
                watch = await deps.plays.watch(company, play_id)
            except PlayNotFound:
                self.error("PLAY_NOT_FOUND", "play not found")
                return
            except StoreError as e:
                self._store_failed(e)
                return
            on = (play_id, None)  # one play (a flowId beside it is not a filter)
        elif flow_id is not None:
            if not isinstance(flow_id, str) or deps.flows is None:
                self.error("VALIDATION_FAILED", "flowId must be a string")
                return
            try:
                await deps.flows.get(company, flow_id)
                if deps.plays is not None:
                    watch = await deps.plays.watch_plays(company, flow_id)
            except FlowNotFound:
                self.error("FLOW_NOT_FOUND", "flow not found")
                return
            except StoreError as e:
                self._store_failed(e)
                return
            on = (None, flow_id)  # every play of the flow
        elif msg.get("company") is True:
            if deps.plays is not None:
                try:
                    watch = await deps.plays.watch_plays(company)
                except StoreError as e:
                    self._store_failed(e)
                    return
            on = (None, None)  # every play of the company
        else:
            self.error("VALIDATION_FAILED", "give playId, flowId or company: true")
            return
        self.counter += 1
        sub_id = f"s{self.counter}"
        scope = trio.CancelScope()
        self.subscriptions[sub_id] = scope
        await self.nursery.start(self._pump, sub_id, *on, scope, watch)
        self.push(
            {"type": "subscribed", "subscription": sub_id, "playId": play_id, "flowId": flow_id}
        )

    async def _pump(
        self,
        sub_id: str,
        play_id: str | None,
        flow_id: str | None,
        scope: trio.CancelScope,
        watch: EventWatch | None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Events of one play, of one flow's plays, or (both None) of the company's: from
        this process's bus, and through ``watch`` from the store (see the docstring)."""
        events_service = app().deps.events
        assert events_service is not None
        company = self.principal.company_id
        assert company is not None
        with scope:
            # The bus buffer is roomier than the connection's queue, so a client that stops
            # reading fills the queue (and is disconnected with 1013) before the bus drops it.
            buffer = 4 * app().deps.settings.ws_queue_size
            subscription = events_service.subscribe(
                company, play_id=play_id, flow_id=flow_id, buffer=buffer
            )
            async with subscription as events, trio.open_nursery() as follower:
                if watch is not None:
                    follower.start_soon(self._follow, sub_id, watch)
                task_status.started()
                async for event in events:
                    if watch is not None and not watch.note(event):
                        continue  # the store reported it first
                    self.push({**event.to_json(), "subscription": sub_id})
                    if self.too_slow:
                        break
                follower.cancel_scope.cancel()  # the bus dropped us (or the client is too slow)

    async def _follow(self, sub_id: str, watch: EventWatch) -> None:
        """Send what the store shows of plays another process runs, until nothing is left."""
        while not watch.done:
            await trio.sleep(POLL_SECONDS)
            try:
                events = await watch.poll()
            except StoreError as e:  # the next look tries again
                log.warning("ws.follow_failed", error=type(e).__name__)
                continue
            for event in events:
                self.push({**event.to_json(), "subscription": sub_id})
                if self.too_slow:
                    return


async def _refuse(error: ApiError) -> None:
    # Hypercorn cannot send an HTTP denial on an HTTP/1.1 upgrade, so the refusal is a
    # WebSocket close: the error as one frame, then close code 4000 + HTTP status
    # (4401 unauthenticated, 4403 forbidden). Nothing from the client is read.
    await websocket.accept()
    await websocket.send(json.dumps({"type": "error", **error.body()}))
    await websocket.close(4000 + error.status, error.code)


async def ws_endpoint() -> None:
    try:
        if not _origin_allowed():
            raise Forbidden("origin not allowed", code="ORIGIN_REFUSED")
        principal = await authenticate(optional=False)
        assert principal is not None
        if principal.company_id is None or not principal.may(Action.READ):
            raise Forbidden("select a company first", code="NO_COMPANY")
        if app().deps.events is None:
            raise Forbidden("events are not available on this instance", code="NO_EVENTS")
    except ApiError as e:
        await _refuse(e)
        return
    except IdentityError as e:
        await _refuse(from_identity(e))
        return
    await websocket.accept()
    _audit(principal, "ws_connected")
    closing = app().closing
    code, reason = 1000, ""
    send, receive = trio.open_memory_channel[str](app().deps.settings.ws_queue_size)
    conn: _Connection | None = None
    try:
        async with trio.open_nursery() as nursery:
            conn = _Connection(principal, send, nursery)

            async def _writer() -> None:
                async for text in receive:
                    await websocket.send(text)

            async def _watch_shutdown() -> None:
                nonlocal code, reason
                await closing.wait()
                code, reason = 1001, "server shutting down"
                nursery.cancel_scope.cancel()

            async def _recheck_credentials() -> None:
                nonlocal code, reason
                while True:
                    await trio.sleep(app().deps.settings.ws_recheck_seconds)
                    if not await _still_allowed(principal):
                        code, reason = 4401, "credentials revoked"
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(_writer)
            nursery.start_soon(_watch_shutdown)
            nursery.start_soon(_recheck_credentials)
            while not conn.too_slow:
                await conn.handle(await websocket.receive())
    finally:
        if conn is not None and conn.too_slow:
            code, reason = 1013, "client too slow"
        _audit(principal, "ws_closed", {"code": code})
    if code != 1000 or closing.is_set():  # 1001 shutdown, 1013 too slow, 4401 revoked
        await websocket.close(code, reason)


async def _still_allowed(principal: Principal) -> bool:
    """Whether the socket's credential still grants what it granted at connect time."""
    try:
        current = await authenticate(optional=False)
    except (ApiError, IdentityError):
        return False
    return (
        current is not None
        and current.company_id == principal.company_id
        and current.may(Action.READ)
    )


def _audit(principal: Principal, action: str, details: Any = None) -> None:
    app().deps.audit(
        AuditEntry(
            action,
            company_id=principal.company_id,
            user_id=principal.user.id,
            user_email=principal.user.email,
            ip=client_ip(),
            user_agent=websocket.headers.get("User-Agent", "")[:500],
            method="GET",
            path="/ws",
            details=details,
        )
    )


def install(application: Any) -> None:
    application.add_websocket("/ws", view_func=ws_endpoint)
