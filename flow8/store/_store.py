"""The Store: scopes over one backend, and pipelines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import structlog
import trio

from ._backend import Backend, WriteLane
from ._catalog import Catalog
from ._crypto import Keyring
from ._ops import Pending
from ._port import Collection, Filter, Update
from ._scope import Mode, ScopedCollection, check_company_id
from .exceptions import StoreError, TenancyError

log = structlog.get_logger("flow8.store")


@attrs.define
class _Scope:
    store: StoreImpl
    mode: Mode
    company_id: str = ""

    def collection(self, name: str) -> ScopedCollection:
        spec = self.store.catalog.get(name)
        if self.mode == "system" and spec.scope != "system":
            raise TenancyError(
                f"{name!r} is a tenant collection: reach it through store.tenant(company_id)"
            )
        if self.mode != "system" and spec.scope != "tenant":
            raise TenancyError(f"{name!r} is a system collection: reach it through store.system")
        if self.mode == "cross" and not spec.cross_tenant:
            raise TenancyError(
                f"{name!r} is not open to cross-tenant jobs (catalog cross_tenant=False): "
                "reach it through store.tenant(company_id)"
            )
        return ScopedCollection(
            spec, self.mode, self.company_id, self.store.backend, self.store.keyring
        )


@attrs.define
class TenantScopeImpl(_Scope):
    pass


@attrs.define
class PipelineImpl:
    """Ordered, non-blocking writes; ``sync`` waits for all of them to be durable."""

    store: StoreImpl
    _lane: WriteLane = attrs.field(init=False)
    _pending: list[Pending] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        self._lane = self.store.backend.lane()

    def _coll(self, collection: Collection) -> ScopedCollection:
        if (
            not isinstance(collection, ScopedCollection)
            or collection.backend is not self.store.backend
        ):
            raise StoreError("pipeline writes need a collection obtained from this store")
        return collection

    def insert_one(self, collection: Collection, doc: Mapping[str, Any]) -> str:
        op = self._coll(collection).insert_op([doc])
        self._pending.append(self._lane.submit(op))
        doc_id: str = op.docs[0]["_id"]
        return doc_id

    def update_one(
        self, collection: Collection, filter: Filter, update: Update, *, upsert: bool = False
    ) -> None:
        op = self._coll(collection).update_op(filter, update, upsert, False)
        self._pending.append(self._lane.submit(op))

    def delete_one(self, collection: Collection, filter: Filter) -> None:
        op = self._coll(collection).delete_op(filter, False)
        self._pending.append(self._lane.submit(op))

    async def sync(self) -> None:
        pending, self._pending = self._pending, []
        await _all_durable(pending)

    def synced(self) -> Callable[[], Awaitable[None]]:
        pending = list(self._pending)
        return lambda: _all_durable(pending)


async def _all_durable(pending: list[Pending]) -> None:
    """Wait for every write; raise the first error among them."""
    first: StoreError | None = None
    for p in pending:
        await p.done.wait()
        if p.error is not None and first is None:
            first = p.error
    if first is not None:
        raise first


@attrs.define
class StoreImpl:
    backend: Backend
    catalog: Catalog
    keyring: Keyring | None

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The store's own work, run by the ``store`` actor of the supervision tree (the
        backend's: see ``Backend.serve``). Returns once the store is closed; cancelled, it
        leaves queued writes to the next run (restartable)."""
        await self.backend.serve(task_status=task_status)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def system(self) -> _Scope:
        return _Scope(self, "system")

    @property
    def cross_tenant(self) -> _Scope:
        return _Scope(self, "cross")

    def tenant(self, company_id: str) -> TenantScopeImpl:
        return TenantScopeImpl(self, "tenant", check_company_id(company_id))

    def pipeline(self) -> PipelineImpl:
        return PipelineImpl(self)

    async def purge_expired(self) -> int:
        n: int = await self.backend.purge_expired()
        return n

    def statistics(self) -> dict[str, Any]:
        """A snapshot for the actor tree / admin endpoint (no secrets, no credentials)."""
        stats: dict[str, Any] = self.backend.statistics()
        return stats
