"""The KV entries of a company in the store: scoped, encrypted at rest (the store's secret
``value`` field), with optional TTL.

Scopes as stored: ``global``, ``group:<group>``, ``flow:<flow id>``. The kv service reads and
manages them for the API; plays reach them through the engine's ``PlayKv`` (this store is the
``flow8.engine.KvStorage`` the composition root hands the engine).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from flow8.engine import KvError
from flow8.store import DuplicateKey, ReturnDocument, Store

_MAX_APPEND_RETRIES = 20


def _expires(ttl_seconds: float | None) -> datetime | None:
    if ttl_seconds is None:
        return None
    return datetime.now(UTC) + timedelta(seconds=float(ttl_seconds))


def _alive(doc: dict[str, Any] | None) -> bool:
    if doc is None:
        return False
    exp = doc.get("expires_at")
    return exp is None or exp > datetime.now(UTC)


@attrs.define
class KvStore:
    """Company-scoped KV operations on the ``kv`` collection."""

    store: Store

    def _coll(self, company_id: str) -> Any:
        return self.store.tenant(company_id).collection("kv")

    async def get(self, company_id: str, scope: str, key: str) -> tuple[bool, Any]:
        found, value, _secret = await self.entry(company_id, scope, key)
        return found, value

    async def entry(self, company_id: str, scope: str, key: str) -> tuple[bool, Any, bool]:
        """(found, value, whether the entry is marked secret)."""
        doc = await self._coll(company_id).find_one({"scope": scope, "key": key})
        if not _alive(doc):
            return False, None, False
        assert doc is not None
        return True, doc.get("value"), bool(doc.get("secret"))

    async def set(
        self,
        company_id: str,
        scope: str,
        key: str,
        value: Any,
        ttl_seconds: float | None,
        *,
        secret: bool | None = None,
    ) -> dict[str, Any]:
        """Create or replace an entry. ``secret`` marks it (True), unmarks it (False) or
        leaves the mark as it is (None: a new entry is not secret). Answers the entry as
        written (even one whose TTL has already run out by the time it is read again)."""
        coll = self._coll(company_id)
        fields = {"value": value, "expires_at": _expires(ttl_seconds), "updated_at": time.time()}
        if secret is not None:
            fields["secret"] = secret
        change = {"$set": fields, "$inc": {"rev": 1}}
        written: dict[str, Any] | None
        try:
            written = await coll.find_one_and_update(
                {"scope": scope, "key": key},
                change,
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKey:
            # Two upserts raced to create the key; the other one won, so update it.
            written = await coll.find_one_and_update(
                {"scope": scope, "key": key}, change, return_document=ReturnDocument.AFTER
            )
        if written is None:  # the winner of the race deleted it again: as written here
            written = {"scope": scope, "key": key, **fields}
        return written

    async def append(
        self, company_id: str, scope: str, key: str, value: Any, ttl_seconds: float | None
    ) -> int:
        """Append to the list under ``key`` (created when absent); returns its new length.

        The value is encrypted, so the store cannot ``$push`` into it: read, then write back
        conditionally on the revision read (optimistic concurrency)."""
        coll = self._coll(company_id)
        for _ in range(_MAX_APPEND_RETRIES):
            doc = await coll.find_one({"scope": scope, "key": key})
            if doc is None or not _alive(doc):
                items = [value]
                if doc is None:
                    try:
                        await coll.insert_one(
                            {
                                "scope": scope,
                                "key": key,
                                "value": items,
                                "rev": 1,
                                "expires_at": _expires(ttl_seconds),
                                "updated_at": time.time(),
                            }
                        )
                        return 1
                    except DuplicateKey:
                        continue
            else:
                current = doc.get("value")
                items = [*current, value] if isinstance(current, list) else [current, value]
            assert doc is not None
            fields: dict[str, Any] = {"value": items, "updated_at": time.time()}
            if ttl_seconds is not None or not _alive(doc):
                fields["expires_at"] = _expires(ttl_seconds)
            res = await coll.update_one(
                {"_id": doc["_id"], "rev": doc.get("rev", 0)},
                {"$set": fields, "$inc": {"rev": 1}},
            )
            if res.matched_count:
                return len(items)
        raise KvError(f"kv key {key!r} is too contended to append to")

    async def delete(self, company_id: str, scope: str, key: str) -> bool:
        doc = await self._coll(company_id).find_one({"scope": scope, "key": key})
        deleted = await self._coll(company_id).delete_one({"scope": scope, "key": key})
        return bool(deleted) and _alive(doc)

    async def list(self, company_id: str, scope: str) -> list[dict[str, Any]]:
        docs = await self._coll(company_id).find({"scope": scope}, sort=[("key", 1)])
        return [d for d in docs if _alive(d)]
