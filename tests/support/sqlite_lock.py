"""A sqlite database another process keeps locked: the fault a store outage looks like on
the embedded store (every write is refused with ``DatabaseLocked`` once the busy timeout
passes, while reads go on)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

# Holds the write lock of the file named in argv[1] until its stdin closes.
_HOLD_WRITE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


@asynccontextmanager
async def write_lock_held(path: Path) -> AsyncIterator[None]:
    """Another process holds the write lock of the database at ``path`` inside the block."""
    holder = await trio.lowlevel.open_process(
        [sys.executable, "-c", _HOLD_WRITE_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert holder.stdin is not None
    assert holder.stdout is not None
    async with holder.stdin, holder.stdout:
        said = b""
        while not said.endswith(b"\n"):
            more = await holder.stdout.receive_some()
            if not more:
                break
            said += more
        assert said == b"locked\n", f"the lock holder said {said!r}"
        yield
    assert await holder.wait() == 0  # stdin closed: it let go of the lock
