"""Scoped collections: where tenancy, validation and secrets are enforced for every backend.

A collection is reached through exactly one of three scopes:

* tenant (``store.tenant(company_id)``): tenant collections only; ``company_id`` is added to
  every filter and written document and can never be changed by an update;
* system (``store.system``): system collections only;
* cross-tenant (``store.cross_tenant``): tenant collections for jobs that span companies
  (dispatcher, scheduler, retention); written documents must carry their own ``company_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from ._backend import Backend
from ._catalog import CollectionSpec
from ._crypto import Keyring
from ._filters import (
    And,
    Cond,
    Node,
    filter_paths,
    parse_filter,
    parse_projection,
    parse_sort,
    project,
)
from ._ids import new_id
from ._ops import DeleteOp, FindAndModifyOp, InsertOp, UpdateOp
from ._port import Document, Filter, Projection, ReturnDocument, Sort, Update, UpdateResult
from ._secrets import open_document, seal_document, update_sealer
from ._updates import ParsedUpdate, parse_update
from ._values import MARK, normalize_document
from .exceptions import InvalidDocument, InvalidQuery, TenancyError

Mode = Literal["tenant", "system", "cross"]
_SECRET_OPS = frozenset({"$set", "$setOnInsert", "$unset"})


def check_company_id(company_id: object) -> str:
    if not isinstance(company_id, str) or not company_id.strip():
        raise TenancyError(f"a tenant scope needs a non-empty company id, got {company_id!r}")
    return company_id


@attrs.define
class ScopedCollection:
    spec: CollectionSpec
    mode: Mode
    company_id: str  # "" outside a tenant scope
    backend: Backend
    keyring: Keyring | None

    @property
    def name(self) -> str:
        return self.spec.name

    # -- preparing requests ------------------------------------------------------------------

    def _scoped(self, filter: Filter | None) -> tuple[dict[str, Any], Node]:
        doc, node = parse_filter(filter)
        self._filterable({p.split(".")[0] for p in filter_paths(node)}, "filter")
        if self.mode != "tenant":
            return doc, node
        scoped_node = And((node, Cond("company_id", "eq", self.company_id)))
        if "company_id" in doc:
            return {"$and": [doc, {"company_id": self.company_id}]}, scoped_node
        return {**doc, "company_id": self.company_id}, scoped_node

    def _filterable(self, roots: set[str], what: str) -> None:
        """Refuse a filter or sort on a field the store keeps unindexed (see CollectionSpec)."""
        apart = roots & self.spec.apart
        if apart:
            field = sorted(apart)[0]
            kind = "encrypted" if field in self.spec.secret_fields else "unindexed data"
            raise InvalidQuery(f"{self.name}: cannot {what} on {kind} field {field!r}")

    def _prepare_doc(self, doc: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        if type(doc) is not dict and not isinstance(doc, Mapping):  # the ABC check is slow
            raise InvalidDocument(f"{self.name}: a document must be a mapping")
        norm, marked = normalize_document(doc, self.name)
        doc_id = norm.pop("_id", None)
        if doc_id is None:
            doc_id = new_id()
        if not isinstance(doc_id, str) or not doc_id or doc_id.startswith(MARK):
            raise InvalidDocument(f"{self.name}: _id must be a non-empty string, got {doc_id!r}")
        company = self._doc_company(norm)
        out = {"_id": doc_id, **norm}
        self.spec.check_scalar_fields(out)
        return seal_document(self.keyring, self.spec, company, out), marked

    def _doc_company(self, doc: dict[str, Any]) -> str:
        if self.mode == "tenant":
            given = doc.get("company_id", self.company_id)
            if given != self.company_id:
                raise TenancyError(
                    f"{self.name}: document company_id {given!r} is not this scope's company"
                )
            doc["company_id"] = self.company_id
            return self.company_id
        if self.mode == "cross":
            return check_company_id(doc.get("company_id"))
        return ""

    def _prepare_update(self, update: Update) -> tuple[ParsedUpdate, Any]:
        parsed = parse_update(update)
        touched = parsed.paths()
        if self.spec.scope == "tenant" and any(
            p == "company_id" or p.startswith("company_id.") for p in touched
        ):
            raise TenancyError(f"{self.name}: an update may not touch company_id")
        for path, op in touched.items():
            self._check_scalar_update(path, op, parsed)
            root = path.split(".")[0]
            if root in self.spec.secret_fields and (op not in _SECRET_OPS or "." in path):
                raise InvalidQuery(
                    f"{self.name}: encrypted field {root!r} can only be replaced whole "
                    "with $set/$setOnInsert or removed with $unset"
                )
        sealer = None
        if any(p in self.spec.secret_fields for p in touched):
            if self.mode == "cross":
                raise TenancyError(f"{self.name}: set secret fields through the tenant scope")
            sealer = update_sealer(self.keyring, self.spec, self.company_id, parsed)
        return parsed, sealer

    def _check_scalar_update(self, path: str, op: str, parsed: ParsedUpdate) -> None:
        for field in self.spec.scalar_fields:
            if field == path or field.startswith(path + "."):
                if op in ("$push", "$addToSet", "$pull"):
                    bad = True
                elif op in ("$set", "$setOnInsert"):
                    bad = isinstance(_at(parsed.doc[op][path], path, field), list)
                else:
                    bad = False
                if bad:
                    raise InvalidDocument(
                        f"{self.name}: field {field!r} is indexed as a scalar and may not hold "
                        "an array"
                    )

    def _open(self, doc: dict[str, Any], projection: dict[str, bool] | None) -> Document:
        doc_id = doc.get("_id", "")
        company = self.company_id if self.mode == "tenant" else doc.get("company_id", "")
        if self.spec.scope == "system":
            company = ""
        shown = project(doc, projection)
        return open_document(self.keyring, self.spec, company or "", doc_id, shown)

    def insert_op(self, docs: Sequence[Mapping[str, Any]]) -> InsertOp:
        if type(docs) is not list and (isinstance(docs, Mapping) or not isinstance(docs, Sequence)):
            raise InvalidDocument(f"{self.name}: insert_many needs a list of documents")
        pairs = [self._prepare_doc(d) for d in docs]
        prepared = tuple(d for d, _ in pairs)
        ids = {d["_id"] for d in prepared}
        if len(ids) != len(prepared):
            raise InvalidDocument(f"{self.name}: the batch repeats an _id")
        return InsertOp(self.spec, prepared, any(m for _, m in pairs))

    def update_op(self, filter: Filter, update: Update, upsert: bool, multi: bool) -> UpdateOp:
        fdoc, node = self._scoped(filter)
        parsed, sealer = self._prepare_update(update)
        self._check_upsert(upsert)
        return UpdateOp(
            self.spec, fdoc, node, parsed, bool(upsert), multi, sealer, new_id() if upsert else None
        )

    def _check_upsert(self, upsert: bool) -> None:
        if upsert and self.mode == "cross":
            raise TenancyError(f"{self.name}: upsert through the tenant scope, not cross-tenant")

    def delete_op(self, filter: Filter, multi: bool) -> DeleteOp:
        fdoc, node = self._scoped(filter)
        return DeleteOp(self.spec, fdoc, node, multi)

    # -- the Collection port -----------------------------------------------------------------

    async def insert_one(self, doc: Mapping[str, Any]) -> str:
        ids: list[str] = await self.backend.write(self.insert_op([doc]))
        return ids[0]

    async def insert_many(self, docs: Sequence[Mapping[str, Any]]) -> list[str]:
        op = self.insert_op(docs)
        if not op.docs:
            return []
        ids: list[str] = await self.backend.write(op)
        return ids

    async def find(
        self,
        filter: Filter | None = None,
        *,
        sort: Sort | None = None,
        skip: int = 0,
        limit: int = 0,
        projection: Projection | None = None,
    ) -> list[Document]:
        fdoc, node = self._scoped(filter)
        order = parse_sort(sort)
        if order:
            self._filterable({path.split(".")[0] for path, _ in order}, "sort")
        proj = parse_projection(projection)
        for name, n in (("skip", skip), ("limit", limit)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise InvalidQuery(f"{name} must be a non-negative integer, got {n!r}")
        rows = await self.backend.find(self.spec, fdoc, node, order, skip, limit)
        return [self._open(d, proj) for d in rows]

    async def find_one(
        self,
        filter: Filter | None = None,
        *,
        sort: Sort | None = None,
        projection: Projection | None = None,
    ) -> Document | None:
        found = await self.find(filter, sort=sort, limit=1, projection=projection)
        return found[0] if found else None

    async def count(self, filter: Filter | None = None) -> int:
        fdoc, node = self._scoped(filter)
        n: int = await self.backend.count(self.spec, fdoc, node)
        return n

    async def update_one(
        self, filter: Filter, update: Update, *, upsert: bool = False
    ) -> UpdateResult:
        result: UpdateResult = await self.backend.write(
            self.update_op(filter, update, upsert, False)
        )
        return result

    async def update_many(
        self, filter: Filter, update: Update, *, upsert: bool = False
    ) -> UpdateResult:
        result: UpdateResult = await self.backend.write(
            self.update_op(filter, update, upsert, True)
        )
        return result

    async def find_one_and_update(
        self,
        filter: Filter,
        update: Update,
        *,
        sort: Sort | None = None,
        upsert: bool = False,
        return_document: ReturnDocument = ReturnDocument.BEFORE,
        projection: Projection | None = None,
    ) -> Document | None:
        fdoc, node = self._scoped(filter)
        parsed, sealer = self._prepare_update(update)
        self._check_upsert(upsert)
        if not isinstance(return_document, ReturnDocument):
            raise InvalidQuery("return_document must be ReturnDocument.BEFORE or AFTER")
        order = parse_sort(sort)
        if order:
            self._filterable({path.split(".")[0] for path, _ in order}, "sort")
        op = FindAndModifyOp(
            self.spec,
            fdoc,
            node,
            parsed,
            tuple(order),
            bool(upsert),
            return_document is ReturnDocument.AFTER,
            sealer,
            new_id() if upsert else None,
        )
        proj = parse_projection(projection)
        doc = await self.backend.write(op)
        return None if doc is None else self._open(doc, proj)

    async def delete_one(self, filter: Filter) -> int:
        n: int = await self.backend.write(self.delete_op(filter, False))
        return n

    async def delete_many(self, filter: Filter) -> int:
        n: int = await self.backend.write(self.delete_op(filter, True))
        return n


def _at(value: Any, path: str, field: str) -> Any:
    """The part of ``value`` (set at ``path``) that lands at ``field``."""
    rest = field[len(path) :].lstrip(".")
    for part in rest.split(".") if rest else []:
        value = value.get(part) if isinstance(value, dict) else None
    return value
