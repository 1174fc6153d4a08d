"""The metrics of every worker of one ``flow8 serve --workers N``, whichever worker a scrape
reaches.

The kernel hands ``GET /metrics`` to one worker like any other request, and each worker
counts its own plays, requests, actors and commits. So each worker also answers its own
exposition on a Unix socket in the directory its parent made for the group (private to the
user, removed by the parent at exit), and the worker a scrape reaches gathers its peers'
through them and serves them all, each sample labelled ``worker="<k>"``. A peer that does not
answer within a second (restarting, stuck) is left out of that scrape rather than failing it.
Series every worker reports alike (the play queue, counted in the shared store) appear once
per worker: aggregate them with ``max``.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import attrs
import trio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from flow8.logs import get_logger

log = get_logger("flow8.metrics")
MAX_EXPOSITION_BYTES = 16 * 1024 * 1024


@attrs.define
class WorkerPeers:
    """This worker's place among the workers of its group (see the module docstring)."""

    directory: Path
    worker: int
    timeout: float = 1.0

    def socket_of(self, worker: int) -> Path:
        return self.directory / f"worker-{worker}.sock"

    async def serve(
        self,
        render: Callable[[], Awaitable[bytes]],
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Answer this worker's own exposition to each peer that connects."""
        path = self.socket_of(self.worker)
        path.unlink(missing_ok=True)  # left by this worker's previous incarnation
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        await sock.bind(str(path))
        sock.listen(16)
        task_status.started()

        async def answer(stream: trio.SocketStream) -> None:
            async with stream:
                await stream.send_all(await render())

        try:
            await trio.serve_listeners(answer, [trio.SocketListener(sock)])
        finally:
            path.unlink(missing_ok=True)

    async def gather(self) -> list[tuple[int, bytes]]:
        """The expositions of the other workers that answered in time."""
        found: list[tuple[int, bytes]] = []
        for path in sorted(self.directory.glob("worker-*.sock")):
            number = path.stem.removeprefix("worker-")
            if not number.isdigit() or int(number) == self.worker:
                continue
            with trio.move_on_after(self.timeout):
                try:
                    found.append((int(number), await _read_all(path)))
                except OSError as e:  # restarting, or gone: this scrape goes without it
                    log.info("metrics_worker_unreachable", worker=int(number), error=str(e))
        return found


async def _read_all(path: Path) -> bytes:
    stream = await trio.open_unix_socket(str(path))
    chunks: list[bytes] = []
    size = 0
    async with stream:
        while chunk := await stream.receive_some(65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_EXPOSITION_BYTES:
                raise OSError("the exposition is larger than 16 MiB")
    return b"".join(chunks)


@attrs.define(eq=False)  # a registry keys its collectors by identity
class _Families:
    families: tuple[Metric, ...]

    def collect(self) -> Iterable[Metric]:
        return self.families


def merge_expositions(expositions: Iterable[tuple[int, bytes]]) -> bytes:
    """One exposition of several workers' ones, every sample labelled with its worker."""
    families: dict[tuple[str, str], Metric] = {}
    for worker, text in expositions:
        for family in text_string_to_metric_families(text.decode()):
            for sample in family.samples:
                sample.labels["worker"] = str(worker)
            known = families.get((family.name, family.type))
            if known is None:
                families[(family.name, family.type)] = family
            else:
                known.samples.extend(family.samples)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(tuple(families.values())))
    return generate_latest(registry)
