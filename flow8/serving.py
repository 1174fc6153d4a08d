"""Hypercorn (trio worker) as flow8 serves with it: one configuration and one bind-failure
error for every server of the tree (the HTTP API on SERVER_PORT, MCP on MCP_PORT)."""

from __future__ import annotations

import errno
import logging

from hypercorn.config import Config
from hypercorn.trio import run as hypercorn_run
from hypercorn.trio.tcp_server import TCPServer

import actors


class _TCPServer(TCPServer):
    """Hypercorn's trio connection handler, letting go of a connection once its client has.

    Each connection's task ends only when its nursery's tasks do, the keep-alive timer among
    them, which Hypercorn re-arms after every answer and does not stop when the client closes
    the connection: the socket then sat in CLOSE-WAIT until the timer fired (75 s). That went
    unseen while quart-trio's teardown cancelled nearly every re-arm (see
    `flow8.http._middleware._Inflow`, which stopped that); one-shot clients would have piled up
    CLOSE-WAIT sockets by the thousand. The read loop ends when the client closes, the
    connection breaks or Hypercorn closes it; the timer has nothing left to guard then."""

    async def _read_data(self) -> None:
        await super()._read_data()
        await self.idle_task.stop()


# `hypercorn.trio.serve` builds each connection's handler from this module attribute.
hypercorn_run.TCPServer = _TCPServer  # type: ignore[attr-defined]


def hypercorn_config(host: str, port: int, graceful_timeout: float) -> Config:
    config = Config()
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
