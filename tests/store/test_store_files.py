"""The embedded database holds every tenant's data: its directory and files are private."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from flow8.store import Keyring, open_store


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_database_and_its_directory_are_private(tmp_path: Path) -> None:
    db = tmp_path / "data" / "flow8.db"
    async with open_store(f"sqlite:///{db}", encryption=Keyring.generate()) as store:
        await store.tenant("acme").collection("flows").insert_one({"name": "x"})
        assert _mode(db.parent) == 0o700
        for name in ("flow8.db", "flow8.db-wal", "flow8.db-shm"):
            assert _mode(db.parent / name) == 0o600, name


async def test_a_database_left_readable_by_others_is_made_private(tmp_path: Path) -> None:
    db = tmp_path / "flow8.db"
    sqlite3.connect(db).close()
    db.chmod(0o644)
    async with open_store(f"sqlite:///{db}", encryption=Keyring.generate()):
        assert _mode(db) == 0o600
