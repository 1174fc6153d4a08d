"""The http listener: a lean HTTP/1.1 server (h11 over a trio socket) for one channel.

Why not Quart/Hypercorn: this is the webhook hot path, and it needs none of the REST API's
machinery (sessions, CSRF, key lookups, OpenAPI); one small state machine per connection
serves more plays per second. Keep-alive is honoured; an idle connection is closed after
``keep_alive_seconds``.

Order of checks for a request: rate limit (429) -> route (404 / 405) -> declared size (413,
answered before reading the body) -> body, read up to the limit (413) -> auth (401, no
detail) -> plays started. Every request is audited once.

Every request has a correlation id, as the REST API's do: the client's ``X-Request-Id`` when
well formed, else a fresh one, answered in ``X-Request-Id``, in its audit entry and on every
log line while it is handled; the plays it starts keep it, and the W3C trace of a valid
``traceparent`` it carried (``flow8.services.tracing``).
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import h11
import trio

from flow8.domain import Play, PlayState
from flow8.logs import get_logger
from flow8.services.channels import ResponseMode, Route
from flow8.services.storage import invalid_text_in
from flow8.services.tracing import correlation_id, enter_request, leave_request

from ._auth import hidden_headers, request_ok
from ._context import ChannelContext
from ._launch import Refused, result_of
from ._routing import MethodNotAllowed

log = get_logger("flow8.channels.http")
READ_SIZE = 65536
MAX_HEAD_BYTES = 16384
SERVER_HEADER = (b"server", b"flow8-channel")
_REQUEST_ID = b"x-request-id"  # the server's, as on the REST API: a flow's own is replaced


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


@attrs.define
class _Answer:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = attrs.field(factory=list)
    play_ids: list[str] = attrs.field(factory=list)
    route: str | None = None
    close: bool = False

    @classmethod
    def json(cls, status: int, value: Any, **kwargs: Any) -> _Answer:
        return cls(status, _dumps(value), [(b"content-type", b"application/json")], **kwargs)


class _Closed(Exception):
    """The client went away (or broke the protocol) mid-request."""


@attrs.define
class HttpConnection:
    ctx: ChannelContext
    stream: trio.SocketStream
    client: str
    host: str
    conn: h11.Connection = attrs.field(
        factory=lambda: h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    )

    async def serve(self) -> None:
        try:
            while True:
                # Waiting for a request: the idle timeout or a drain may end it.
                with self.ctx.drain.cancellable() as idle:
                    idle.relative_deadline = self.ctx.limits.keep_alive_seconds
                    event = await self._next_event()
                if idle.cancelled_caught or not isinstance(event, h11.Request):
                    return
                await self._handle(event)
                if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state in (
                    h11.MUST_CLOSE,
                    h11.CLOSED,
                ):
                    return
                try:
                    self.conn.start_next_cycle()
                except h11.LocalProtocolError:
                    return
        except (_Closed, trio.BrokenResourceError, trio.ClosedResourceError):
            return
        except h11.RemoteProtocolError:
            await self._send_bad_request()
        finally:
            await trio.aclose_forcefully(self.stream)

    async def _next_event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                data = await self.stream.receive_some(READ_SIZE)
                self.conn.receive_data(data)
                if not data and self.conn.their_state is not h11.DONE:
                    if self.conn.their_state is h11.IDLE:
                        return h11.ConnectionClosed()
                    raise _Closed
                continue
            return event

    async def _send_bad_request(self) -> None:
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        with contextlib.suppress(
            trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError
        ):
            await self._send(_Answer.json(400, {"error": "BAD_REQUEST"}, close=True))

    async def _send(self, answer: _Answer) -> None:
        headers = [SERVER_HEADER, *answer.headers]
        if answer.status not in (204, 304):
            headers.append((b"content-length", str(len(answer.body)).encode()))
        if answer.close:
            headers.append((b"connection", b"close"))
        data = self.conn.send(h11.Response(status_code=answer.status, headers=headers))
        data = (data or b"") + (self.conn.send(h11.Data(data=answer.body)) or b"")
        data += self.conn.send(h11.EndOfMessage()) or b""
        await self.stream.send_all(data)

    async def _handle(self, request: h11.Request) -> None:
        started = time.perf_counter()
        ctx = self.ctx
        ctx.stats.requests += 1
        method = request.method.decode("ascii", "replace").upper()
        target = request.target.decode("utf-8", "replace")
        parts = urlsplit(target)
        path = parts.path or "/"
        answer: _Answer | None = None
        sent_id = traceparent = None
        for name, value in request.headers:  # h11 gives names lower-cased
            if name == b"x-request-id":
                sent_id = value
            elif name == b"traceparent":
                traceparent = value
        request_id = correlation_id(sent_id)
        # Left in `finally`: the connection's next request runs in this same task.
        entered = enter_request(request_id, traceparent)
        try:
            try:
                answer = await self._answer(request, method, path, parts.query)
            except Refused as e:
                answer = _Answer.json(e.status, e.body())
            except (_Closed, trio.BrokenResourceError, trio.ClosedResourceError):
                raise
            except h11.RemoteProtocolError:
                raise
            except Exception as e:  # a store that failed while waiting, ...: this request only
                log.warning(
                    "channel.request_failed", channel_id=ctx.channel.id, error=repr(e)[:200]
                )
                answer = _Answer.json(500, {"error": "INTERNAL"}, close=True)
            if self.conn.their_state is h11.SEND_BODY:
                answer.close = True  # the body was not read: the connection cannot be reused
            answer.headers = [h for h in answer.headers if h[0] != _REQUEST_ID]
            answer.headers.append((_REQUEST_ID, request_id.encode("ascii")))
            await self._send(answer)
        finally:
            leave_request(entered)
            # Audited however it ended (499: the client left or the channel stopped first).
            ctx.audit(
                client=self.client,
                status=answer.status if answer is not None else 499,
                route=answer.route if answer is not None else None,
                play_ids=answer.play_ids if answer is not None else [],
                started=started,
                method=method,
                path=path,
                correlation_id=request_id,
            )

    async def _answer(self, request: h11.Request, method: str, path: str, query: str) -> _Answer:
        ctx = self.ctx
        if not ctx.limiter.allow(self.host):
            ctx.stats.rejected_rate += 1
            answer = _Answer.json(429, {"error": "RATE_LIMITED"})
            answer.headers.append((b"retry-after", b"1"))
            return answer
        try:
            match = ctx.router.match(method, path)
        except MethodNotAllowed:
            ctx.stats.not_found += 1
            return _Answer.json(405, {"error": "METHOD_NOT_ALLOWED"})
        if match is None:
            ctx.stats.not_found += 1
            return _Answer.json(404, {"error": "NOT_FOUND"})
        route = match.route
        headers: dict[str, str] = {}
        for name, value in request.headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        limit = ctx.limits.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            ctx.stats.rejected_size += 1
            return _Answer.json(413, {"error": "PAYLOAD_TOO_LARGE"}, route=route.name)
        body: bytes | None = None
        with trio.move_on_after(ctx.limits.body_seconds):
            body = await self._read_body(limit)
            if body is None:
                ctx.stats.rejected_size += 1
                return _Answer.json(413, {"error": "PAYLOAD_TOO_LARGE"}, route=route.name)
        if body is None:  # the sender is too slow: a connection held open costs a slot
            return _Answer.json(408, {"error": "REQUEST_TIMEOUT"}, route=route.name, close=True)
        if not request_ok(ctx.channel, headers, body):
            ctx.stats.rejected_auth += 1
            return _Answer.json(401, {"error": "UNAUTHORIZED"}, route=route.name)
        hidden = hidden_headers(ctx.channel)
        play_input = {
            "body": _parse_body(body, headers.get("content-type", "")),
            "headers": {k: v for k, v in headers.items() if k not in hidden},
            "query": dict(parse_qsl(query, keep_blank_values=True)),
            "method": method,
            "path": path,
            "params": match.params,
        }
        idempotency_key = headers.get("idempotency-key") or None
        plays = await ctx.launcher.start(route, play_input, idempotency_key=idempotency_key)
        answer = await self._outcome(route, plays)
        answer.route = route.name
        answer.play_ids = [p.id for p in plays]
        return answer

    async def _read_body(self, limit: int) -> bytes | None:
        """The whole body, or None past ``limit`` bytes (the rest is not read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    return None
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            else:
                raise _Closed

    async def _outcome(self, route: Route, plays: list[Play]) -> _Answer:
        launcher = self.ctx.launcher
        if route.response_mode is ResponseMode.ASYNC:
            queued = [{"playId": p.id, "status": "queued"} for p in plays]
            return _Answer.json(202, queued[0] if len(queued) == 1 else {"plays": queued})
        finished: list[Play | None] = [None] * len(plays)
        timeout = route.timeout_seconds
        async with trio.open_nursery() as nursery:
            for i, play in enumerate(plays):

                async def wait(i: int = i, play: Play = play) -> None:
                    finished[i] = await launcher.wait(play, timeout)

                nursery.start_soon(wait)
        if len(plays) == 1:
            return await self._single(plays[0], finished[0])
        rendered = []
        for play, done in zip(plays, finished, strict=True):
            if done is None:
                rendered.append({"playId": play.id, "status": "running"})
            else:
                rendered.append(result_of(done))
        status = 200 if all(f is not None for f in finished) else 202
        return _Answer.json(status, {"plays": rendered})

    async def _single(self, play: Play, done: Play | None) -> _Answer:
        if done is None:
            return _Answer.json(202, {"playId": play.id, "status": "running"})
        if done.state is not PlayState.DONE:
            return _Answer.json(502, {"playId": done.id, "error": done.error or "failed"})
        shaped = await self.ctx.launcher.respond_step(done)
        if shaped is None:
            return _Answer.json(200, done.output)
        return _shaped_answer(shaped)


def _shaped_answer(shaped: dict[str, Any]) -> _Answer:
    body = shaped["body"]
    headers = [
        (str(k).lower().encode("latin-1", "replace"), str(v).encode("latin-1", "replace"))
        for k, v in (shaped.get("headers") or {}).items()
    ]
    # Framing is the server's: a flow cannot set them (request smuggling).
    headers = [
        h for h in headers if h[0] not in (b"content-length", b"transfer-encoding", b"connection")
    ]
    names = {h[0] for h in headers}
    if isinstance(body, str):
        data = body.encode()
        if b"content-type" not in names:
            headers.append((b"content-type", b"text/plain; charset=utf-8"))
    elif body is None:
        data = b""
    else:
        data = _dumps(body)
        if b"content-type" not in names:
            headers.append((b"content-type", b"application/json"))
    status = max(200, shaped["statusCode"])  # 1xx are the protocol's, not an answer
    if status in (204, 304):
        data = b""
    return _Answer(status, data, headers)


def _parse_body(body: bytes, content_type: str) -> Any:
    """JSON for a JSON media type, else text; text that is not valid Unicode is refused
    here (400 INVALID_TEXT), at the boundary, rather than by the store later."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Refused(400, "INVALID_TEXT", "the body is not UTF-8 text") from e
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            value = json.loads(text) if text else None
        except ValueError as e:
            raise Refused(400, "INVALID_JSON", "the body is not valid JSON") from e
        bad = invalid_text_in(value)
        if bad is not None:
            raise Refused(400, "INVALID_TEXT", f"{bad[0] or 'body'}: {bad[1]}")
        return value
    return text
