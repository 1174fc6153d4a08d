"""Run a flow8 app under Hypercorn's trio worker as a supervised service."""

from __future__ import annotations

import errno
import logging

import trio
from hypercorn.config import Config
from hypercorn.trio import run as hypercorn_run
from hypercorn.trio import serve
from hypercorn.trio.tcp_server import TCPServer

import actors

from ._context import Flow8App


class _TCPServer(TCPServer):
    """Hypercorn's trio connection handler, letting go of a connection once its client has.

    Each connection's task ends only when its nursery's tasks do, the keep-alive timer among
    them, which Hypercorn re-arms after every answer and does not stop when the client closes
    the connection: the socket then sat in CLOSE-WAIT until the timer fired (75 s). That went
    unseen while quart-trio's teardown cancelled nearly every re-arm (see `_middleware._Inflow`,
    which stopped that); one-shot clients would have piled up CLOSE-WAIT sockets by the
    thousand. The read loop ends when the client closes, the connection breaks or Hypercorn
    closes it; the timer has nothing left to guard then."""

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


async def serve_http(
    app: Flow8App,
    host: str,
    port: int,
    *,
    shutdown_event: trio.Event | None = None,
    graceful_timeout: float = 5.0,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` until `shutdown_event` is set (or the caller cancels), then return.

    `task_status.started(binds)` fires once the sockets are bound, so a supervisor starting
    children in order knows HTTP is accepting connections. On shutdown, `app.closing` is set
    first so WebSocket handlers close instead of holding the server for `graceful_timeout`.
    """
    config = hypercorn_config(host, port, graceful_timeout)
    # A restarted server reuses the app: give it a fresh closing signal.
    app.closing = trio.Event()

    async def _trigger() -> None:
        if shutdown_event is None:
            await trio.sleep_forever()
        else:
            await shutdown_event.wait()
        app.closing.set()

    try:
        await serve(app, config, shutdown_trigger=_trigger, task_status=task_status)
    except* OSError as group:
        reason = _bind_refusal(group)
        if reason is None:
            raise
        raise CannotListen(
            f"cannot listen on {config.bind[0]} (SERVER_HOST / SERVER_PORT): "
            f"{reason.strerror or reason}"
        ) from group
    finally:
        app.closing.set()


class CannotListen(Exception):
    """The HTTP port could not be bound: taken, not ours to take, or not on this host."""


_CANNOT_BIND = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


def _bind_refusal(group: BaseExceptionGroup[OSError]) -> OSError | None:
    """The error that says the port could not be bound, if that is what went wrong."""
    for error in actors.leaves(group):
        if isinstance(error, OSError) and error.errno in _CANNOT_BIND:
            return error
    return None
