"""The store's public port: what every backend offers, shaped after pymongo's collection API.

Values a document may hold: None, bool, int (64-bit), float (finite), str, list, dict with
string keys (not starting with ``$``, no ``.``), and timezone-aware ``datetime`` (stored as UTC
at millisecond precision, as MongoDB does, and read back as an aware UTC datetime).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs
import trio

from ._catalog import Catalog

Document = dict[str, Any]
Filter = Mapping[str, Any]
Update = Mapping[str, Any]
Sort = Sequence[tuple[str, int]]
Projection = Mapping[str, int | bool]
Durability = Literal["full", "normal"]


class ReturnDocument(enum.Enum):
    """Which version find_one_and_update returns."""

    BEFORE = "before"
    AFTER = "after"


@attrs.frozen
class UpdateResult:
    matched_count: int
    modified_count: int
    upserted_id: str | None = None


class Collection(Protocol):
    """One collection as seen through a scope (tenant, system or cross-tenant)."""

    @property
    def name(self) -> str: ...

    async def insert_one(self, doc: Mapping[str, Any]) -> str: ...

    async def insert_many(self, docs: Sequence[Mapping[str, Any]]) -> list[str]: ...

    async def find_one(
        self,
        filter: Filter | None = None,
        *,
        sort: Sort | None = None,
        projection: Projection | None = None,
    ) -> Document | None: ...

    async def find(
        self,
        filter: Filter | None = None,
        *,
        sort: Sort | None = None,
        skip: int = 0,
        limit: int = 0,
        projection: Projection | None = None,
    ) -> list[Document]: ...

    async def count(self, filter: Filter | None = None) -> int: ...

    async def update_one(
        self, filter: Filter, update: Update, *, upsert: bool = False
    ) -> UpdateResult: ...

    async def update_many(
        self, filter: Filter, update: Update, *, upsert: bool = False
    ) -> UpdateResult: ...

    async def find_one_and_update(
        self,
        filter: Filter,
        update: Update,
        *,
        sort: Sort | None = None,
        upsert: bool = False,
        return_document: ReturnDocument = ReturnDocument.BEFORE,
        projection: Projection | None = None,
    ) -> Document | None: ...

    async def delete_one(self, filter: Filter) -> int: ...

    async def delete_many(self, filter: Filter) -> int: ...


class TenantScope(Protocol):
    """All tenant collections of one company; every query carries its company_id."""

    @property
    def company_id(self) -> str: ...

    def collection(self, name: str) -> Collection: ...


class SystemScope(Protocol):
    """System collections (companies, users, sessions, ...); never tenant data."""

    def collection(self, name: str) -> Collection: ...


class Pipeline(Protocol):
    """Writes issued without waiting, in order, awaited together by sync()."""

    def insert_one(self, collection: Collection, doc: Mapping[str, Any]) -> str: ...

    def update_one(
        self, collection: Collection, filter: Filter, update: Update, *, upsert: bool = False
    ) -> None: ...

    def delete_one(self, collection: Collection, filter: Filter) -> None: ...

    async def sync(self) -> None: ...

    def synced(self) -> Callable[[], Awaitable[None]]:
        """A wait for the writes issued so far, for another task to await whenever it
        likes (as many times as it likes); raises the first error among them."""
        ...


class Store(Protocol):
    """An open store. Obtain one with ``open_store``."""

    @property
    def backend_name(self) -> str:
        """``sqlite``, ``mongo`` or ``memory``."""
        ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def system(self) -> SystemScope: ...

    @property
    def cross_tenant(self) -> SystemScope: ...

    def tenant(self, company_id: str) -> TenantScope: ...

    def pipeline(self) -> Pipeline: ...

    async def purge_expired(self) -> int: ...

    async def serve(self, task_status: trio.TaskStatus[None] = ...) -> None:
        """The store's own work (group-commit writer, TTL purge / write lanes) as a service,
        for a store opened with ``open_store(..., serve=False)``; restartable."""
        ...

    def statistics(self) -> dict[str, Any]: ...
