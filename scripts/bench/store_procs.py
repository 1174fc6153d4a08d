"""The embedded store under several processes: where its ceiling is, and what the host's write
queue (an flock around each write transaction, `SqliteBackend._host_write_turn`) changes.

Run: .venv/bin/python scripts/bench/store_procs.py [--procs 1,2,4,8] [--writers 16]
     [--seconds 4] [--durability full|normal]

Each case starts P processes on one new SQLite file (as P workers of `flow8 serve` share
one); each runs `--writers` concurrent tasks that insert one document at a time and wait for
it to be durable (each process group-commits its own writes). Every case runs twice in the
same sitting, interleaved: with the write queue (as flow8 runs) and without it (each
process's writer polls for SQLite's lock through its busy handler, as before), and prints
documents/s, per-write p50/p99 latency, documents per commit (per fsync under `full`) and,
with the queue, how often and how long a commit waited for another process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog
import trio

from flow8.store import Keyring, open_store

COMPANY = "acme"


async def _one_process(path: str, writers: int, seconds: float, durability: str, queue: bool,
                       start_at: float) -> dict[str, Any]:  # fmt: skip
    keys = Keyring.parse(os.environ["BENCH_KEYS"])
    async with open_store(f"sqlite:///{path}", durability=durability, encryption=keys) as store:  # type: ignore[arg-type]
        backend: Any = store.backend
        if not queue:  # the baseline: SQLite's busy handler alone arbitrates the writers
            os.close(backend._writer_lock)
            backend._writer_lock = -1
        coll = store.tenant(COMPANY).collection("audit_logs")
        latencies: list[float] = []
        await trio.sleep(max(0.0, start_at - time.time()))
        stop = time.monotonic() + seconds
        commits0 = backend.commits

        async def writer(w: int) -> None:
            n = 0
            while time.monotonic() < stop:
                began = time.perf_counter()
                await coll.insert_one({"action": "bench", "w": w, "n": n, "pad": "x" * 200})
                latencies.append(time.perf_counter() - began)
                n += 1

        async with trio.open_nursery() as nursery:
            for w in range(writers):
                nursery.start_soon(writer, w)
        return {
            "docs": len(latencies),
            "latencies": latencies,
            "commits": backend.commits - commits0,
            "lock_waits": backend.lock_waits,
            "lock_wait_seconds": backend.lock_wait_seconds,
        }


def _child() -> None:
    path, writers, seconds, durability, queue, start_at = sys.argv[2:8]
    result = trio.run(_one_process, path, int(writers), float(seconds), durability,
                      queue == "1", float(start_at))  # fmt: skip
    print(json.dumps(result))


def _case(procs: int, queue: bool, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="flow8-procs-") as tmp:
        path = str(Path(tmp) / "flow8.db")
        start_at = time.time() + 2.0 + 0.2 * procs  # every process open before the clock starts
        queued = "1" if queue else "0"
        command = [sys.executable, __file__, "--child", path, str(args.writers)]
        command += [str(args.seconds), args.durability, queued, str(start_at)]
        children = [
            subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(procs)
        ]
        results = [json.loads(c.communicate()[0]) for c in children]
    latencies = sorted(x for r in results for x in r["latencies"])
    docs = sum(r["docs"] for r in results)
    commits = sum(r["commits"] for r in results)
    return {
        "docs_s": docs / args.seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000,
        "per_commit": docs / commits if commits else 0.0,
        "waits": sum(r["lock_waits"] for r in results),
        "wait_s": sum(r["lock_wait_seconds"] for r in results),
    }


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        logging.disable(logging.WARNING)
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
        _child()
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", default="1,2,4,8")
    parser.add_argument("--writers", type=int, default=16, help="concurrent writers per process")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--durability", choices=("full", "normal"), default="full")
    args = parser.parse_args()
    os.environ["BENCH_KEYS"] = Keyring.generate().serialize()
    print(
        f"embedded store under several processes: {os.cpu_count()} cores, durability "
        f"{args.durability}, {args.writers} writers per process, {args.seconds:g} s per case"
    )
    print(
        f"{'procs':>5}  {'queue':>5}  {'docs/s':>8}  {'p50 ms':>7}  {'p99 ms':>8}  "
        f"{'docs/commit':>11}  {'lock waits':>10}  {'waited s':>8}"
    )
    for procs in (int(p) for p in args.procs.split(",")):
        for queue in (True, False):
            r = _case(procs, queue, args)
            waits = f"{r['waits']:>10}  {r['wait_s']:>8.2f}" if queue else f"{'-':>10}  {'-':>8}"
            print(
                f"{procs:>5}  {'flock' if queue else 'busy':>5}  {r['docs_s']:>8.0f}  "
                f"{r['p50_ms']:>7.1f}  {r['p99_ms']:>8.1f}  {r['per_commit']:>11.1f}  {waits}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
