"""The memory backend on Trio's autojump clock: what the engine and HTTP tests rely on when they
run hours of virtual time (TTLs, leases) without waiting for them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import trio
from store_kit import backend_of, open_test_store

from flow8.store import DuplicateKey


async def test_documents_expire_and_are_purged_in_virtual_time(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    async with open_test_store("memory", tmp_path, ttl_interval=60.0) as store:
        leases = store.tenant("acme").collection("leases")
        backend = backend_of(store)
        expires = backend.now() + timedelta(hours=1)
        await leases.insert_one({"_id": "l1", "key": "k", "expires_at": expires})
        started = trio.current_time()
        await trio.sleep(3599)
        assert [d["_id"] for d in await leases.find()] == ["l1"]
        await trio.sleep(2)  # past its expiry: hidden at once, purged at the next sweep
        assert await leases.find() == []
        await trio.sleep(60)
        assert backend.statistics()["documents"] == 0
        assert trio.current_time() - started == pytest.approx(3661)


async def test_a_write_is_all_or_nothing_and_answered_without_a_thread(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    async with open_test_store("memory", tmp_path) as store:
        docs = store.tenant("acme").collection("docs")
        await docs.insert_one({"_id": "a", "n": 1})
        with pytest.raises(DuplicateKey):
            await docs.insert_many([{"_id": "b", "n": 2}, {"_id": "a", "n": 3}])
        assert [d["_id"] for d in await docs.find()] == ["a"]  # "b" was undone with it
        before = trio.current_time()
        for _ in range(100):
            await docs.update_one({"_id": "a"}, {"$inc": {"n": 1}})
        assert trio.current_time() == before  # no write waited on a clock or a thread
        assert (await docs.find_one({"_id": "a"}) or {})["n"] == 101
