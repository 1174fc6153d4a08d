"""The HTTP server as a child of the supervision tree."""

from __future__ import annotations

from typing import Any

import trio

import actors

from ._context import Flow8App
from ._serve import serve_http


def http_child(
    app: Flow8App,
    host: str,
    port: int,
    *,
    graceful_timeout: float = 5.0,
    inherited_fd: int | None = None,
    id: str = "http",
) -> actors.ChildSpec:
    """A task child serving `app`; started = sockets bound (or, in a worker, the parent's
    socket `inherited_fd` served). Asked to stop, it closes
    WebSockets, lets in-flight requests finish for up to `graceful_timeout`, and returns."""

    async def run(task_status: trio.TaskStatus[Any]) -> None:
        await serve_http(
            app,
            host,
            port,
            shutdown_event=actors.stop_requested(),
            graceful_timeout=graceful_timeout,
            inherited_fd=inherited_fd,
            task_status=task_status,
        )

    return actors.task(id, run, shutdown=graceful_timeout + 2.0)
