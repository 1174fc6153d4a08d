"""Point reads (one document by `_id`) run inline on the event loop's own sqlite connection;
everything else, and any point read that would have to wait for a lock, runs in the pool."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import trio
from store_kit import backend_of, open_test_store

from flow8.store import Store
from flow8.store._filters import parse_filter
from flow8.store._sqlcompile import _WHERE_CACHE
from flow8.store._sqlite import is_point_read


def backend(store: Store) -> Any:
    return backend_of(store)


def point(flt: dict[str, Any]) -> bool:
    return is_point_read(parse_filter(flt)[1])


def test_only_an_id_equality_is_a_point_read() -> None:
    assert point({"_id": "p1"})
    assert point({"_id": "p1", "company_id": "acme"})
    assert point({"$and": [{"status": "RUN"}, {"$and": [{"_id": "p1"}]}]})
    assert not point({"company_id": "acme"})
    assert not point({"_id": {"$in": ["a", "b"]}})
    assert not point({"$or": [{"_id": "a"}, {"_id": "b"}]})
    assert not point({"$or": [{"_id": "a", "n": 1}, {"n": 2}]})


async def one(c: Any, flt: dict[str, Any]) -> dict[str, Any]:
    found = await c.find_one(flt)
    assert found is not None, flt
    return dict(found)


async def test_point_reads_use_no_worker_thread(tmp_path: Path) -> None:
    async with open_test_store("sqlite", tmp_path) as s:
        c = s.tenant("acme").collection("docs")
        doc_id = await c.insert_one({"n": 1})
        limiter = backend(s)._limiter
        before = limiter.statistics().borrowed_tokens
        # A reader in the pool would borrow a token from the limiter: hold them all, so a
        # point read that went to a thread would block here forever instead of answering.
        tokens = [object() for _ in range(limiter.total_tokens)]
        for t in tokens:
            limiter.acquire_on_behalf_of_nowait(t)
        try:
            with trio.fail_after(5):
                assert (await one(c, {"_id": doc_id}))["n"] == 1
                assert await c.find_one({"_id": "missing"}) is None
                # more conditions beside the id (nested under the tenant scope's $and)
                assert (await one(c, {"_id": doc_id, "n": 1}))["n"] == 1
                assert await c.find_one({"_id": doc_id, "n": 2}) is None
        finally:
            for t in tokens:
                limiter.release_on_behalf_of(t)
        assert limiter.statistics().borrowed_tokens == before


async def test_a_point_read_that_would_wait_for_a_lock_is_served_by_the_pool(
    tmp_path: Path,
) -> None:
    async with open_test_store("sqlite", tmp_path) as s:
        c = s.tenant("acme").collection("docs")
        doc_id = await c.insert_one({"n": 7})
        b = backend(s)
        # Point the inline connection at a database another connection holds an exclusive
        # lock on: every read there answers SQLITE_BUSY at once (its busy timeout is zero).
        locked_path = tmp_path / "locked.db"
        holder = sqlite3.connect(locked_path, isolation_level=None)
        holder.execute('CREATE TABLE "c_docs" (id TEXT, doc TEXT)')
        holder.execute("BEGIN EXCLUSIVE")
        blocked = sqlite3.connect(locked_path, isolation_level=None, check_same_thread=False)
        blocked.execute("PRAGMA busy_timeout = 0")
        real, b._inline = b._inline, blocked
        try:
            found = await c.find_one({"_id": doc_id})
        finally:
            b._inline = real
            holder.execute("ROLLBACK")
            holder.close()
            blocked.close()
        assert found is not None
        assert found["n"] == 7


async def test_cached_where_clauses_bind_each_calls_own_values(tmp_path: Path) -> None:
    async with open_test_store("sqlite", tmp_path) as s:
        c = s.tenant("acme").collection("docs")
        other = s.tenant("other").collection("docs")
        ids = [await c.insert_one({"name": f"n{i}", "kind": "k"}) for i in range(3)]
        await other.insert_one({"name": "n1", "kind": "k"})
        _WHERE_CACHE.clear()
        for i, doc_id in enumerate(ids):
            assert (await one(c, {"_id": doc_id}))["name"] == f"n{i}"
            assert [d["_id"] for d in await c.find({"name": f"n{i}"})] == [doc_id]
        assert _WHERE_CACHE, "equality lookups should have been cached"
        # The same shape in another tenant binds that tenant's company id, not the cached one.
        assert [d["name"] for d in await other.find({"name": "n1"})] == ["n1"]
        assert await other.count({"name": "n0"}) == 0
        # A value that storage escapes (it starts with the marker byte) is escaped when bound.
        marked = "\x01Dnot a date"
        doc_id = await c.insert_one({"name": marked})
        assert (await one(c, {"name": marked}))["_id"] == doc_id
