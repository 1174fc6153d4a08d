"""The install gate holds when installs race: two stores on one sqlite file stand for two
processes (or instances) calling `POST /api/install` / `flow8 init` at the same moment."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest
import trio

from flow8.services.identity import AlreadyInstalled, IdentityService, Passwords, init_owner
from flow8.services.identity._install import MARKER_COLLECTION, MARKER_ID
from flow8.store import Keyring, Store, open_store

PASSWORD = "install-password-1"


@contextlib.asynccontextmanager
async def two_stores(path: Path) -> AsyncIterator[tuple[Store, Store]]:
    keys = Keyring.generate()
    url = f"sqlite:///{path / 'flow8.db'}"
    async with (
        open_store(url, data_dir=path, durability="normal", encryption=keys) as a,
        open_store(url, data_dir=path, durability="normal", encryption=keys) as b,
    ):
        yield a, b


async def _counts(store: Store) -> tuple[int, int, int]:
    system = store.system
    return (
        await system.collection("users").count({}),
        await system.collection("companies").count({}),
        await system.collection("memberships").count({}),
    )


@pytest.mark.parametrize("racers", [2, 4])
async def test_racing_installs_on_one_database_let_exactly_one_win(
    tmp_path: Path, racers: int
) -> None:
    async with two_stores(tmp_path) as (a, b):
        services = [IdentityService(a if i % 2 == 0 else b) for i in range(racers)]
        wins: list[int] = []
        refused: list[int] = []
        go = trio.Event()

        async def install(i: int) -> None:
            await go.wait()
            try:
                await services[i].install(f"Company {i}", f"owner{i}@example.com", PASSWORD)
            except AlreadyInstalled:
                refused.append(i)
            else:
                wins.append(i)

        async with trio.open_nursery() as nursery:
            for i in range(racers):
                nursery.start_soon(install, i)
            await trio.sleep(0.01)
            go.set()
        assert len(wins) == 1, (wins, refused)
        assert len(refused) == racers - 1
        assert await _counts(a) == (1, 1, 1)
        winner = services[wins[0]]
        assert await IdentityService(b).installed()
        login = await winner.login(f"owner{wins[0]}@example.com", PASSWORD, ip="t", user_agent="t")
        assert login.principal.company_id is not None
        with pytest.raises(AlreadyInstalled):  # and later installs stay refused
            await init_owner(b, company="Late", email="late@example.com", password=PASSWORD)


async def test_a_failed_install_reopens_the_gate(tmp_path: Path) -> None:
    @attrs.define
    class BrokenOnce(Passwords):
        broken: bool = True

        async def hash(self, password: str) -> str:
            if self.broken:
                self.broken = False
                raise RuntimeError("hashing failed")
            return await super().hash(password)

    async with two_stores(tmp_path) as (a, _):
        service = IdentityService(a, passwords=BrokenOnce())
        with pytest.raises(RuntimeError):
            await service.install("Acme", "owner@example.com", PASSWORD)
        assert await _counts(a) == (0, 0, 0)
        assert await a.system.collection(MARKER_COLLECTION).find_one({"_id": MARKER_ID}) is None
        await service.install("Acme", "owner@example.com", PASSWORD)
        assert await _counts(a) == (1, 1, 1)


async def test_a_claim_left_by_a_dead_installer_is_taken_over_once_stale(tmp_path: Path) -> None:
    async with two_stores(tmp_path) as (a, b):
        meta = a.system.collection(MARKER_COLLECTION)
        now = datetime.now(UTC)
        await meta.insert_one(
            {"_id": MARKER_ID, "state": "pending", "claim": "dead", "claimed_at": now}
        )
        # Fresh: someone is installing right now.
        with pytest.raises(AlreadyInstalled):
            await IdentityService(b).install("Acme", "owner@example.com", PASSWORD)
        await meta.update_one(
            {"_id": MARKER_ID}, {"$set": {"claimed_at": now - timedelta(minutes=10)}}
        )
        user, _ = await IdentityService(b).install("Acme", "owner@example.com", PASSWORD)
        assert user.email == "owner@example.com"
        marker = await meta.find_one({"_id": MARKER_ID})
        assert marker is not None
        assert marker["state"] == "done"
        assert marker["claim"] != "dead"


async def test_a_database_with_users_but_no_marker_counts_as_installed(tmp_path: Path) -> None:
    async with two_stores(tmp_path) as (a, _):
        await a.system.collection("users").insert_one(
            {"email": "old@example.com", "name": "", "password_hash": "x", "created_at": 1}
        )
        with pytest.raises(AlreadyInstalled):
            await IdentityService(a).install("Acme", "owner@example.com", PASSWORD)
        assert await _counts(a) == (1, 0, 0)
        marker = await a.system.collection(MARKER_COLLECTION).find_one({"_id": MARKER_ID})
        assert marker is not None
        assert marker["state"] == "done"
