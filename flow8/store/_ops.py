"""Write operations as values: what a scope hands a backend's writer.

An op is validated and (apart from secrets that depend on the matched document's id) fully
prepared before it is queued, so a writer only executes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import trio

from ._catalog import CollectionSpec
from ._filters import Node
from ._updates import ParsedUpdate
from .exceptions import StoreError

# Given the id of the document an update will touch, return the update to apply: how secret
# fields get encrypted with associated data naming that document.
Sealer = Callable[[str], ParsedUpdate]


@attrs.frozen
class InsertOp:
    spec: CollectionSpec
    docs: tuple[dict[str, Any], ...]  # normalised, with _id, secrets already encrypted
    marked: bool | None = None  # whether a string starts with the storage mark (see _values)


@attrs.frozen
class UpdateOp:
    spec: CollectionSpec
    filter: dict[str, Any]
    node: Node
    update: ParsedUpdate
    upsert: bool
    multi: bool
    sealer: Sealer | None = None
    new_id: str | None = None  # the _id an upsert inserts


@attrs.frozen
class FindAndModifyOp:
    spec: CollectionSpec
    filter: dict[str, Any]
    node: Node
    update: ParsedUpdate
    sort: tuple[tuple[str, int], ...]
    upsert: bool
    return_after: bool
    sealer: Sealer | None = None
    new_id: str | None = None


@attrs.frozen
class DeleteOp:
    spec: CollectionSpec
    filter: dict[str, Any]
    node: Node
    multi: bool


@attrs.frozen
class PurgeOp:
    spec: CollectionSpec
    limit: int


WriteOp = InsertOp | UpdateOp | FindAndModifyOp | DeleteOp | PurgeOp


@attrs.define
class Pending:
    """The answer to one queued write, set once it is durable (or failed)."""

    done: trio.Event = attrs.field(factory=trio.Event)
    result: Any = None
    error: StoreError | None = None

    def resolve(self, result: Any) -> None:
        self.result = result
        self.done.set()

    def fail(self, error: StoreError) -> None:
        self.error = error
        self.done.set()

    async def wait(self) -> Any:
        await self.done.wait()
        if self.error is not None:
            raise self.error
        return self.result
