"""The MCP server as the ``mcp`` child of the supervision tree: a second Hypercorn server
(trio worker) on ``MCP_PORT``."""

from __future__ import annotations

from typing import Any

import trio
from hypercorn.trio import serve

import actors
from flow8.serving import CannotListen, cannot_listen, hypercorn_config

from ._app import McpApp

__all__ = ["CannotListen", "mcp_child", "serve_mcp"]


async def serve_mcp(
    app: McpApp,
    host: str,
    port: int,
    *,
    shutdown_event: trio.Event | None = None,
    graceful_timeout: float = 5.0,
    inherited_fd: int | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until ``shutdown_event`` is set (or the caller cancels).

    ``task_status.started(binds)`` fires once the socket is bound. The SDK's session manager
    runs around the server; at shutdown its sessions (and their open streams) are closed
    first, while in-flight tool calls finish within ``graceful_timeout``."""
    config = hypercorn_config(host, port, graceful_timeout, inherited_fd=inherited_fd)

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
        refusal = cannot_listen(group, config.bind[0], "SERVER_HOST / MCP_PORT")
        if refusal is None:
            raise
        raise refusal from group


def mcp_child(
    app: McpApp,
    host: str,
    port: int,
    *,
    graceful_timeout: float = 5.0,
    inherited_fd: int | None = None,
    id: str = "mcp",
) -> actors.ChildSpec:
    """A task child serving the MCP server; started = socket bound (or, in a worker, the
    parent's socket ``inherited_fd`` served)."""

    async def run(task_status: trio.TaskStatus[Any]) -> None:
        await serve_mcp(
            app,
            host,
            port,
            shutdown_event=actors.stop_requested(),
            graceful_timeout=graceful_timeout,
            inherited_fd=inherited_fd,
            task_status=task_status,
        )

    return actors.task(id, run, shutdown=graceful_timeout + 2.0)
