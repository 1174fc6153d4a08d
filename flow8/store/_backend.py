"""What a database backend offers the store: the one seam between scopes and a database.

``StoreImpl`` and the scoped collections speak only this protocol; ``open_store`` picks the
implementation from the URL (``SqliteBackend``, ``MongoBackend`` or ``MemoryBackend``) and
nothing else asks which one it is. Filters and writes reach a backend already parsed and
checked (``Node``, ``WriteOp``), with their collection's ``CollectionSpec``.
"""

from __future__ import annotations

from typing import Any, Protocol

import trio

from ._catalog import CollectionSpec
from ._filters import Node
from ._ops import Pending, WriteOp


class WriteLane(Protocol):
    """Ordered writes of one pipeline: ``submit`` queues without waiting."""

    def submit(self, op: WriteOp) -> Pending: ...


class Backend(Protocol):
    @property
    def name(self) -> str:
        """``sqlite``, ``mongo`` or ``memory``: for statistics and logs, never for branching."""
        ...

    async def open(self) -> None:
        """Connect and ensure the catalog's indexes; raises StoreUnavailable."""

    async def aclose(self) -> None:
        """Stop taking writes, let queued ones finish, close every connection."""

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The backend's own work until :meth:`aclose` (sqlite: the group-commit writer and
        the TTL purge; MongoDB: the pipelines' write lanes; memory: the TTL purge);
        restartable."""

    async def find(
        self,
        spec: CollectionSpec,
        filter: dict[str, Any],
        node: Node,
        sort: list[tuple[str, int]],
        skip: int,
        limit: int,
    ) -> list[dict[str, Any]]: ...

    async def count(self, spec: CollectionSpec, filter: dict[str, Any], node: Node) -> int: ...

    async def write(self, op: WriteOp) -> Any:
        """Run one write and answer its result; raises the store's errors."""

    def lane(self) -> WriteLane: ...

    async def purge_expired(self) -> int:
        """Delete documents past their collection's TTL now; answers how many."""

    def statistics(self) -> dict[str, Any]:
        """A snapshot without secrets: ``backend`` (the name), ``location`` (where the data
        lives, credentials masked), and the backend's own figures."""
        ...
