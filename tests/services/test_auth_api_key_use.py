"""An API key's `last_used_at`: written when the key authenticates, at most once a minute per
key, never waited for by the request, and a write that fails is logged and tried again on the
key's next use (IdentityService over a real sqlite store)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import structlog
import trio
from identity_support import FAST, IP, OWNER_EMAIL, OWNER_PASSWORD, UA
from support.waits import wait_until

from flow8.services.identity import IdentityService, Passwords, Principal
from flow8.store import Keyring, Store, open_store


@attrs.define
class Keyed:
    identity: IdentityService
    store: Store
    key: str  # the key itself, as its holder sends it
    key_id: str
    now: list[float]  # the service's clock
    nursery: trio.Nursery
    writer: trio.CancelScope = attrs.field(factory=trio.CancelScope)

    async def start_writer(self) -> None:
        """Run the store's writer (as the tree's `store` actor does) until `stop_writer`."""

        async def run(task_status: trio.TaskStatus[None]) -> None:
            with self.writer:
                await self.store.serve(task_status=task_status)

        self.writer = trio.CancelScope()
        await self.nursery.start(run)

    def stop_writer(self) -> None:
        """Writes queued from now on wait (they are kept) until the writer runs again."""
        self.writer.cancel()


@contextlib.asynccontextmanager
async def keyed(tmp_path: Path, *, busy_timeout: float = 5.0) -> AsyncIterator[Keyed]:
    """An installed instance whose owner made one API key, the store's writer running."""
    async with (
        open_store(
            f"sqlite:///{tmp_path / 'flow8.db'}",
            data_dir=tmp_path,
            durability="normal",
            encryption=Keyring.generate(),
            busy_timeout=busy_timeout,
            serve=False,
        ) as store,
        trio.open_nursery() as nursery,
    ):
        now = [1000.0]
        identity = IdentityService(store, passwords=Passwords(FAST), clock=lambda: now[0])
        k = Keyed(identity, store, "", "", now, nursery)
        await k.start_writer()
        await identity.install("A", OWNER_EMAIL, OWNER_PASSWORD)
        owner = (await identity.login(OWNER_EMAIL, OWNER_PASSWORD, ip=IP, user_agent=UA)).principal
        created = await identity.create_api_key(owner, "ci", ["api"])
        k.key, k.key_id = created.key, created.api_key.id
        yield k
        nursery.cancel_scope.cancel()  # the writer, before the store closes (it drains)


async def _settled(store: Store) -> None:
    """Every write queued so far is committed: the writer runs them in the order queued, so
    one more write answered means the ones before it are done."""
    await store.system.collection("api_keys").update_one(
        {"_id": "no-such-key"}, {"$set": {"name": "barrier"}}
    )


async def _last_used(k: Keyed) -> datetime | None:
    doc = await k.store.system.collection("api_keys").find_one({"_id": k.key_id})
    assert doc is not None
    value: datetime | None = doc.get("last_used_at")
    return value


async def _use(k: Keyed) -> Principal:
    principal = await k.identity.api_key_principal(k.key)
    assert principal.api_key_id == k.key_id
    return principal


async def test_a_key_in_use_is_written_at_most_once_a_minute(tmp_path: Path) -> None:
    async with keyed(tmp_path) as k:
        assert await _last_used(k) is None
        before = datetime.now(UTC) - timedelta(milliseconds=1)
        await _use(k)
        await _settled(k.store)
        first = await _last_used(k)
        assert first is not None
        assert before <= first <= datetime.now(UTC)
        listed = await k.identity.list_api_keys((await _use(k)).company_id or "")
        assert [key.last_used_at for key in listed] == [first]

        # Within the minute (on the service's clock, while real time moves on): no write.
        for step in (1.0, 29.0, 29.5):  # 59.5 s after the write, at the last
            await trio.sleep(0.01)  # a new write would store a later millisecond
            k.now[0] += step
            await _use(k)
            await _settled(k.store)
            assert await _last_used(k) == first

        # A minute after the write: the next use writes again.
        k.now[0] += 0.5
        await _use(k)
        await _settled(k.store)
        second = await _last_used(k)
        assert second is not None
        assert second > first


async def test_the_request_does_not_wait_for_the_write(tmp_path: Path) -> None:
    """With the store's writer stopped, a write waited for would never be answered: the key
    authenticates anyway, and its write lands once the writer runs again."""
    async with keyed(tmp_path) as k:
        k.stop_writer()
        with trio.fail_after(5):
            await _use(k)
        assert await _last_used(k) is None  # queued, not written
        await k.start_writer()
        await _settled(k.store)
        assert await _last_used(k) is not None


async def test_a_failed_write_is_logged_and_the_next_use_tries_again(tmp_path: Path) -> None:
    """Another process holds the database's write lock past the busy timeout: the write
    fails, the key still authenticates, the failure is logged and the key's next use (within
    the minute) writes again."""
    async with keyed(tmp_path, busy_timeout=0.2) as k:
        holder = sqlite3.connect(tmp_path / "flow8.db", isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            with structlog.testing.capture_logs() as logs:
                await _use(k)
                await wait_until(  # the write fails once the busy timeout has passed
                    lambda: any(e["event"] == "api_key_last_used_not_written" for e in logs),
                    what="the failed write logged",
                )
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        [failure] = [e for e in logs if e["event"] == "api_key_last_used_not_written"]
        assert failure["key_id"] == k.key_id
        assert failure["log_level"] == "warning"
        assert "locked" in failure["error"]
        assert await _last_used(k) is None
        await _use(k)  # the service's clock has not moved: only the failure allows this write
        await _settled(k.store)
        assert await _last_used(k) is not None
