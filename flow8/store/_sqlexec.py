"""Executing write ops and reads on a sqlite connection (always called in a worker thread)."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from typing import Any

from ._catalog import CollectionSpec
from ._filters import Node, equality_seed
from ._ops import DeleteOp, FindAndModifyOp, InsertOp, PurgeOp, UpdateOp, WriteOp
from ._port import UpdateResult
from ._sqlcompile import compile_where, order_by, rank_expr, value_expr
from ._updates import ParsedUpdate, apply_update, seed_document
from ._values import DATE_PREFIX, check_size, dumps, format_datetime, loads, ttl_cutoff
from .exceptions import (
    DuplicateKey,
    InvalidDocument,
    InvalidQuery,
    StorageFull,
    StoreError,
    UpdateFailed,
)

_UNIQUE = re.compile(r"UNIQUE constraint failed: (?:index '([^']+)'|(\S+))")


def table(spec: CollectionSpec) -> str:
    return f'"c_{spec.name}"'


def duplicate_from(
    spec: CollectionSpec, err: sqlite3.IntegrityError, names: dict[str, str]
) -> StoreError:
    m = _UNIQUE.search(str(err))
    if not m:
        return StoreError(f"{spec.name}: integrity error: {err}")
    raw = m.group(1) or m.group(2) or ""
    if raw.endswith(".id") or raw == f"c_{spec.name}.id":
        return DuplicateKey(spec.name, "_id_", f"duplicate _id in {spec.name!r} (index '_id_')")
    return DuplicateKey(spec.name, names.get(raw, raw))


def _select(
    conn: sqlite3.Connection,
    spec: CollectionSpec,
    node: Node,
    now: datetime,
    sort: list[tuple[str, int]] | tuple[tuple[str, int], ...] = (),
    skip: int = 0,
    limit: int = 0,
) -> list[tuple[int, str, str | None]]:
    where, params = compile_where(spec, node, now)
    sql = f"SELECT rowid, doc, bulk FROM {table(spec)} WHERE {where}"
    if sort:
        sql += order_by(list(sort))
    if limit or skip:
        sql += f" LIMIT {int(limit) if limit else -1} OFFSET {int(skip)}"
    return conn.execute(sql, params).fetchall()


def find(
    conn: sqlite3.Connection,
    spec: CollectionSpec,
    node: Node,
    now: datetime,
    sort: list[tuple[str, int]],
    skip: int,
    limit: int,
) -> list[dict[str, Any]]:
    return [
        _decode(doc, bulk) for _, doc, bulk in _select(conn, spec, node, now, sort, skip, limit)
    ]


def count(conn: sqlite3.Connection, spec: CollectionSpec, node: Node, now: datetime) -> int:
    where, params = compile_where(spec, node, now)
    sql = f"SELECT count(*) FROM {table(spec)} WHERE {where}"
    return int(conn.execute(sql, params).fetchone()[0])


# Documents up to this size are stored whole, whatever fields the catalog keeps apart.
KEEP_TOGETHER_CHARS = 2048


def _encode(
    spec: CollectionSpec, doc: dict[str, Any], marked: bool | None = None
) -> tuple[str, str | None]:
    """The document as stored: (the indexed part, the fields kept apart or None).

    Fields the catalog keeps apart (``CollectionSpec.apart``: never filtered or indexed) go
    to the ``bulk`` column, so that maintaining the expression indexes, which parse the
    ``doc`` text once per indexed field, never parses a play's input or a layer's output.
    A small document stays whole: parsing a few hundred bytes per index costs less than
    writing the document as two (two encodings and two copies of its fields, measured on
    the engine bench's writer thread), and ``_decode`` reads either form.
    """
    text, bulk = dumps(doc, marked=marked), None
    if len(text) > KEEP_TOGETHER_CHARS and spec.apart and not spec.apart.isdisjoint(doc):
        indexed = {k: v for k, v in doc.items() if k not in spec.apart}
        bulk = dumps({k: v for k, v in doc.items() if k in spec.apart}, marked=marked)
        text = dumps(indexed, marked=marked)
    check_size(f"{spec.name} {doc.get('_id')!r}", text, *([bulk] if bulk else []))
    return text, bulk


def _decode(text: str, bulk: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = loads(text)
    if bulk is not None:
        doc.update(loads(bulk))
    return doc


def _insert(
    conn: sqlite3.Connection, spec: CollectionSpec, doc: dict[str, Any], marked: bool | None = None
) -> None:
    conn.execute(
        f"INSERT INTO {table(spec)} (id, doc, bulk) VALUES (?, ?, ?)",
        (doc["_id"], *_encode(spec, doc, marked)),
    )


def _purge_expired_matching(conn: sqlite3.Connection, spec: CollectionSpec, now: datetime) -> None:
    # An upsert must not collide with a document that is logically gone but not yet purged.
    ttl = spec.ttl
    if ttl is not None:
        x = value_expr(ttl.fields[0])
        cutoff = format_datetime(ttl_cutoff(now, ttl.expire_after_seconds or 0))
        conn.execute(f"DELETE FROM {table(spec)} WHERE {x} >= ? AND {x} < ?", (DATE_PREFIX, cutoff))


def _updated(
    spec: CollectionSpec, op: UpdateOp | FindAndModifyOp, doc: dict[str, Any], inserting: bool
) -> tuple[dict[str, Any], bool]:
    update: ParsedUpdate = op.sealer(doc["_id"]) if op.sealer else op.update
    new, changed = apply_update(doc, update, inserting=inserting)
    if new.get("_id") != doc.get("_id") and not inserting:
        raise UpdateFailed("the _id field is immutable")
    spec.check_scalar_fields(new)
    return new, changed


def _upsert(
    conn: sqlite3.Connection, op: UpdateOp | FindAndModifyOp, now: datetime
) -> dict[str, Any]:
    assert op.new_id is not None
    base = seed_document(equality_seed(op.node))
    base.setdefault("_id", op.new_id)
    if not isinstance(base["_id"], str) or not base["_id"]:
        raise InvalidDocument(f"{op.spec.name}: an upsert's _id must be a non-empty string")
    new, _ = _updated(op.spec, op, base, inserting=True)
    new = {"_id": new.pop("_id"), **new}
    _purge_expired_matching(conn, op.spec, now)
    _insert(conn, op.spec, new)
    return new


def _update(conn: sqlite3.Connection, op: UpdateOp, now: datetime) -> UpdateResult:
    rows = _select(conn, op.spec, op.node, now, limit=0 if op.multi else 1)
    if not rows:
        if op.upsert:
            return UpdateResult(0, 0, _upsert(conn, op, now)["_id"])
        return UpdateResult(0, 0, None)
    modified = 0
    for rowid, text, bulk in rows:
        new, changed = _updated(op.spec, op, _decode(text, bulk), inserting=False)
        if changed:
            conn.execute(
                f"UPDATE {table(op.spec)} SET doc = ?, bulk = ? WHERE rowid = ?",
                (*_encode(op.spec, new), rowid),
            )
            modified += 1
    return UpdateResult(len(rows), modified, None)


def _find_and_modify(
    conn: sqlite3.Connection, op: FindAndModifyOp, now: datetime
) -> dict[str, Any] | None:
    rows = _select(conn, op.spec, op.node, now, op.sort, limit=1)
    if not rows:
        if not op.upsert:
            return None
        new = _upsert(conn, op, now)
        return new if op.return_after else None
    rowid, text, bulk = rows[0]
    before = _decode(text, bulk)
    new, changed = _updated(op.spec, op, before, inserting=False)
    if changed:
        conn.execute(
            f"UPDATE {table(op.spec)} SET doc = ?, bulk = ? WHERE rowid = ?",
            (*_encode(op.spec, new), rowid),
        )
    return new if op.return_after else before


def _delete(conn: sqlite3.Connection, op: DeleteOp, now: datetime) -> int:
    where, params = compile_where(op.spec, op.node, now)
    limit = "" if op.multi else " LIMIT 1"
    sql = (
        f"DELETE FROM {table(op.spec)} WHERE rowid IN (SELECT rowid FROM {table(op.spec)} "
        f"WHERE {where}{limit})"
    )
    return conn.execute(sql, params).rowcount


def _purge(conn: sqlite3.Connection, op: PurgeOp, now: datetime) -> int:
    ttl = op.spec.ttl
    if ttl is None:
        return 0
    x = value_expr(ttl.fields[0])
    cutoff = format_datetime(ttl_cutoff(now, ttl.expire_after_seconds or 0))
    t, r = table(op.spec), rank_expr(ttl.fields[0])
    sql = (
        f"DELETE FROM {t} WHERE rowid IN (SELECT rowid FROM {t} WHERE {r} = 9 "
        f"AND {x} >= ? AND {x} < ? LIMIT {int(op.limit)})"
    )
    return conn.execute(sql, (DATE_PREFIX, cutoff)).rowcount


def execute(conn: sqlite3.Connection, op: WriteOp, now: datetime) -> Any:
    if isinstance(op, InsertOp):
        if len(op.docs) == 1:
            _insert(conn, op.spec, op.docs[0], op.marked)
        else:
            _insert_rows(
                conn, op.spec, [(d["_id"], *_encode(op.spec, d, op.marked)) for d in op.docs]
            )
        return [d["_id"] for d in op.docs]
    if isinstance(op, UpdateOp):
        return _update(conn, op, now)
    if isinstance(op, FindAndModifyOp):
        return _find_and_modify(conn, op, now)
    if isinstance(op, DeleteOp):
        return _delete(conn, op, now)
    return _purge(conn, op, now)


# Rows per INSERT statement. One multi-row statement is one sqlite3_step, so the writer thread
# gives up and takes back the GIL once per chunk instead of once per row; each hand-over
# costs both threads a context switch while the event loop is busy.
_ROWS_PER_INSERT = 200


def _insert_rows(
    conn: sqlite3.Connection, spec: CollectionSpec, rows: list[tuple[str, str, str | None]]
) -> None:
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        marks = ", ".join(["(?, ?, ?)"] * len(chunk))
        conn.execute(
            f"INSERT INTO {table(spec)} (id, doc, bulk) VALUES {marks}",
            [value for row in chunk for value in row],
        )


def insert_together(conn: sqlite3.Connection, ops: list[InsertOp]) -> list[list[str]]:
    """Run several inserts into one collection as one multi-row INSERT (the ids of each op).

    All or nothing: on any failure the caller redoes the ops one by one to find which failed.
    """
    spec = ops[0].spec
    _insert_rows(
        conn, spec, [(d["_id"], *_encode(spec, d, op.marked)) for op in ops for d in op.docs]
    )
    return [[d["_id"] for d in op.docs] for op in ops]


def storage_error(err: sqlite3.Error, what: str) -> StoreError:
    """Map a connection-level sqlite error (not a constraint) to the store's hierarchy."""
    from .exceptions import DatabaseLocked, StoreUnavailable

    code = getattr(err, "sqlite_errorcode", None)
    text = str(err)
    if "too many SQL variables" in text or "too many terms" in text:
        return InvalidQuery(f"{what}: the filter is too large (too many values)")
    if code == sqlite3.SQLITE_FULL or "database or disk is full" in text:
        return StorageFull(f"{what}: the disk or the database size limit is full ({text})")
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in text:
        return DatabaseLocked(
            f"{what}: the database is locked by another process beyond the busy timeout"
        )
    return StoreUnavailable(f"{what}: sqlite error: {text}")
