"""Durability and faults on the sqlite backend: group commit, SIGKILL, locks, full disk, TTL,
several stores on one file."""

from __future__ import annotations

import random
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio
from store_kit import TEST_CATALOG, backend_of, open_test_store

from flow8.store import DatabaseLocked, DuplicateKey, StorageFull, Store, StoreError

ROOT = Path(__file__).resolve().parents[2]


def engine(store: Store) -> Any:
    return backend_of(store)


def raw_count(path: Path, coll: str) -> int:
    with sqlite3.connect(path) as c:
        return int(c.execute(f'SELECT count(*) FROM "c_{coll}"').fetchone()[0])


async def test_concurrent_writers_share_commits(sqlite_store: Store) -> None:
    c = sqlite_store.tenant("acme").collection("docs")
    path = engine(sqlite_store).path
    before = engine(sqlite_store).commits

    async def writer(i: int) -> None:
        doc_id = await c.insert_one({"i": i})
        # acknowledged means committed: a separate connection sees it at once
        with sqlite3.connect(path) as raw:
            assert raw.execute('SELECT 1 FROM "c_docs" WHERE id = ?', (doc_id,)).fetchone()

    async with trio.open_nursery() as n:
        for i in range(64):
            n.start_soon(writer, i)
    commits = engine(sqlite_store).commits - before
    assert await c.count() == 64
    assert commits <= 16, f"64 concurrent writes took {commits} commits"
    assert sqlite_store.statistics()["committed_ops"] >= 64


async def test_one_failing_op_does_not_undo_its_batch(sqlite_store: Store) -> None:
    t = sqlite_store.tenant("acme").collection("things")
    results: list[str] = []

    async def put(k: str) -> None:
        try:
            await t.insert_one({"k": k})
            results.append("ok")
        except DuplicateKey:
            results.append("dup")

    async with trio.open_nursery() as n:
        for k in ["a", "b", "a", "c", "a"]:
            n.start_soon(put, k)
    assert sorted(results) == ["dup", "dup", "ok", "ok", "ok"]
    assert await t.count() == 3


async def test_pipeline_sync_is_a_durability_barrier(sqlite_store: Store) -> None:
    c = sqlite_store.tenant("acme").collection("docs")
    pipe = sqlite_store.pipeline()
    ids = [pipe.insert_one(c, {"n": i}) for i in range(200)]
    await pipe.sync()
    assert raw_count(engine(sqlite_store).path, "docs") == 200
    assert len(set(ids)) == 200


_ID = re.compile(r"^[0-9A-Z]{26}$", re.MULTILINE)


def _ids(text: str) -> list[str]:
    """Acknowledged ids the child printed (its log lines are not ids)."""
    return _ID.findall(text)


def _first_ids(proc: subprocess.Popen[str]) -> list[str]:
    """Block until the child acknowledged its first write (skipping its log lines)."""
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(proc.stderr.read() if proc.stderr else "child exited")
        if found := _ids(line):
            return found


CHILD = textwrap.dedent(
    """
    import sys, trio
    sys.path.insert(0, sys.argv[2])
    from flow8.store import open_store, Keyring

    async def main():
        keys = Keyring.generate()
        async with open_store("sqlite://" + sys.argv[1], encryption=keys) as store:
            coll = store.tenant("acme").collection("flows")

            async def writer(w):
                n = 0
                while True:
                    n += 1
                    doc_id = await coll.insert_one({"name": f"w{w}-{n}", "pad": "x" * 200})
                    print(doc_id, flush=True)

            async with trio.open_nursery() as nursery:
                for w in range(16):
                    nursery.start_soon(writer, w)

    trio.run(main)
    """
)


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_write(tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    acked: list[str] = []
    rng = random.Random(8)
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(db), str(ROOT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        acked.extend(_first_ids(proc))
        assert proc.stdout is not None
        deadline = time.monotonic() + rng.uniform(0.2, 0.8)
        while time.monotonic() < deadline:
            line = proc.stdout.readline().strip()
            if line:
                acked.extend(_ids(line))
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate()
        # lines already printed were acknowledged before the kill
        acked.extend(_ids(rest))
    with sqlite3.connect(db) as c:
        stored = {r[0] for r in c.execute('SELECT id FROM "c_flows"')}
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    missing = [i for i in acked if i not in stored]
    assert len(acked) > 50
    assert missing == []


@pytest.mark.slow
def test_two_writing_processes_share_one_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(db), str(ROOT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    acked: list[str] = []
    for proc in procs:  # both are writing before the clock starts
        acked.extend(_first_ids(proc))
    time.sleep(0.5)
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        acked.extend(_ids(out))
        assert acked, err
    with sqlite3.connect(db) as c:
        stored = {r[0] for r in c.execute('SELECT id FROM "c_flows"')}
    assert len(acked) > 20
    assert [i for i in acked if i not in stored] == []


async def test_locked_database_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    async with open_test_store("sqlite", tmp_path, busy_timeout=0.2) as s:
        c = s.tenant("acme").collection("docs")
        await c.insert_one({"before": 1})
        holder = sqlite3.connect(engine(s).path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            start = time.monotonic()
            with pytest.raises(DatabaseLocked, match="locked by another process"):
                await c.insert_one({"during": 1})
            assert time.monotonic() - start < 5
            assert await c.count() == 1  # reads still work under WAL
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await c.insert_one({"after": 1})
        assert await c.count() == 2


async def test_full_disk_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    async with open_test_store("sqlite", tmp_path) as s:
        c = s.tenant("acme").collection("docs")
        await c.insert_one({"small": 1})
        writer = engine(s)._writer
        pages = writer.execute("PRAGMA page_count").fetchone()[0]
        writer.execute(f"PRAGMA max_page_count = {pages + 2}")
        with pytest.raises(StorageFull, match="full"):
            await c.insert_many([{"blob": "x" * 100_000, "i": i} for i in range(5)])
        assert await c.count() == 1
        writer.execute("PRAGMA max_page_count = 1073741823")
        await c.insert_one({"small": 2})
        assert await c.count() == 2


async def test_expired_documents_are_purged_in_the_background(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_test_store("sqlite", tmp_path, ttl_interval=60) as s:
        c = s.tenant("acme").collection("leases")
        past = datetime.now(UTC) - timedelta(minutes=1)
        await c.insert_many([{"key": f"k{i}", "expires_at": past} for i in range(2500)])
        await c.insert_one({"key": "live", "expires_at": past + timedelta(hours=2)})
        path = engine(s).path
        assert raw_count(path, "leases") == 2501
        assert await c.count() == 1
        await trio.sleep(61)  # virtual: the purge task's interval elapses
        # The purge itself runs in the writer thread: wait (bounded) for it to finish.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if await trio.to_thread.run_sync(raw_count, path, "leases") == 1:
                break
        assert raw_count(path, "leases") == 1


async def test_two_stores_on_one_file_see_each_other(tmp_path: Path) -> None:
    async with (
        open_test_store("sqlite", tmp_path) as a,
        open_test_store("sqlite", tmp_path) as b,
    ):
        ta = a.tenant("acme").collection("things")
        tb = b.tenant("acme").collection("things")

        async def burst(coll: Any, tag: str) -> None:
            for i in range(50):
                await coll.insert_one({"n": i, "who": tag})

        async with trio.open_nursery() as n:
            n.start_soon(burst, ta, "a")
            n.start_soon(burst, tb, "b")
        await ta.insert_one({"k": "shared"})
        with pytest.raises(DuplicateKey):
            await tb.insert_one({"k": "shared"})
        assert await tb.count() == await ta.count() == 101


async def test_changed_index_declarations_are_rebuilt_on_start(tmp_path: Path) -> None:
    from flow8.store import CollectionSpec, index

    strict = TEST_CATALOG.extended(
        CollectionSpec("evolving", "tenant", (index("company_id", "x", unique=True),))
    )
    loose = TEST_CATALOG.extended(CollectionSpec("evolving", "tenant", (index("company_id", "x"),)))
    async with open_test_store("sqlite", tmp_path, catalog=strict) as s:
        await s.tenant("a").collection("evolving").insert_one({"x": 1})
        with pytest.raises(DuplicateKey):
            await s.tenant("a").collection("evolving").insert_one({"x": 1})
    async with open_test_store("sqlite", tmp_path, catalog=loose) as s:
        await s.tenant("a").collection("evolving").insert_one({"x": 1})  # no longer unique
    with pytest.raises(StoreError, match="duplicate values"):
        async with open_test_store("sqlite", tmp_path, catalog=strict):
            pass
    async with open_test_store("sqlite", tmp_path, catalog=loose) as s:
        assert await s.tenant("a").collection("evolving").count({"x": 1}) == 2
