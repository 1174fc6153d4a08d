"""The Store: scopes over one backend, and pipelines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import structlog
import trio

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
            spec, self.mode, self.company_id, self.store.engine, self.store.keyring
        )


@attrs.define
class TenantScopeImpl(_Scope):
    pass


@attrs.define
class PipelineImpl:
    """Ordered, non-blocking writes; ``sync`` waits for all of them to be durable."""

    store: StoreImpl
    _lane: Any = None
    _pending: list[Pending] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        self._lane = self.store.engine.lane()

    def _coll(self, collection: Collection) -> ScopedCollection:
        if (
            not isinstance(collection, ScopedCollection)
            or collection.backend is not self.store.engine
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


async def _purge_expired_forever(store: StoreImpl, interval: float) -> None:
    while True:
        await trio.sleep(interval)
        try:
            await store.purge_expired()
        except StoreError as e:  # a locked or full database must not stop the writer
            log.warning("ttl_purge_failed", error=str(e))


@attrs.define
class StoreImpl:
    engine: Any  # SqliteBackend | MongoBackend
    catalog: Catalog
    keyring: Keyring | None
    ttl_interval: float = 60.0

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The store's own work, run by the ``store`` actor of the supervision tree.

        On sqlite: the group-commit writer and the batched purge of expired (TTL) documents;
        on MongoDB: the pipelines' ordered write lanes (TTL is native there). Returns once the
        store is closed; cancelled, it leaves queued writes to the next run (restartable).
        """
        if self.engine.name != "sqlite":
            await self.engine.serve_lanes(task_status=task_status)
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_purge_expired_forever, self, self.ttl_interval)
            try:
                await self.engine.serve_writer(task_status=task_status)
            finally:
                nursery.cancel_scope.cancel()

    @property
    def backend(self) -> str:
        name: str = self.engine.name
        return name

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
        n: int = await self.engine.purge_expired()
        return n

    def statistics(self) -> dict[str, Any]:
        """A snapshot for the actor tree / admin endpoint (no secrets, no credentials)."""
        stats: dict[str, Any] = self.engine.statistics()
        return stats
