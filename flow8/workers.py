"""``flow8 serve --workers N``: N instance processes under one parent, sharing one host's ports.

One Python process runs one Trio loop on one core; workers use the others. The parent:

* binds the HTTP and MCP ports itself, one socket per worker with SO_REUSEPORT (a port that
  is taken fails here, with the usual one-line error, before any worker starts), and hands
  each worker its own pair, which its Hypercorn serves (``fd://``): the kernel spreads new
  connections evenly over the sockets. A socket stays bound in the parent while its worker
  restarts, so connections that reach it wait in its backlog instead of being refused.
  Channel ports come and go as channels change, so each worker binds its block's ports
  itself with SO_REUSEPORT (``flow8.serving.open_shared_listeners``);
* starts each worker as ``flow8 serve --worker-role GROUP:K:HTTP_FD:MCP_FD``: a whole
  supervision tree with its own instance id, in a group that holds one instance index (one
  channel port block) for the host (``flow8.services.instances``);
* restarts a worker that exits (a crash, SIGKILL, the OOM killer) after 0.5 s, doubling up to
  30 s while it keeps dying within a minute of its start; its plays' leases lapse and the
  other workers resume them, so nothing is lost and nothing runs twice;
* on SIGINT or SIGTERM sends SIGTERM to every worker, which stops its tree within
  ``SHUTDOWN_GRACE_SECONDS``; one still running a few seconds after that is killed.

The parent opens no store and runs no actors: it is small enough not to fail.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence

import attrs
import trio

from .config import Settings
from .logs import get_logger
from .serving import WorkerRole, bind_listener, stop_on_signals
from .store import new_id

log = get_logger("flow8.workers")
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
HEALTHY_AFTER = 60.0  # a worker up this long had its failures forgiven
KILL_AFTER_GRACE = 5.0  # beyond SHUTDOWN_GRACE_SECONDS, before SIGKILL


@attrs.define
class _Worker:
    """One worker slot: the process now running in it and how often it died."""

    role: WorkerRole
    command: Sequence[str]
    process: trio.Process | None = None
    starts: int = 0
    delay: float = FIRST_RESTART_DELAY


def worker_command(role: WorkerRole) -> list[str]:
    return [sys.executable, "-m", "flow8", "serve", "--worker-role", role.argument()]


async def _keep_running(slot: _Worker, stopping: trio.Event, grace: float) -> None:
    """Run the slot's worker until ``stopping``; restart it whenever it exits before."""
    while not stopping.is_set():
        slot.starts += 1
        began = trio.current_time()
        process = await trio.lowlevel.open_process(
            slot.command, pass_fds=(slot.role.http_fd, slot.role.mcp_fd)
        )
        slot.process = process
        log.info("worker_started", worker=slot.role.worker, pid=process.pid, starts=slot.starts)
        async with trio.open_nursery() as watch:
            watch.start_soon(_stop_on, stopping, process, grace, slot.role.worker)
            code = await process.wait()
            watch.cancel_scope.cancel()
        if stopping.is_set():
            log.info("worker_stopped", worker=slot.role.worker, pid=process.pid, code=code)
            return
        if trio.current_time() - began >= HEALTHY_AFTER:
            slot.delay = FIRST_RESTART_DELAY
        log.warning(
            "worker_exited",
            worker=slot.role.worker,
            pid=process.pid,
            code=code,
            restart_in=slot.delay,
        )
        with trio.move_on_after(slot.delay):
            await stopping.wait()
        slot.delay = min(MAX_RESTART_DELAY, slot.delay * 2)


async def _stop_on(stopping: trio.Event, process: trio.Process, grace: float, worker: int) -> None:
    await stopping.wait()
    process.send_signal(signal.SIGTERM)
    with trio.move_on_after(grace + KILL_AFTER_GRACE):
        await process.wait()
        return
    log.error("worker_killed", worker=worker, pid=process.pid, after_seconds=grace)
    process.kill()


async def supervise(settings: Settings, sockets: list[tuple[socket.socket, socket.socket]]) -> None:
    """Run one worker per (HTTP, MCP) socket pair until SIGINT or SIGTERM."""
    group = new_id()
    run_dir = tempfile.mkdtemp(prefix="flow8-workers-")  # 0700: the workers' metrics sockets
    slots = [
        _Worker(role, worker_command(role))
        for role in (
            WorkerRole(group, k, http.fileno(), mcp.fileno(), run_dir)
            for k, (http, mcp) in enumerate(sockets, start=1)
        )
    ]
    try:
        await _run(settings, slots, group)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


async def _run(settings: Settings, slots: list[_Worker], group: str) -> None:
    stopping = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_on_signals, signals, stopping)
            async with trio.open_nursery() as workers:
                for slot in slots:
                    workers.start_soon(
                        _keep_running, slot, stopping, settings.shutdown_grace_seconds
                    )
                log.info("flow8_workers_started", workers=len(slots), group=group)
            nursery.cancel_scope.cancel()
    log.info("flow8_stopped")


def run_workers(settings: Settings, count: int) -> int:
    """Entry point of ``flow8 serve --workers N`` (N > 1); returns the exit code."""
    host = settings.server_host

    def listener(port: int, setting: str) -> socket.socket:
        return bound.enter_context(bind_listener(host, port, setting, reuse_port=True))

    with contextlib.ExitStack() as bound:
        sockets = [
            (
                listener(settings.server_port, "SERVER_HOST / SERVER_PORT"),
                listener(settings.mcp_port, "SERVER_HOST / MCP_PORT"),
            )
            for _ in range(count)
        ]
        trio.run(supervise, settings, sockets)
    return 0


__all__ = ["run_workers", "worker_command"]
