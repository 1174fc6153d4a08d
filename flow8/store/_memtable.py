"""One collection of the memory backend: documents by ``_id``, its unique indexes, and the undo
log that makes each write all-or-nothing.

Documents sit in a dict in insertion order, which stands in for sqlite's rowid: unsorted
results and sort ties come out in that order, and replacing a document keeps its place.
Unique indexes are dicts from key to ``_id``, checked before anything changes; a write that
fails half-way (the third document of an ``insert_many``, the second of an ``update_many``)
is undone from the log, as sqlite undoes the op's savepoint.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._catalog import CollectionSpec, IndexSpec
from ._matching import unique_key
from .exceptions import DuplicateKey


@attrs.define
class _Unique:
    index: IndexSpec
    owners: dict[tuple[Any, ...], str] = attrs.field(factory=dict)  # key -> _id


# (table, _id, the document before the change or None when there was none)
Undo = list[tuple["Table", str, dict[str, Any] | None]]


@attrs.define
class Table:
    spec: CollectionSpec
    docs: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    _uniques: tuple[_Unique, ...] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._uniques = tuple(_Unique(ix) for ix in self.spec.indexes if ix.unique)

    def insert(self, doc: dict[str, Any], undo: Undo) -> None:
        if doc["_id"] in self.docs:
            name = self.spec.name
            raise DuplicateKey(name, "_id_", f"duplicate _id in {name!r} (index '_id_')")
        self._put(doc, None, undo)

    def replace(self, doc: dict[str, Any], undo: Undo) -> None:
        self._put(doc, self.docs[doc["_id"]], undo)

    def remove(self, doc_id: str, undo: Undo) -> None:
        old = self.docs.pop(doc_id)
        self._unindex(old)
        undo.append((self, doc_id, old))

    def _put(self, doc: dict[str, Any], old: dict[str, Any] | None, undo: Undo) -> None:
        doc_id = doc["_id"]
        keys = [unique_key(doc, u.index) for u in self._uniques]
        for u, key in zip(self._uniques, keys, strict=True):
            if key is not None and u.owners.get(key, doc_id) != doc_id:
                raise DuplicateKey(self.spec.name, u.index.name)
        if old is not None:
            self._unindex(old)
        for u, key in zip(self._uniques, keys, strict=True):
            if key is not None:
                u.owners[key] = doc_id
        self.docs[doc_id] = doc
        undo.append((self, doc_id, old))

    def _unindex(self, doc: dict[str, Any]) -> None:
        for u in self._uniques:
            key = unique_key(doc, u.index)
            if key is not None and u.owners.get(key) == doc["_id"]:
                del u.owners[key]

    def restore(self, doc_id: str, old: dict[str, Any] | None) -> None:
        """Undo one logged change. No checks: the state it returns to was consistent."""
        current = self.docs.get(doc_id)
        if current is not None:
            self._unindex(current)
        if old is None:
            self.docs.pop(doc_id, None)
            return
        self.docs[doc_id] = old  # in place when still there: a replaced document keeps its slot
        for u in self._uniques:
            key = unique_key(old, u.index)
            if key is not None:
                u.owners[key] = doc_id


def rollback(undo: Undo) -> None:
    """Undo every change in the log, newest first."""
    while undo:
        table, doc_id, old = undo.pop()
        table.restore(doc_id, old)
