"""Run a flow8 app under Hypercorn's trio worker as a supervised service."""

from __future__ import annotations

import trio
from hypercorn.trio import serve

from flow8.serving import CannotListen, cannot_listen, hypercorn_config

from ._context import Flow8App

__all__ = ["CannotListen", "hypercorn_config", "serve_http"]


async def serve_http(
    app: Flow8App,
    host: str,
    port: int,
    *,
    shutdown_event: trio.Event | None = None,
    graceful_timeout: float = 5.0,
    inherited_fd: int | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` until `shutdown_event` is set (or the caller cancels), then return.

    `task_status.started(binds)` fires once the sockets are bound, so a supervisor starting
    children in order knows HTTP is accepting connections. On shutdown, `app.closing` is set
    first so WebSocket handlers close instead of holding the server for `graceful_timeout`.
    """
    config = hypercorn_config(host, port, graceful_timeout, inherited_fd=inherited_fd)
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
        refusal = cannot_listen(group, config.bind[0], "SERVER_HOST / SERVER_PORT")
        if refusal is None:
            raise
        raise refusal from group
    finally:
        app.closing.set()
