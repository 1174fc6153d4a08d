"""The MCP server as the ``mcp`` child of the supervision tree: a second Hypercorn server
(trio worker) on ``MCP_PORT``."""

from __future__ import annotations

import errno
import logging
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

import actors

from ._app import McpApp


class CannotListen(Exception):
    """The MCP port could not be bound: taken, not ours to take, or not on this host."""


_CANNOT_BIND = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


def mcp_config(host: str, port: int, graceful_timeout: float) -> Config:
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = graceful_timeout
    config.accesslog = None  # every tool call is audited; no second access log
    config.errorlog = logging.getLogger("hypercorn.error")
    config.keep_alive_timeout = 75
    config.include_server_header = False
    return config


async def serve_mcp(
    app: McpApp,
    host: str,
    port: int,
    *,
    shutdown_event: trio.Event | None = None,
    graceful_timeout: float = 5.0,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until ``shutdown_event`` is set (or the caller cancels).

    ``task_status.started(binds)`` fires once the socket is bound. The SDK's session manager
    runs around the server; at shutdown its sessions (and their open streams) are closed
    first, while in-flight tool calls finish within ``graceful_timeout``."""
    config = mcp_config(host, port, graceful_timeout)

    async def trigger() -> None:
        if shutdown_event is None:
            await trio.sleep_forever()
        else:
            await shutdown_event.wait()
        # Open SSE streams end now: they would hold Hypercorn for its whole graceful timeout.
        app.close_sessions()

    asgi: Any = app  # Starlette-typed ASGI; Hypercorn's own types differ
    try:
        async with app.run():
            await serve(asgi, config, shutdown_trigger=trigger, task_status=task_status)
    except* OSError as group:
        reason = next(
            (e for e in actors.leaves(group) if isinstance(e, OSError) and e.errno in _CANNOT_BIND),
            None,
        )
        if reason is None:
            raise
        raise CannotListen(
            f"cannot listen on {config.bind[0]} (MCP_PORT): {reason.strerror or reason}"
        ) from group


def mcp_child(
    app: McpApp, host: str, port: int, *, graceful_timeout: float = 5.0, id: str = "mcp"
) -> actors.ChildSpec:
    """A task child serving the MCP server; started = socket bound."""

    async def run(task_status: trio.TaskStatus[Any]) -> None:
        await serve_mcp(
            app,
            host,
            port,
            shutdown_event=actors.stop_requested(),
            graceful_timeout=graceful_timeout,
            task_status=task_status,
        )

    return actors.task(id, run, shutdown=graceful_timeout + 2.0)
