"""An API key's lastUsedAt over the REST API: set by a request the key authenticates, and
written once for requests within the same minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv
from support.waits import wait_until

from flow8.store import Store


async def _listed(owner: httpx.AsyncClient) -> dict[str, Any]:
    r = await owner.get("/api/auth/api-keys")
    assert r.status_code == 200, r.text
    [key] = r.json()["data"]
    listed: dict[str, Any] = key
    return listed


async def _settled(store: Store) -> None:
    """Every write queued so far is committed: the store's writer runs writes in the order
    queued (a key's lastUsedAt is queued before its request's answer leaves)."""
    await store.system.collection("api_keys").update_one(
        {"_id": "no-such-key"}, {"$set": {"name": "barrier"}}
    )


async def _stored(store: Store, key_id: str) -> datetime | None:
    doc = await store.system.collection("api_keys").find_one({"_id": key_id})
    assert doc is not None
    value: datetime | None = doc.get("last_used_at")
    return value


async def test_a_request_with_a_key_shows_in_the_key_list(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.post("/api/auth/api-keys", json={"name": "ci", "scopes": ["api"]})
        assert r.status_code == 201, r.text
        key, key_id = r.json()["key"], r.json()["id"]
        assert (await _listed(owner))["lastUsedAt"] is None
        before = datetime.now(UTC) - timedelta(milliseconds=1)
        async with installed.client(headers={"Authorization": f"Bearer {key}"}) as bot:
            assert (await bot.get("/api/flows")).status_code == 200
        # Written off the request's path: soon after its answer, not necessarily before.

        async def shown_used() -> str | None:
            shown: str | None = (await _listed(owner))["lastUsedAt"]
            return shown

        shown = await wait_until(shown_used, what="lastUsedAt shown")
        used = datetime.fromisoformat(shown)
        assert before <= used <= datetime.now(UTC)
        assert await _stored(installed.store, key_id) == used


async def test_requests_within_a_minute_write_last_used_once(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.post("/api/auth/api-keys", json={"name": "ci", "scopes": ["api"]})
        key, key_id = r.json()["key"], r.json()["id"]
        async with installed.client(headers={"Authorization": f"Bearer {key}"}) as bot:
            assert (await bot.get("/api/flows")).status_code == 200
            await _settled(installed.store)
            first = await _stored(installed.store, key_id)
            assert first is not None
            for _ in range(2):
                # A second write would store a later millisecond (of the wall clock:
                # lastUsedAt is datetime.now, which virtual time does not move).
                await wait_until(
                    lambda: datetime.now(UTC) >= first + timedelta(milliseconds=1),
                    interval=0.001,
                    what="a later millisecond",
                )
                assert (await bot.get("/api/auth/me")).status_code == 200
                await _settled(installed.store)
                assert await _stored(installed.store, key_id) == first
        assert datetime.fromisoformat((await _listed(owner))["lastUsedAt"]) == first
