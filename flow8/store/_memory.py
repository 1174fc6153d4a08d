"""The memory backend: every collection in a dict, for tests that run on Trio's virtual clock.

SQLite's writer and readers run in worker threads, and Trio's autojump clock cannot see a
thread's work: it jumps virtual time forward while a batch is still committing, so a test's
timeouts fire at once. This backend never leaves the Trio thread and never sleeps outside
the TTL purge, so a test on ``MockClock(autojump_threshold=0)`` runs hours of virtual time in
milliseconds.

* Writes run to completion when they are submitted (no await inside an op), so each is atomic
  with respect to every other task, and a pipeline's writes run in submission order. The
  ``Pending`` is resolved before ``submit`` returns: ``await pending.wait()`` is one
  checkpoint. Each op is all-or-nothing through an undo log (see ``_memtable``).
* Every read and write awaits exactly one checkpoint, as every Trio I/O call does.
* Time for TTL is the wall time at open plus the time Trio's clock has run since: under a
  MockClock, documents expire in virtual time; ``serve`` purges them every ``ttl_interval``
  seconds of that same clock.
* Documents are stored and returned as deep copies in plain JSON types (dict, list, str, int,
  float, bool, None, UTC datetime), the form the other backends read back; a caller mutating
  a document it inserted or read changes nothing stored.

Filters, sorts, TTL and unique keys follow the sqlite backend's semantics (``_matching``);
updates are ``_updates.apply_update``, as on sqlite.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import structlog
import trio

from ._catalog import Catalog, CollectionSpec
from ._filters import Node, equality_seed
from ._matching import expired, expiry_cutoff, matches, pinned_id, sort_documents
from ._memtable import Table, Undo, rollback
from ._ops import DeleteOp, FindAndModifyOp, InsertOp, Pending, UpdateOp, WriteOp
from ._port import UpdateResult
from ._updates import apply_update, seed_document
from ._values import check_size, dumps, utcnow
from .exceptions import InvalidDocument, StoreClosed, StoreError, UpdateFailed

log = structlog.get_logger("flow8.store")

_ATOMS = frozenset({str, int, float, bool, type(None), datetime})


def clone(value: Any) -> Any:
    """A deep copy in plain types: dicts and lists rebuilt (a prepared value's subclasses
    become plain ones, as a JSON round trip makes them), immutable atoms shared."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    if isinstance(value, datetime):  # a subclass (a test's frozen clock): a plain one
        v = value.astimezone(UTC)
        return datetime(
            v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, tzinfo=UTC
        )
    return value


def _copy(doc: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = clone(doc)
    return copied


def _check_size(spec: CollectionSpec, doc: dict[str, Any], marked: bool | None = None) -> None:
    # What sqlite measures (the document's storage JSON); encoding also proves it storable.
    check_size(f"{spec.name} {doc.get('_id')!r}", dumps(doc, marked=marked))


@attrs.define
class MemoryBackend:
    catalog: Catalog
    label: str = ""  # the part of memory://label after the scheme: for logs only
    ttl_interval: float = 60.0  # seconds (of Trio's clock) between purges of expired documents
    name: str = "memory"
    tables: dict[str, Table] = attrs.field(init=False)
    writes: int = 0  # write ops that succeeded
    _origin: tuple[datetime, float] | None = None  # (wall time, Trio time) at open
    _stop: trio.Event = attrs.field(factory=trio.Event)
    _closed: bool = False

    def __attrs_post_init__(self) -> None:
        self.tables = {spec.name: Table(spec) for spec in self.catalog}

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        self.now()  # fixes the clock's origin
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        self._closed = True
        self._stop.set()
        await trio.lowlevel.checkpoint()

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The TTL purge every ``ttl_interval`` seconds until :meth:`aclose`; restartable.
        (Writes need no writer: they run when submitted.)"""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._purge_expired_forever)
            task_status.started()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    async def _purge_expired_forever(self) -> None:
        while True:
            await trio.sleep(self.ttl_interval)
            try:
                await self.purge_expired()
            except StoreError as e:
                log.warning("ttl_purge_failed", error=str(e))

    def now(self) -> datetime:
        """The backend's time for TTL (milliseconds, UTC), moving with Trio's clock."""
        if self._origin is None:
            self._origin = (utcnow(), trio.current_time())
        wall, start = self._origin
        t = wall + timedelta(seconds=trio.current_time() - start)
        return t.replace(microsecond=t.microsecond // 1000 * 1000)

    def statistics(self) -> dict[str, Any]:
        return {
            "backend": "memory",
            "location": f"memory://{self.label}",
            "documents": sum(len(t.docs) for t in self.tables.values()),
            "writes": self.writes,
        }

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")

    # -- reads ---------------------------------------------------------------------------

    def _select(
        self,
        spec: CollectionSpec,
        node: Node,
        now: datetime,
        sort: list[tuple[str, int]] | tuple[tuple[str, int], ...] = (),
        stop: int = 0,
    ) -> list[dict[str, Any]]:
        """The live stored documents matching ``node`` (not copies), sorted; at most ``stop``
        of them when nonzero and unsorted."""
        docs = self.tables[spec.name].docs
        doc_id = pinned_id(node)
        if doc_id is not None:
            one = docs.get(doc_id)
            candidates: Any = () if one is None else (one,)
        else:
            candidates = docs.values()
        cutoff = expiry_cutoff(spec, now)
        out = []
        for doc in candidates:
            if matches(spec, doc, node) and not expired(spec, doc, cutoff):
                out.append(doc)
                if stop and not sort and len(out) >= stop:
                    break
        return sort_documents(out, sort) if sort else out

    async def find(
        self,
        spec: CollectionSpec,
        filter: dict[str, Any],
        node: Node,
        sort: list[tuple[str, int]],
        skip: int,
        limit: int,
    ) -> list[dict[str, Any]]:
        await trio.lowlevel.checkpoint()  # first: the answer is current when it is returned
        self._check_open()
        found = self._select(spec, node, self.now(), sort, skip + limit if limit else 0)
        page = found[skip : skip + limit] if limit else found[skip:]
        return [_copy(d) for d in page]

    async def count(self, spec: CollectionSpec, filter: dict[str, Any], node: Node) -> int:
        await trio.lowlevel.checkpoint()
        self._check_open()
        return len(self._select(spec, node, self.now()))

    # -- writes --------------------------------------------------------------------------

    def lane(self) -> MemoryBackend:
        return self  # writes run as they are submitted: already in order

    def submit(self, op: WriteOp) -> Pending:
        """Run ``op`` now and answer a resolved ``Pending`` (its error, if it failed)."""
        self._check_open()
        pending = Pending()
        undo: Undo = []
        try:
            result = self._execute(op, self.now(), undo)
        except Exception as e:
            rollback(undo)
            if isinstance(e, StoreError):
                pending.fail(e)
            else:
                # As on sqlite: whatever else one op raises is that op's failure alone.
                err = StoreError(f"{op.spec.name}: the write could not be made: {type(e).__name__}")
                err.__cause__ = e
                pending.fail(err)
        else:
            self.writes += 1
            pending.resolve(result)
        return pending

    async def write(self, op: WriteOp) -> Any:
        return await self.submit(op).wait()

    def _execute(self, op: WriteOp, now: datetime, undo: Undo) -> Any:
        table = self.tables[op.spec.name]
        if isinstance(op, InsertOp):
            docs = [clone(d) for d in op.docs]
            for doc in docs:
                _check_size(op.spec, doc, op.marked)
            for doc in docs:
                table.insert(doc, undo)
            return [d["_id"] for d in docs]
        if isinstance(op, UpdateOp):
            return self._update(op, now, undo)
        if isinstance(op, FindAndModifyOp):
            return self._find_and_modify(op, now, undo)
        if isinstance(op, DeleteOp):
            rows = self._select(op.spec, op.node, now, stop=0 if op.multi else 1)
            for doc in rows:
                table.remove(doc["_id"], undo)
            return len(rows)
        return self._purge(op.spec, now, undo, op.limit)

    def _updated(
        self, op: UpdateOp | FindAndModifyOp, doc: dict[str, Any], inserting: bool
    ) -> tuple[dict[str, Any], bool]:
        """The document after the update (a new one; ``doc`` is untouched), as sqlite makes
        it: secrets sealed for its id, ``_id`` immutable, indexed scalars checked."""
        update = op.sealer(doc["_id"]) if op.sealer else op.update
        new, changed = apply_update(doc, update, inserting=inserting)
        if new.get("_id") != doc.get("_id") and not inserting:
            raise UpdateFailed("the _id field is immutable")
        op.spec.check_scalar_fields(new)
        return new, changed

    def _replace(self, spec: CollectionSpec, new: dict[str, Any], undo: Undo) -> None:
        _check_size(spec, new)
        self.tables[spec.name].replace(new, undo)

    def _upsert(self, op: UpdateOp | FindAndModifyOp, now: datetime, undo: Undo) -> dict[str, Any]:
        assert op.new_id is not None
        base = seed_document(equality_seed(op.node))
        base.setdefault("_id", op.new_id)
        if not isinstance(base["_id"], str) or not base["_id"]:
            raise InvalidDocument(f"{op.spec.name}: an upsert's _id must be a non-empty string")
        new, _ = self._updated(op, base, inserting=True)
        new = {"_id": new.pop("_id"), **new}
        # Expired documents are logically gone: one must not collide with what this inserts.
        self._purge(op.spec, now, undo)
        _check_size(op.spec, new)
        self.tables[op.spec.name].insert(new, undo)
        return new

    def _update(self, op: UpdateOp, now: datetime, undo: Undo) -> UpdateResult:
        rows = self._select(op.spec, op.node, now, stop=0 if op.multi else 1)
        if not rows:
            if op.upsert:
                return UpdateResult(0, 0, self._upsert(op, now, undo)["_id"])
            return UpdateResult(0, 0, None)
        modified = 0
        for doc in rows:
            new, changed = self._updated(op, doc, inserting=False)
            if changed:
                self._replace(op.spec, new, undo)
                modified += 1
        return UpdateResult(len(rows), modified, None)

    def _find_and_modify(
        self, op: FindAndModifyOp, now: datetime, undo: Undo
    ) -> dict[str, Any] | None:
        rows = self._select(op.spec, op.node, now, op.sort, stop=1)
        if not rows:
            if not op.upsert:
                return None
            new = self._upsert(op, now, undo)
            return _copy(new) if op.return_after else None
        before = rows[0]
        new, changed = self._updated(op, before, inserting=False)
        if changed:
            self._replace(op.spec, new, undo)
        return _copy(new if op.return_after else before)

    def _purge(self, spec: CollectionSpec, now: datetime, undo: Undo, limit: int = 0) -> int:
        cutoff = expiry_cutoff(spec, now)
        if cutoff is None:
            return 0
        table = self.tables[spec.name]
        gone = [i for i, doc in table.docs.items() if expired(spec, doc, cutoff)]
        for doc_id in gone[:limit] if limit else gone:
            table.remove(doc_id, undo)
        return min(len(gone), limit) if limit else len(gone)

    async def purge_expired(self) -> int:
        await trio.lowlevel.checkpoint()
        self._check_open()
        now = self.now()
        # Nothing to undo: a purge cannot fail half-way.
        return sum(self._purge(spec, now, []) for spec in self.catalog if spec.ttl is not None)
