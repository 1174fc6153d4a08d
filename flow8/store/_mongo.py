"""The MongoDB backend: pymongo's sync client in worker threads.

pymongo's async client only runs on asyncio, so every call goes through
``trio.to_thread.run_sync`` behind a CapacityLimiter no larger than the connection pool. Writes
use majority write concern and retryable writes. The client can be injected, which is how the
contract suite runs this same code on mongomock.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import trio

from ._catalog import Catalog, CollectionSpec
from ._filters import Node, equality_seed
from ._mongo_support import Lane, aware, map_error, redact_url
from ._ops import DeleteOp, FindAndModifyOp, InsertOp, PurgeOp, UpdateOp, WriteOp
from ._port import UpdateResult
from ._values import MAX_DOCUMENT_BYTES, ttl_cutoff, utcnow
from .exceptions import (
    DuplicateKey,
    InvalidDocument,
    StoreClosed,
    StoreError,
    StoreUnavailable,
)

T = TypeVar("T")


@attrs.define
class MongoBackend:
    client: Any
    database: str
    catalog: Catalog
    url: str = "mongodb://"
    pool_size: int = 16
    name: str = "mongo"
    _limiter: trio.CapacityLimiter = attrs.field(init=False)
    _nursery: trio.Nursery | None = None
    _stopping: trio.Event = attrs.field(factory=trio.Event)
    _lanes_done: trio.Event = attrs.field(factory=trio.Event)
    _serving: bool = False
    _closed: bool = False

    def __attrs_post_init__(self) -> None:
        self._limiter = trio.CapacityLimiter(self.pool_size)

    def _coll(self, spec: CollectionSpec) -> Any:
        from pymongo import WriteConcern

        db = self.client[self.database]
        return db.get_collection(spec.name, write_concern=WriteConcern(w="majority"))

    async def _run(self, fn: Callable[[], T], spec: CollectionSpec | None, where: str) -> T:
        if self._closed:
            raise StoreClosed("the store is closed")

        def call() -> T:
            try:
                return fn()
            except StoreError:
                raise
            except Exception as e:
                err = map_error(e, spec, where)
                raise err from e

        return await trio.to_thread.run_sync(call, limiter=self._limiter)

    def statistics(self) -> dict[str, Any]:
        return {
            "backend": "mongo",
            "location": f"{redact_url(self.url)} (database {self.database})",
            "url": redact_url(self.url),
            "database": self.database,
        }

    def spawn(self, fn: Callable[[], Any]) -> None:
        if self._nursery is None:
            raise StoreClosed("the store is closed")
        self._nursery.start_soon(fn)

    # -- start-up --------------------------------------------------------------------------

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the pipelines' ordered write lanes until :meth:`aclose`; restartable
        (expired documents are MongoDB's own TTL monitor's work).

        Lanes still running when it is asked to end finish first (each write is bounded by
        the driver's timeouts), so a pipelined write is never abandoned half-way.
        """
        self._stopping = trio.Event()
        self._lanes_done = trio.Event()
        self._serving = True
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await self._stopping.wait()
                self._nursery = None  # no new lanes; the nursery waits for running ones
        finally:
            self._nursery = None
            self._serving = False
            self._lanes_done.set()

    async def open(self, attempts: int = 5) -> None:
        """Ping with exponential backoff, then ensure every catalog index."""
        delay = 0.25
        for attempt in range(attempts):
            try:
                await self._run(lambda: self.client.admin.command("ping"), None, "ping")
                break
            except StoreUnavailable as e:
                if attempt == attempts - 1:
                    raise StoreUnavailable(
                        f"cannot reach MongoDB at {redact_url(self.url)} after {attempts} attempts"
                    ) from e
                await trio.sleep(delay)
                delay = min(delay * 2, 4.0)
        for spec in self.catalog:
            await self._run(functools.partial(self._ensure_indexes, spec), spec, "indexes")

    def _ensure_indexes(self, spec: CollectionSpec) -> None:
        from pymongo.errors import OperationFailure

        coll = self._coll(spec)
        existing = coll.index_information()
        for ix in spec.indexes:
            opts: dict[str, Any] = {"name": ix.name}
            if ix.unique:
                opts["unique"] = True
                # Documents missing an indexed field do not collide (as on sqlite).
                opts["partialFilterExpression"] = {f: {"$exists": True} for f in ix.fields}
            if ix.expire_after_seconds is not None:
                opts["expireAfterSeconds"] = ix.expire_after_seconds
            try:
                coll.create_index(list(ix.keys), **opts)
            except OperationFailure:
                if ix.name not in existing:
                    raise
                coll.drop_index(ix.name)  # options changed: rebuild under the same name
                coll.create_index(list(ix.keys), **opts)

    async def aclose(self) -> None:
        self._stopping.set()
        if self._serving:
            await self._lanes_done.wait()
        self._closed = True

    # -- reads ---------------------------------------------------------------------------

    def _query(self, spec: CollectionSpec, filter: dict[str, Any]) -> dict[str, Any]:
        ttl = spec.ttl
        if ttl is None:
            return filter
        cutoff = ttl_cutoff(utcnow(), ttl.expire_after_seconds or 0)
        # MongoDB's TTL monitor runs once a minute; expired documents are hidden meanwhile.
        alive = {"$nor": [{ttl.fields[0]: {"$lt": cutoff}}]}
        return {"$and": [filter, alive]} if filter else alive

    async def find(
        self,
        spec: CollectionSpec,
        filter: dict[str, Any],
        node: Node | None,
        sort: list[tuple[str, int]],
        skip: int,
        limit: int,
    ) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            cursor = self._coll(spec).find(self._query(spec, filter))
            if sort:
                cursor = cursor.sort(sort)
            if skip:
                cursor = cursor.skip(skip)
            if limit:
                cursor = cursor.limit(limit)
            return [aware(d) for d in cursor]

        return await self._run(run, spec, "find")

    async def count(self, spec: CollectionSpec, filter: dict[str, Any], node: Node) -> int:
        return await self._run(
            lambda: int(self._coll(spec).count_documents(self._query(spec, filter))), spec, "count"
        )

    # -- writes --------------------------------------------------------------------------

    def lane(self) -> Lane:
        return Lane(self)

    async def write(self, op: WriteOp) -> Any:
        try:
            if isinstance(op, InsertOp):
                return await self._insert(op)
            if isinstance(op, UpdateOp):
                return await self._update(op)
            if isinstance(op, FindAndModifyOp):
                return await self._find_and_modify(op)
            if isinstance(op, DeleteOp):
                return await self._delete(op)
            assert isinstance(op, PurgeOp)
            return 0  # MongoDB's own TTL monitor deletes expired documents
        except DuplicateKey as e:
            raise await self._name_duplicate(op.spec, e) from e.__cause__

    async def _name_duplicate(self, spec: CollectionSpec, err: DuplicateKey) -> DuplicateKey:
        cause = err.__cause__
        details = getattr(cause, "details", None) or {}
        pattern = details.get("keyPattern")
        if pattern:
            for ix in spec.indexes:
                if set(ix.fields) == set(pattern):
                    return DuplicateKey(spec.name, ix.name)
            if set(pattern) == {"_id"}:
                return DuplicateKey(spec.name, "_id_")
        text = str(cause)
        for ix in spec.indexes:
            if f"index: {ix.name} " in text:
                return DuplicateKey(spec.name, ix.name)
        if "_id_" in text:
            return DuplicateKey(spec.name, "_id_")
        uniques = [ix for ix in spec.indexes if ix.unique]
        return DuplicateKey(spec.name, uniques[0].name if len(uniques) == 1 else "_id_")

    async def _insert(self, op: InsertOp) -> list[str]:
        docs = [dict(d) for d in op.docs]

        def run() -> None:
            import bson

            for d in docs:  # checked before anything is sent, so a batch is refused whole
                if len(bson.encode(d)) > MAX_DOCUMENT_BYTES:
                    raise InvalidDocument(f"{op.spec.name} {d['_id']!r}: larger than 16 MB")
            if len(docs) == 1:
                self._coll(op.spec).insert_one(docs[0])
            else:
                self._insert_many(op.spec, docs)

        await self._run(run, op.spec, "insert")
        return [d["_id"] for d in op.docs]

    def _insert_many(self, spec: CollectionSpec, docs: list[dict[str, Any]]) -> None:
        from pymongo.errors import BulkWriteError, DuplicateKeyError

        coll = self._coll(spec)
        try:
            coll.insert_many(docs, ordered=True)
        except BulkWriteError as e:
            # An ordered insert stops at the first failure; remove what it did insert so the
            # batch is all-or-nothing, as on sqlite.
            done = [d["_id"] for d in docs[: int(e.details.get("nInserted", 0))]]
            if done:
                coll.delete_many({"_id": {"$in": done}})
            errors = e.details.get("writeErrors") or [{}]
            if errors[0].get("code") == 11000:
                dup = DuplicateKeyError(errors[0].get("errmsg", "duplicate key"), 11000, errors[0])
                raise dup from e
            raise

    def _mongo_update(self, op: UpdateOp | FindAndModifyOp, doc_id: str | None) -> dict[str, Any]:
        update = op.sealer(doc_id).doc if (op.sealer and doc_id) else op.update.doc
        out = {k: dict(v) for k, v in update.items()}
        if op.upsert:
            seed = equality_seed(op.node)
            if "_id" not in seed:
                seed["_id"] = doc_id or op.new_id
            # Seed the upserted document from the filter's equalities explicitly: the filter
            # sent is wrapped in $and (TTL, _id), which not every server version (nor
            # mongomock) mines for equality fields.
            touched = [p for fields in out.values() for p in fields]
            for path, value in seed.items():
                if not any(
                    t == path or t.startswith(path + ".") or path.startswith(t + ".")
                    for t in touched
                ):
                    out.setdefault("$setOnInsert", {})[path] = value
        return out

    async def _target(self, op: UpdateOp | FindAndModifyOp) -> str | None:
        sort = list(op.sort) if isinstance(op, FindAndModifyOp) else []
        found = await self.find(op.spec, op.filter, None, sort, 0, 1)
        return found[0]["_id"] if found else None

    async def _clear_expired(self, op: UpdateOp | FindAndModifyOp) -> None:
        """Before an upsert: drop expired documents matching the filter, which MongoDB's TTL
        monitor (once a minute) may not have removed yet, so they cannot collide."""
        ttl = op.spec.ttl
        if not op.upsert or ttl is None:
            return
        cutoff = ttl_cutoff(utcnow(), ttl.expire_after_seconds or 0)
        q = {"$and": [op.filter, {ttl.fields[0]: {"$lt": cutoff}}]}
        await self._run(lambda: self._coll(op.spec).delete_many(q), op.spec, "ttl")

    async def _update(self, op: UpdateOp) -> UpdateResult:
        await self._clear_expired(op)
        if op.sealer is not None:
            return await self._sealed_update(op)
        query = self._query(op.spec, op.filter)
        upd = self._mongo_update(op, None)

        def run() -> UpdateResult:
            coll = self._coll(op.spec)
            fn = coll.update_many if op.multi else coll.update_one
            r = fn(query, upd, upsert=op.upsert)
            upserted = r.upserted_id
            return UpdateResult(r.matched_count, r.modified_count, upserted)

        return await self._run(run, op.spec, "update")

    async def _sealed_update(self, op: UpdateOp) -> UpdateResult:
        # Secrets are bound to the id of the document they land in, so resolve ids first and
        # update each by id (and the original filter, in case it stopped matching meanwhile).
        matched = modified = 0
        ids = (
            [d["_id"] for d in await self.find(op.spec, op.filter, None, [], 0, 0)]
            if op.multi
            else [i for i in [await self._target(op)] if i]
        )
        for doc_id in ids:
            q = {"$and": [op.filter, {"_id": doc_id}]}
            upd = self._mongo_update(op, doc_id)

            def run(q: dict[str, Any] = q, upd: dict[str, Any] = upd) -> tuple[int, int]:
                r = self._coll(op.spec).update_one(self._query(op.spec, q), upd)
                return r.matched_count, r.modified_count

            m, n = await self._run(run, op.spec, "update")
            matched += m
            modified += n
        if matched or not op.upsert:
            return UpdateResult(matched, modified, None)
        new_id = equality_seed(op.node).get("_id", op.new_id)
        q = {"$and": [op.filter, {"_id": new_id}]}
        upd = self._mongo_update(op, new_id)

        def upsert() -> UpdateResult:
            r = self._coll(op.spec).update_one(self._query(op.spec, q), upd, upsert=True)
            return UpdateResult(r.matched_count, r.modified_count, r.upserted_id)

        return await self._run(upsert, op.spec, "upsert")

    async def _find_and_modify(self, op: FindAndModifyOp) -> dict[str, Any] | None:
        from pymongo import ReturnDocument

        await self._clear_expired(op)
        doc_id = None
        query = op.filter
        if op.sealer is not None:
            doc_id = await self._target(op)
            if doc_id is None:
                if not op.upsert:
                    return None
                doc_id = equality_seed(op.node).get("_id", op.new_id)
            query = {"$and": [op.filter, {"_id": doc_id}]}
        upd = self._mongo_update(op, doc_id)
        after = ReturnDocument.AFTER if op.return_after else ReturnDocument.BEFORE

        def run() -> dict[str, Any] | None:
            doc = self._coll(op.spec).find_one_and_update(
                self._query(op.spec, query),
                upd,
                sort=list(op.sort) or None,
                upsert=op.upsert,
                return_document=after,
            )
            return None if doc is None else aware(doc)

        return await self._run(run, op.spec, "find_one_and_update")

    async def _delete(self, op: DeleteOp) -> int:
        def run() -> int:
            coll = self._coll(op.spec)
            fn = coll.delete_many if op.multi else coll.delete_one
            return int(fn(self._query(op.spec, op.filter)).deleted_count)

        return await self._run(run, op.spec, "delete")

    async def purge_expired(self) -> int:
        return 0
