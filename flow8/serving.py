"""Hypercorn (trio worker) as flow8 serves with it: one configuration and one bind-failure
error for every server of the tree (the HTTP API on SERVER_PORT, MCP on MCP_PORT), and the
listening sockets of ``flow8 serve --workers N``: the parent binds the HTTP and MCP ports once
(:func:`bind_listener`) and its workers serve those inherited sockets; channel ports, opened and
closed as channels change, are bound by every worker with SO_REUSEPORT
(:func:`open_shared_listeners`), so the kernel spreads a port's connections over them."""

from __future__ import annotations

import errno
import logging
import math
import os
import signal
import socket
from collections.abc import AsyncIterator
from typing import Any

import attrs
import structlog
import trio
from hypercorn.config import Config
from hypercorn.trio import run as hypercorn_run
from hypercorn.trio.tcp_server import TCPServer

import actors


class _KeepAliveTimer:
    """A connection's keep-alive timer (Hypercorn's ``TCPServer.idle_task``), with one task
    per connection instead of one per request.

    Hypercorn's own (``TrioSingleTask``) takes a lock and starts a new task through
    ``nursery.start`` every time the connection goes idle, that is after every answer, and
    cancels it when the next request arrives: a task, two cancel scopes and a round trip
    through the scheduler on every keep-alive request, inside the answer's last ``send``
    (measured: `scripts/bench/api.py` served `get` 13-19% below the tree before the hardening,
    in-process the same). Here one task waits for the timeout or the server's shutdown, and
    going idle or busy only moves its deadline. The same interface: ``restart`` when the
    connection goes idle (the first call starts the task), ``stop`` when a request arrives;
    ``end`` when the connection is done with, which lets its task group finish."""

    __slots__ = ("_ended", "_idle", "_scope", "_server", "_went_idle")

    def __init__(self, server: _TCPServer) -> None:
        self._server = server
        self._scope: trio.CancelScope | None = None  # the waiting task's; its deadline is the timer
        self._idle = False
        self._ended = False
        self._went_idle: trio.Event | None = None

    async def restart(self, task_group: Any, action: Any) -> None:
        self._idle = True
        deadline = trio.current_time() + self._server.config.keep_alive_timeout
        if self._scope is None:
            if self._ended:
                return
            self._scope = trio.CancelScope(deadline=deadline)
            task_group._nursery.start_soon(self._wait, self._scope)
        else:
            self._scope.deadline = deadline
        if self._went_idle is not None:
            self._went_idle.set()

    async def stop(self) -> None:
        self._idle = False
        if self._scope is not None:
            self._scope.deadline = math.inf

    async def end(self) -> None:
        self._ended = True
        if self._scope is not None:
            self._scope.cancel()

    async def _wait(self, scope: trio.CancelScope) -> None:
        with scope:
            await self._server.context.terminated.wait()
            # The server is stopping: close this connection once its answer has gone.
            while not self._idle:
                self._went_idle = trio.Event()
                await self._went_idle.wait()
        if self._ended:
            return
        # Idle for the keep-alive timeout (the deadline passed), or the server is stopping.
        with trio.CancelScope(shield=True):
            await self._server._initiate_server_close()


class _TCPServer(TCPServer):
    """Hypercorn's trio connection handler, with its keep-alive timer replaced
    (:class:`_KeepAliveTimer`) and let go of once the client has gone.

    Each connection's task ends only when its nursery's tasks do, the keep-alive timer among
    them, which Hypercorn re-arms after every answer and does not stop when the client closes
    the connection: the socket then sat in CLOSE-WAIT until the timer fired (75 s). That went
    unseen while quart-trio's teardown cancelled nearly every re-arm (see
    `flow8.http._middleware._Inflow`, which stopped that); one-shot clients would have piled up
    CLOSE-WAIT sockets by the thousand. The read loop ends when the client closes, the
    connection breaks or Hypercorn closes it; the timer has nothing left to guard then."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep_alive = _KeepAliveTimer(self)
        self.idle_task = self.keep_alive  # type: ignore[assignment]  # the same two methods

    async def _read_data(self) -> None:
        await super()._read_data()
        await self.keep_alive.end()


log = structlog.stdlib.get_logger("flow8.serving")

# `hypercorn.trio.serve` builds each connection's handler from this module attribute.
hypercorn_run.TCPServer = _TCPServer  # type: ignore[attr-defined]


def hypercorn_config(
    host: str, port: int, graceful_timeout: float, *, inherited_fd: int | None = None
) -> Config:
    """``inherited_fd``: a listening socket the parent process bound (workers) to serve
    instead of binding ``host:port``; duplicated, as Hypercorn closes what it served and a
    restarted server must find the worker's copy still open."""
    config = Config()
    if inherited_fd is not None:
        config.bind = [f"fd://{os.dup(inherited_fd)}"]
    else:
        config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = graceful_timeout
    config.accesslog = None  # the audit trail records every request; no second access log
    # A Logger (not "-") makes Hypercorn log through the root handler: one JSON format, no
    # second plain-text copy of every line on stderr.
    config.errorlog = logging.getLogger("hypercorn.error")
    config.keep_alive_timeout = 75
    # No "server: hypercorn-h11" on every answer: it tells a scanner what to try, nobody else.
    config.include_server_header = False
    config.websocket_max_message_size = 1 * 1024 * 1024
    return config


class CannotListen(Exception):
    """A server's port could not be bound: taken, not ours to take, or not on this host."""


_CANNOT_BIND = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


def cannot_listen(
    group: BaseExceptionGroup[OSError], bind: str, setting: str
) -> CannotListen | None:
    """The CannotListen that says why ``bind`` (the address ``setting`` names) could not be
    bound, if that is what went wrong; None for any other failure."""
    for error in actors.leaves(group):
        if isinstance(error, OSError) and error.errno in _CANNOT_BIND:
            return CannotListen(f"cannot listen on {bind} ({setting}): {error.strerror or error}")
    return None


@attrs.frozen
class WorkerRole:
    """What the parent of ``flow8 serve --workers N`` (``flow8.workers``) tells each worker
    it starts: the group the workers form (one instance index, one channel port block), the
    worker's number, and the listening sockets it inherited for the HTTP API and MCP."""

    group: str
    worker: int
    http_fd: int
    mcp_fd: int
    run_dir: str  # the group's private directory (each worker's metrics socket)

    def argument(self) -> str:
        """As ``--worker-role`` carries it (:func:`parse_role`)."""
        return f"{self.group}:{self.worker}:{self.http_fd}:{self.mcp_fd}:{self.run_dir}"


def parse_role(text: str) -> WorkerRole:
    """The role ``--worker-role`` carries; ValueError for anything else."""
    parts = text.split(":", 4)
    if len(parts) != 5 or not parts[0] or not all(p.isdigit() for p in parts[1:4]):
        raise ValueError(
            f"--worker-role: expected GROUP:WORKER:HTTP_FD:MCP_FD:RUN_DIR, got {text!r}"
        )
    return WorkerRole(parts[0], int(parts[1]), int(parts[2]), int(parts[3]), parts[4])


async def stop_on_signals(signals: AsyncIterator[int], stop: trio.Event) -> None:
    """Set ``stop`` at the first signal and take every later one until cancelled."""
    async for received in signals:
        if stop.is_set():
            log.info("flow8_already_stopping", signal=signal.Signals(received).name)
        else:
            log.info("flow8_stopping", signal=signal.Signals(received).name)
            stop.set()


def bind_listener(
    host: str, port: int, setting: str, *, backlog: int = 1024, reuse_port: bool = False
) -> socket.socket:
    """A listening TCP socket on ``host:port``, inheritable, for a worker to serve
    (``flow8 serve --workers N``); CannotListen naming ``setting`` when the port is taken.

    ``reuse_port``: the parent binds one such socket per worker (SO_REUSEPORT), so the
    kernel spreads connections evenly over the workers by their addresses. One socket that
    every worker accepts from does not: the worker that wakes first takes whole bursts of
    connections, and keep-alive clients stay with it (64 of 64 went to one of two workers)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as error:
        sock.close()
        if error.errno in _CANNOT_BIND:
            raise CannotListen(
                f"cannot listen on {host}:{port} ({setting}): {error.strerror or error}"
            ) from error
        raise
    sock.set_inheritable(True)
    return sock


async def open_shared_listeners(
    port: int, host: str, backlog: int = 1024
) -> list[trio.SocketListener]:
    """As ``trio.open_tcp_listeners``, with SO_REUSEPORT set before the bind: the workers of
    one ``flow8 serve --workers N`` each listen on the same channel port (Linux admits only
    sockets of the same user to share a port this way)."""
    listeners: list[trio.SocketListener] = []
    infos = await trio.socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    try:
        for family, type_, proto, _, address in infos:
            sock = trio.socket.socket(family, type_, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                await sock.bind(address)
                sock.listen(backlog)
            except BaseException:
                sock.close()
                raise
            listeners.append(trio.SocketListener(sock))
    except BaseException:
        for listener in listeners:
            await listener.aclose()
        raise
    return listeners
