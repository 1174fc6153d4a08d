"""The audit writer as a child of the supervision tree."""

from __future__ import annotations

from typing import Any

import trio

import actors

from ._log import AuditLog


def audit_child(log: AuditLog, *, id: str = "audit") -> actors.ChildSpec:
    """A task child that writes audit batches; asked to stop, it flushes everything recorded
    so far and returns (bounded by the log's `flush_timeout`)."""

    async def run(task_status: trio.TaskStatus[Any]) -> None:
        await log.serve(stop=actors.stop_requested(), task_status=task_status)

    return actors.task(id, run, shutdown=log.flush_timeout + 1.0)
