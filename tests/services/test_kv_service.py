"""KvService: scopes, TTL, encryption at rest, tenancy, bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from flow8.services.kv import KvError, KvService, KvStore
from flow8.store import open_store


@pytest.fixture
async def kv(tmp_path: Path) -> AsyncIterator[KvService]:
    async with open_store(f"sqlite:///{tmp_path / 'kv.db'}", data_dir=tmp_path) as store:
        yield KvService(KvStore(store))


async def test_scopes_are_separate(kv: KvService) -> None:
    await kv.set("acme", "k", "g")
    await kv.set("acme", "k", "f", scope="flow", flow_id="f1")
    await kv.set("acme", "k", "grp", scope="flow_group", group="billing")
    assert await kv.get("acme", "k") == (True, "g")
    assert await kv.get("acme", "k", scope="flow", flow_id="f1") == (True, "f")
    assert await kv.get("acme", "k", scope="flow", flow_id="f2") == (False, None)
    assert await kv.get("acme", "k", scope="flow_group", group="billing") == (True, "grp")
    assert await kv.get("globex", "k") == (False, None)
    assert [e["key"] for e in await kv.list("acme")] == ["k"]
    assert await kv.delete("acme", "k") is True
    assert await kv.get("acme", "k") == (False, None)


async def test_values_are_encrypted_at_rest(tmp_path: Path, kv: KvService) -> None:
    await kv.set("acme", "secret", {"token": "canary-7f3a9"})
    raw = _database_bytes(tmp_path)
    assert b"canary-7f3a9" not in raw
    assert await kv.get("acme", "secret") == (True, {"token": "canary-7f3a9"})


def _database_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.glob("kv.db*"))


async def test_ttl(kv: KvService) -> None:
    await kv.set("acme", "t", 1, ttl_seconds=0.1)
    assert (await kv.get("acme", "t"))[0]
    await trio.sleep(0.15)
    assert await kv.get("acme", "t") == (False, None)
    assert await kv.list("acme") == []


async def test_bad_input_is_refused(kv: KvService) -> None:
    with pytest.raises(KvError):
        await kv.set("acme", "", 1)
    with pytest.raises(KvError):
        await kv.get("acme", "k", scope="flow")
    with pytest.raises(KvError):
        await kv.get("acme", "k", scope="galaxy")
    with pytest.raises(KvError):
        await kv.set("acme", "k", 1, ttl_seconds=0)


async def test_set_answers_the_entry_as_written_even_if_it_expired_since(kv: KvService) -> None:
    # The API answers a POST /api/kv with the entry; it used to read it back from the list,
    # and an entry gone by then (a TTL run out, a concurrent delete) answered a 500.
    written = await kv.set("acme", "t", {"a": 1}, ttl_seconds=1e-6, secret=False)
    assert written["key"] == "t"
    assert written["value"] == {"a": 1}
    assert written["expiresAt"] is not None
    assert written["secret"] is False
    assert await kv.list("acme") == []
    shown = await kv.set("acme", "s", "hunter2", secret=True)
    assert shown["value"] == "***"
    assert shown["secret"] is True
