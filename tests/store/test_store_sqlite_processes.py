"""Several processes on one sqlite file (the workers of one `flow8 serve`): their writers take
turns through the host's write queue, an flock on `<db>-writer`, instead of polling for
SQLite's lock. A writer that finds another process writing waits in the kernel and goes the
moment that one lets go; its writes are neither failed nor lost."""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from pathlib import Path

import pytest
import trio
from store_kit import backend_of, open_test_store

from flow8.store import Keyring, open_store

pytestmark = pytest.mark.wall_clock


async def test_a_write_waits_for_the_other_process_turn_then_commits(tmp_path: Path) -> None:
    async with open_test_store("sqlite", tmp_path) as s:
        backend = backend_of(s)
        docs = s.tenant("acme").collection("docs")
        await docs.insert_one({"k": "before"})
        # Another open file description stands for another process (flock locks belong to
        # the description): it holds the host's write turn for 300 ms.
        other = os.open(backend.path.with_name(backend.path.name + "-writer"), os.O_RDWR)
        fcntl.flock(other, fcntl.LOCK_EX)
        released = threading.Timer(0.3, fcntl.flock, (other, fcntl.LOCK_UN))
        began = time.monotonic()
        released.start()
        try:
            await docs.insert_one({"k": "during"})
        finally:
            released.join()
            os.close(other)
        assert time.monotonic() - began >= 0.25
        assert backend.lock_waits == 1
        assert 0.25 <= backend.lock_wait_seconds < 5.0
        assert sorted(d["k"] for d in await docs.find({})) == ["before", "during"]
        assert backend.statistics()["lock_waits"] == 1


WRITER = """
import sys, trio
from flow8.store import Keyring, open_store
async def main(path, tag):
    async with open_store(f"sqlite:///{path}", encryption=Keyring.parse(sys.argv[3])) as s:
        coll = s.tenant("acme").collection("audit_logs")
        async def write(w):
            for n in range(100):
                await coll.insert_one({"tag": tag, "w": w, "n": n})
        async with trio.open_nursery() as nursery:
            for w in range(8):
                nursery.start_soon(write, w)
trio.run(main, sys.argv[1], sys.argv[2])
"""


async def test_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    keys = Keyring.generate().serialize()
    path = tmp_path / "shared.db"
    async with trio.open_nursery() as nursery:
        for tag in ("a", "b", "c"):  # check=True: a writer that failed fails the test
            nursery.start_soon(
                trio.run_process, [sys.executable, "-c", WRITER, str(path), tag, keys]
            )
    async with open_store(f"sqlite:///{path}", encryption=Keyring.parse(keys)) as s:
        entries = s.tenant("acme").collection("audit_logs")
        for tag in ("a", "b", "c"):
            assert await entries.count({"tag": tag}) == 800
