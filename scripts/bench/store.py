"""Store benchmark: flow8's sqlite backend beside raw sqlite3 doing the same work.

Run: .venv/bin/python scripts/bench/store.py [--docs 1000000] [--seconds 3]

Reports single-document commits/s (durability full and normal), documents/s with 64 concurrent
writers through group commit, bulk insert documents/s, and indexed find_one latency at --docs
documents. Targets: group commit (64 writers, full) >= 20x one-commit-per-write (full);
indexed find_one median < 1 ms; bulk insert within 2x of raw sqlite3.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import structlog
import trio

from flow8.store import CATALOG, CollectionSpec, Durability, Keyring, index, new_id, open_store

CATALOG_B = CATALOG.extended(
    CollectionSpec("bench", "tenant", (index("company_id", "key", unique=True),))
)
KEYS = Keyring.generate()
COMPANY = "acme"


def doc(i: int) -> dict[str, Any]:
    return {"key": f"key-{i:08d}", "n": i, "state": "DONE", "tags": ["a", "b"], "pad": "x" * 100}


# -- raw sqlite3 baselines ----------------------------------------------------------------


def raw_open(path: Path, sync: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {sync}")
    conn.execute('CREATE TABLE IF NOT EXISTS "t" (id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL)')
    conn.execute(
        'CREATE UNIQUE INDEX IF NOT EXISTS "ix" ON "t" '
        "(json_extract(doc, '$.company_id'), json_extract(doc, '$.key'))"
    )
    return conn


def raw_row(i: int) -> tuple[str, str]:
    d = {"_id": new_id(), **doc(i), "company_id": COMPANY}
    return d["_id"], json.dumps(d, separators=(",", ":"))


def fsync_median(path: Path, samples: int = 300) -> float:
    """The disk's cost of one durable commit: fsync after a 1 KB append."""
    times = []
    with open(path, "ab") as f:
        for _ in range(samples):
            f.write(b"x" * 1024)
            f.flush()
            t0 = time.perf_counter()
            os.fsync(f.fileno())
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def raw_single(path: Path, sync: str, seconds: float) -> float:
    conn = raw_open(path, sync)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn.execute('INSERT INTO "t" VALUES (?, ?)', raw_row(n))  # autocommit: one commit
        n += 1
    rate = n / (time.perf_counter() - start)
    conn.close()
    return rate


def raw_concurrent(path: Path, writers: int, seconds: float) -> float:
    counts = [0] * writers
    stop = time.perf_counter() + seconds

    def work(w: int) -> None:
        conn = raw_open(path, "FULL")
        i = 0
        while time.perf_counter() < stop:
            conn.execute('INSERT INTO "t" VALUES (?, ?)', raw_row(w * 10_000_000 + i))
            i += 1
        counts[w] = i
        conn.close()

    raw_open(path, "FULL").close()
    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def raw_bulk_chunk(conn: sqlite3.Connection, lo: int, hi: int, batch: int) -> float:
    """Insert docs lo..hi in transactions of ``batch``; return the seconds it took."""
    start = time.perf_counter()
    for first in range(lo, hi, batch):
        rows = [raw_row(i) for i in range(first, min(hi, first + batch))]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany('INSERT INTO "t" VALUES (?, ?)', rows)
        conn.execute("COMMIT")
    return time.perf_counter() - start


def raw_find_latency(path: Path, total: int, samples: int) -> float:
    conn = sqlite3.connect(path)
    rng = random.Random(1)
    times = []
    sql = (
        "SELECT doc FROM \"t\" WHERE json_extract(doc, '$.company_id') = ? "
        "AND json_extract(doc, '$.key') = ? LIMIT 1"
    )
    for _ in range(samples):
        key = f"key-{rng.randrange(total):08d}"
        t0 = time.perf_counter()
        row = conn.execute(sql, (COMPANY, key)).fetchone()
        json.loads(row[0])
        times.append(time.perf_counter() - t0)
    conn.close()
    return statistics.median(times)


# -- flow8 store ------------------------------------------------------------------------------


async def store_single(path: Path, durability: Durability, seconds: float) -> float:
    async with open_store(
        f"sqlite://{path}",
        durability=durability,
        encryption=KEYS,
        catalog=CATALOG_B,
    ) as store:
        coll = store.tenant(COMPANY).collection("bench")
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            await coll.insert_one(doc(n))
            n += 1
        return n / (time.perf_counter() - start)


async def store_concurrent(path: Path, writers: int, seconds: float) -> float:
    async with open_store(
        f"sqlite://{path}", durability="full", encryption=KEYS, catalog=CATALOG_B
    ) as store:
        coll = store.tenant(COMPANY).collection("bench")
        counts = [0] * writers
        stop = time.perf_counter() + seconds

        async def writer(w: int) -> None:
            i = 0
            while time.perf_counter() < stop:
                await coll.insert_one(doc(w * 10_000_000 + i))
                i += 1
            counts[w] = i

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for w in range(writers):
                nursery.start_soon(writer, w)
        return sum(counts) / (time.perf_counter() - start)


async def bulk_and_find(
    store_path: Path, raw_path: Path, total: int, batch: int, samples: int
) -> tuple[float, float, float]:
    """Bulk-load ``total`` docs into the store and into raw sqlite3, alternating chunks so both
    see the same machine load; then time indexed find_one on the store."""
    raw = raw_open(raw_path, "FULL")
    async with open_store(
        f"sqlite://{store_path}", durability="full", encryption=KEYS, catalog=CATALOG_B
    ) as store:
        coll = store.tenant(COMPANY).collection("bench")
        ours = theirs = 0.0
        chunk = max(batch, total // 10)
        for lo in range(0, total, chunk):
            hi = min(total, lo + chunk)
            theirs += raw_bulk_chunk(raw, lo, hi, batch)
            start = time.perf_counter()
            for first in range(lo, hi, batch):
                await coll.insert_many([doc(i) for i in range(first, min(hi, first + batch))])
            ours += time.perf_counter() - start
        raw.close()
        rng = random.Random(1)
        times = []
        for _ in range(samples):
            key = f"key-{rng.randrange(total):08d}"
            t0 = time.perf_counter()
            found = await coll.find_one({"key": key})
            times.append(time.perf_counter() - t0)
            assert found is not None
            assert found["key"] == key
        return total / ours, total / theirs, statistics.median(times)


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1_000_000, help="documents for bulk/find")
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of each rate test")
    ap.add_argument("--writers", type=int, default=64)
    ap.add_argument("--samples", type=int, default=2000)
    args = ap.parse_args()
    batch = 5000
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        print(f"flow8 store benchmark (sqlite {sqlite3.sqlite_version}); raw sqlite3 beside it")
        print(f"{'measure':<44}{'flow8':>14}{'raw sqlite3':>14}{'ratio':>8}")

        def row(name: str, ours: float, raw: float, unit: str) -> None:
            print(f"{name:<44}{ours:>10,.0f} {unit:<3}{raw:>10,.0f} {unit:<3}{ours / raw:>7.2f}x")

        full_raw = raw_single(d / "r1.db", "FULL", args.seconds)
        full = trio.run(store_single, d / "s1.db", "full", args.seconds)
        row("single-doc commits/s, durability=full", full, full_raw, "/s")
        normal_raw = raw_single(d / "r2.db", "NORMAL", args.seconds)
        normal = trio.run(store_single, d / "s2.db", "normal", args.seconds)
        row("single-doc commits/s, durability=normal", normal, normal_raw, "/s")
        conc_raw = raw_concurrent(d / "r3.db", args.writers, args.seconds)
        conc = trio.run(store_concurrent, d / "s3.db", args.writers, args.seconds)
        row(f"docs/s, {args.writers} concurrent writers, full", conc, conc_raw, "/s")
        bulk, bulk_raw, find = trio.run(
            bulk_and_find, d / "s4.db", d / "r4.db", args.docs, batch, args.samples
        )
        row(f"bulk insert docs/s ({args.docs:,} docs, {batch}/batch)", bulk, bulk_raw, "/s")
        find_raw = raw_find_latency(d / "r4.db", args.docs, args.samples)
        print(
            f"{f'indexed find_one median at {args.docs:,} docs':<44}"
            f"{find * 1e3:>10.3f} ms {find_raw * 1e3:>10.3f} ms {find / find_raw:>7.2f}x"
        )
        print()
        fs = fsync_median(d / "fsync.bin")
        print(f"fsync after a 1 KB append here: {fs * 1e3:.3f} ms median")
        gc = conc / full_raw
        print(f"group commit vs one-commit-per-write (full): {gc:.1f}x  (target >= 20x)")
        print(
            f"  (the ratio is bounded by fsync cost: at {1 / fs:,.0f} fsyncs/s here a commit is "
            f"cheap; group commit moves {conc:,.0f} docs/s = {conc * fs:.1f} docs per fsync time)"
        )
        print(f"group commit vs flow8 single-doc (full):     {conc / full:.1f}x")
        print(f"indexed find_one median: {find * 1e3:.3f} ms  (target < 1 ms)")
        print(f"bulk insert overhead vs raw sqlite3: {bulk_raw / bulk:.2f}x  (target <= 2x)")


if __name__ == "__main__":
    main()
