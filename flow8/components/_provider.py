"""What a provider is, and what the server hands every provider it opens.

A provider is one component config made live: a storage bucket, a database, an SMTP server.
Modules never hold one directly; they go through the seam (``_seam.ComponentHandle``), which
names each use an *operation* with a JSON-like input and output (bytes allowed), so every
call can be timed, recorded and, in a later issue, replayed without the outside world.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio

from flow8.outbound import OutboundPolicy, Resolver, SystemResolver

Operation = Callable[[Mapping[str, Any]], Awaitable[Any]]


class Provider(Protocol):
    """A live component. ``operations`` maps an operation name (``read``, ``query``,
    ``send``, ...) to its implementation; each kind documents the operations its providers
    all answer (``_kinds.KINDS``)."""

    @property
    def operations(self) -> Mapping[str, Operation]: ...

    async def check(self) -> str:
        """A real connectivity check: a short line saying what answered, or raises
        :class:`~flow8.components.exceptions.ComponentError` saying what failed."""
        ...

    async def aclose(self) -> None:
        """Release connections and clients (the config changed or the server stops)."""
        ...


@attrs.frozen
class ProviderEnv:
    """What the server lends a provider: where a company's files live, which networks its
    components may reach, and the worker-thread limiter for libraries that block.

    * ``files_dir``: a company's own directory; relative local paths (storage roots, sqlite
      files) resolve under it.
    * ``allowed_roots``: absolute directories an operator opened to components (config
      ``components.localRoots``); nothing else on the server's disk is reachable.
    * ``network``: the policy every host a component connects to is checked against (db,
      SMTP, S3 and GCS endpoints), so a tenant's config cannot aim at the server's own
      network unless an operator allowed that host (config ``components.allowedHosts``).
    * ``threads``: blocking libraries (boto3, psycopg, PyMySQL, smtplib, sqlite3) run in
      worker threads behind this limiter; the event loop never waits on their I/O.
    """

    company_id: str
    files_dir: Path
    allowed_roots: tuple[Path, ...] = ()
    network: OutboundPolicy = attrs.field(factory=OutboundPolicy)
    resolver: Resolver = attrs.field(factory=SystemResolver)
    threads: trio.CapacityLimiter = attrs.field(factory=lambda: trio.CapacityLimiter(8))

    async def in_thread(self, fn: Callable[[], Any]) -> Any:
        """Run a blocking call in a worker thread (abandoned on cancellation: the library's
        own timeout ends it)."""
        return await trio.to_thread.run_sync(fn, limiter=self.threads, abandon_on_cancel=True)
