"""One channel's actor: the listening socket on the channel's port and its connections.

It binds, reports started (so the dynamic supervisor knows the port is open), and accepts
until it is stopped or its socket fails. A failed socket is a crash: the supervisor restarts
this channel (TRANSIENT) and nothing else. A connection's own failure is logged and ends that
connection only. Past ``max_connections`` open connections, a new one is closed at once.
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable

import attrs
import trio

import actors
from flow8.logs import get_logger
from flow8.services.channels import ChannelKind
from flow8.serving import open_shared_listeners

from ._context import ChannelContext
from ._http import HttpConnection
from ._tcp import serve_tcp
from ._ws import serve_ws

log = get_logger("flow8.channels")
Serve = Callable[[ChannelContext, trio.SocketStream, str, str], Awaitable[None]]


async def _serve_http(
    ctx: ChannelContext, stream: trio.SocketStream, client: str, host: str
) -> None:
    await HttpConnection(ctx, stream, client, host).serve()


SERVERS: dict[ChannelKind, Serve] = {
    ChannelKind.HTTP: _serve_http,
    ChannelKind.WS: serve_ws,
    ChannelKind.TCP: serve_tcp,
}


@attrs.define
class Listener:
    """The live part of one incarnation of a channel actor (tests may close ``socket`` from
    outside to crash it, as a failing network would).

    Stopped politely (``actors.stop_requested``): it stops accepting and closes its socket at
    once (the port is free for the channel's next incarnation), ends idle connections and
    sessions, and gives http requests in progress the child's shutdown time."""

    ctx: ChannelContext
    host: str
    shared: bool = False  # SO_REUSEPORT: the workers of one serve share the port
    socket: trio.SocketListener | None = None

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        channel = self.ctx.channel
        assert channel.port is not None
        serve = SERVERS[channel.kind]
        if self.shared:
            listeners = await open_shared_listeners(channel.port, self.host)
        else:
            listeners = await trio.open_tcp_listeners(channel.port, host=self.host, backlog=1024)
        self.socket = listeners[0]
        for extra in listeners[1:]:
            await extra.aclose()
        log.info(
            "channel.listening", channel_id=channel.id, kind=channel.kind.value, port=channel.port
        )
        stop = actors.stop_requested()
        try:
            async with self.socket, trio.open_nursery() as connections:
                with trio.CancelScope() as accepting:

                    async def on_stop() -> None:
                        await stop.wait()
                        accepting.cancel()

                    connections.start_soon(on_stop)
                    task_status.started()
                    while True:
                        try:
                            stream = await self.socket.accept()
                        except OSError as e:
                            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                                await trio.sleep(0.1)  # out of descriptors: back off, not crash
                                continue
                            raise
                        connections.start_soon(self._connection, serve, stream)
                # Asked to stop: free the port now, let requests in progress be answered.
                await self.socket.aclose()
                self.ctx.drain.start()
        finally:
            self.socket = None

    async def _connection(self, serve: Serve, stream: trio.SocketStream) -> None:
        stats = self.ctx.stats
        if stats.connections >= self.ctx.channel.max_connections:
            stats.rejected_connections += 1
            await trio.aclose_forcefully(stream)
            return
        stats.connections += 1
        stats.connections_total += 1
        try:
            try:
                peer = stream.socket.getpeername()
                host, client = str(peer[0]), f"{peer[0]}:{peer[1]}"
            except OSError:
                host = client = "unknown"
            try:
                if self.ctx.channel.kind is ChannelKind.HTTP:
                    await serve(self.ctx, stream, client, host)
                else:  # a session has no natural end: a drain ends it
                    with self.ctx.drain.cancellable():
                        await serve(self.ctx, stream, client, host)
            except Exception as e:  # one connection's failure is that connection's only
                log.warning(
                    "channel.connection_failed", channel_id=self.ctx.channel.id, error=repr(e)[:300]
                )
        finally:
            stats.connections -= 1
            await trio.aclose_forcefully(stream)
