"""The message protocol of ws and tcp channels (one JSON object per frame / per line).

Client to server: ``{"id": <string|number>, "route": <route name>, "args": <any>}`` starts a
play of each of the route's target flows with ``args`` as input. Server to client, for each
play started: ``{"id", "playId", "event": <event JSON as /ws sends it>}`` for each of its
events, then ``{"id", "playId", "result": <the play's output>}`` or ``{"id", "playId",
"error": <message>}``. A refused message gets ``{"id", "error": CODE, "message"}``. Many
messages may be in flight on one connection; answers of different ids interleave.

No event is lost: the subscription (to the target flow's events, filtered by play id) is open
before the play starts. Every outgoing message goes through one bounded queue with
``send_nowait``: a client that does not read fills it and is dropped (the caller sends a
close notice, once the message going out has gone out whole), and no play ever waits for a
client.

Each message gets a correlation id of its own (as an HTTP request does): in its audit entry,
on the log lines of its handling and of the tasks following its plays, and kept by its plays.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from flow8.domain import Play, PlayState
from flow8.services.channels import Route
from flow8.services.storage import invalid_text_in
from flow8.services.tracing import correlation_id, enter_request, leave_request

from ._context import ChannelContext
from ._launch import FINISHED, Refused, log

# Events a subscriber may fall behind by before the bus drops it: a flow subscription sees
# the events of every play of that flow (filtered here by play id), so it is roomy.
EVENT_BUFFER = 4096
END_EVENTS = frozenset({"play:completed", "play:failed"})
DROPPED = "subscriber:dropped"


class BadMessage(Refused):
    def __init__(self, message: str) -> None:
        super().__init__(400, "BAD_MESSAGE", message)


class SessionEnd(enum.Enum):
    """How a connection's session ended: what its closing may say."""

    CLIENT_DONE = "client_done"  # the client ended it: close as usual
    TOO_SLOW = "too_slow"  # dropped between two messages: close with a notice
    # Dropped with a message half written: close without a word. A close frame or a last
    # line after a cut message would be read as the rest of it (a ws client saw a close
    # frame inside a text frame, and failed on its UTF-8).
    CUT = "cut"


CUT_GRACE_SECONDS = 1.0  # how long a dropped client's message in flight has to go out whole


@attrs.define
class _Writer:
    """Writes a connection's messages in turn. Dropping the client stops it after the
    message going out, which gets ``CUT_GRACE_SECONDS`` to be written whole; past that
    it is cut, and ``cut`` says so."""

    send: Callable[[str], Awaitable[None]]
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    stopping: bool = False
    cut: bool = False

    async def run(
        self, messages: trio.MemoryReceiveChannel[dict[str, Any]], gone: Callable[[], None]
    ) -> None:
        with self.scope:
            try:
                async for message in messages:
                    try:
                        await self.send(dumps(message))
                    except trio.Cancelled:
                        self.cut = True  # part of it may be on the wire
                        raise
                    if self.stopping:
                        return
            except Exception:  # the client is gone: nothing more to say to it
                gone()

    def stop(self) -> None:
        self.stopping = True
        self.scope.deadline = min(self.scope.deadline, trio.current_time() + CUT_GRACE_SECONDS)


@attrs.define
class Session:
    ctx: ChannelContext
    client: str
    host: str
    out: trio.MemorySendChannel[dict[str, Any]]
    writer: _Writer
    reading: trio.CancelScope  # the client's messages and the plays' pumps: cancelled on a drop
    plays: trio.Nursery  # the pumps of this connection's plays
    too_slow: bool = False
    pending: int = 0

    def push(self, message: dict[str, Any]) -> None:
        if self.too_slow:
            return
        try:
            self.out.send_nowait(message)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.too_slow = True
            self.ctx.stats.dropped_slow += 1
            self.writer.stop()
            self.reading.cancel()

    async def handle(self, raw: str | bytes) -> None:
        started = time.perf_counter()
        ctx = self.ctx
        ctx.stats.requests += 1
        msg_id: Any = None
        route_name: str | None = None
        play_ids: list[str] = []
        status = 202
        error: str | None = None
        request_id = correlation_id(None)
        # The pumps started meanwhile keep it (a task keeps what it was started with).
        entered = enter_request(request_id)
        try:
            msg = _parse(raw)
            msg_id, route_name = msg["id"], msg["route"]
            if not ctx.limiter.allow(self.host):
                ctx.stats.rejected_rate += 1
                raise Refused(429, "RATE_LIMITED", "too many requests")
            route = ctx.channel.route_named(route_name)
            if route is None:
                ctx.stats.not_found += 1
                raise Refused(404, "ROUTE_NOT_FOUND", "no such route")
            if self.pending + len(route.target_flow_ids) > ctx.limits.max_pending:
                raise Refused(429, "TOO_MANY_PENDING", "too many plays in flight")
            for flow_id in route.target_flow_ids:
                play = await self.plays.start(self._pump, msg_id, route, flow_id, msg.get("args"))
                play_ids.append(play.id)
        except Refused as e:
            status, error = e.status, e.code
            self.push({"id": msg_id, **e.body()})
        except Exception as e:  # this message only: the session goes on
            log.warning("channel.message_failed", channel_id=ctx.channel.id, error=repr(e)[:200])
            status, error = 500, "INTERNAL"
            self.push({"id": msg_id, "error": "INTERNAL", "message": "the message failed"})
        finally:
            leave_request(entered)
            ctx.audit(
                client=self.client,
                status=status,
                route=route_name,
                play_ids=play_ids,
                started=started,
                error=error,
                correlation_id=request_id,
            )

    async def _pump(
        self,
        msg_id: Any,
        route: Route,
        flow_id: str,
        args: Any,
        task_status: trio.TaskStatus[Play] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        ctx = self.ctx
        company = ctx.channel.company_id
        async with ctx.events.subscribe(company, flow_id=flow_id, buffer=EVENT_BUFFER) as events:
            play = await ctx.launcher.start_one(flow_id, args, None)
            self.pending += 1
            task_status.started(play)
            try:
                await self._follow(msg_id, route, play, events)
            finally:
                self.pending -= 1

    async def _follow(
        self, msg_id: Any, route: Route, play: Play, events: trio.MemoryReceiveChannel[Any]
    ) -> None:
        launcher = self.ctx.launcher
        deadline = trio.current_time() + route.timeout_seconds
        ended = play.state in FINISHED
        with trio.move_on_at(deadline):
            while not ended:
                try:
                    event = await events.receive()
                except trio.EndOfChannel:
                    break
                if event.type == DROPPED:
                    break  # fell behind (a burst of other plays): the result still comes
                if event.play_id != play.id:
                    continue
                self.push({"id": msg_id, "playId": play.id, "event": event.to_json()})
                ended = event.type in END_EVENTS
        remaining = deadline - trio.current_time()
        try:
            final = (
                await launcher.wait(play, max(0.0, remaining)) if remaining > 0 or ended else None
            )
        except Exception as e:  # the store failed: this play's answer only
            log.warning("channel.result_failed", play_id=play.id, error=repr(e)[:200])
            self.push({"id": msg_id, "playId": play.id, "error": "UNAVAILABLE"})
            return
        if final is None or final.state not in FINISHED:
            self.push({"id": msg_id, "playId": play.id, "error": "TIMEOUT", "status": "running"})
        elif final.state is PlayState.DONE:
            self.push({"id": msg_id, "playId": play.id, "result": final.output})
        else:
            self.push({"id": msg_id, "playId": play.id, "error": final.error or "failed"})


def _parse(raw: str | bytes) -> dict[str, Any]:
    try:
        msg = json.loads(raw)
    except ValueError as e:
        raise BadMessage("messages are JSON objects") from e
    if not isinstance(msg, dict):
        raise BadMessage("messages are JSON objects")
    bad = invalid_text_in(msg)
    if bad is not None:
        raise BadMessage(f"{bad[0] or 'message'}: {bad[1]}")
    msg_id = msg.get("id")
    if not isinstance(msg_id, (str, int)) or isinstance(msg_id, bool):
        raise BadMessage("id must be a string or a number")
    if not isinstance(msg.get("route"), str):
        raise BadMessage("route must be a route's name")
    return msg


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)


async def run_session(
    ctx: ChannelContext,
    client: str,
    host: str,
    receive: Callable[[], Awaitable[str | bytes | None]],
    send: Callable[[str], Awaitable[None]],
) -> SessionEnd:
    """Serve one connection until the client ends it (``receive`` answers None: the plays
    in flight still answer) or is too slow (the caller closes with a notice, unless a
    message was cut: see :class:`SessionEnd`).

    An error of ``receive`` (a line too long, a protocol error) ends the session and is
    raised as is once the session's tasks are done; a failing ``send`` (the client is gone)
    ends it quietly."""
    send_ch, recv_ch = trio.open_memory_channel[dict[str, Any]](ctx.limits.send_queue)
    writer = _Writer(send)
    failure: Exception | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run, recv_ch, nursery.cancel_scope.cancel)
        with trio.CancelScope() as reading:
            async with trio.open_nursery() as plays:
                session = Session(ctx, client, host, send_ch, writer, reading, plays)
                while not session.too_slow:
                    try:
                        raw = await receive()
                    except Exception as e:
                        failure = e
                        plays.cancel_scope.cancel()
                        break
                    if raw is None:
                        break
                    await session.handle(raw)
        # The client said all it will say, and every play it started has answered (or the
        # client was dropped, and the writer stops after the message going out).
        await send_ch.aclose()
    if failure is not None:
        raise failure
    if not session.too_slow:
        return SessionEnd.CLIENT_DONE
    return SessionEnd.CUT if writer.cut else SessionEnd.TOO_SLOW
