"""Bulk fields (a play's input, a layer's output): stored and read like any other, never
filtered or sorted on, and kept by sqlite apart from the document its indexes parse."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from store_kit import backend_of, open_test_store

from flow8.store import InvalidQuery, Keyring, ReturnDocument, Store, open_store


def records(store: Store) -> Any:
    return store.tenant("acme").collection("records")


async def test_bulk_fields_round_trip_and_are_not_filtered_on(store: Store) -> None:
    c = records(store)
    payload = {"items": list(range(1000)), "note": "\x01 marked text"}
    i = await c.insert_one({"n": 1, "payload": payload, "secret": "s3cret"})
    await c.insert_one({"n": 2})
    got = await c.find_one({"_id": i})
    assert got is not None
    assert (got["n"], got["payload"], got["secret"]) == (1, payload, "s3cret")
    await c.update_one({"_id": i}, {"$set": {"payload.note": "changed", "n": 3}})
    after = await c.find_one_and_update(
        {"n": 3}, {"$push": {"payload.items": -1}}, return_document=ReturnDocument.AFTER
    )
    assert after is not None
    assert after["payload"]["note"] == "changed"
    assert after["payload"]["items"][-1] == -1
    assert [d["n"] for d in await c.find({}, sort=[("n", 1)])] == [2, 3]
    with pytest.raises(InvalidQuery, match="cannot filter on unindexed data field 'payload'"):
        await c.find({"payload.note": "changed"})
    with pytest.raises(InvalidQuery, match="cannot sort on unindexed data field 'payload'"):
        await c.find({}, sort=[("payload.note", 1)])
    with pytest.raises(InvalidQuery, match="cannot filter on encrypted field 'secret'"):
        await c.count({"secret": "s3cret"})


async def test_sqlite_keeps_big_bulk_fields_out_of_the_indexed_document(tmp_path: Path) -> None:
    async with open_test_store("sqlite", tmp_path) as s:
        await records(s).insert_one({"n": 1, "payload": {"big": "x" * 5000}})
        await records(s).insert_one({"n": 2, "payload": {"small": "x"}})
        with sqlite3.connect(backend_of(s).path) as db:
            rows = db.execute('SELECT doc, bulk FROM "c_records" ORDER BY rowid').fetchall()
        (big_doc, big_bulk), (small_doc, small_bulk) = rows
        assert "payload" not in big_doc
        assert '"big"' in big_bulk
        # A small document stays whole (cheaper than two encodings); both read back alike.
        assert '"small"' in small_doc
        assert small_bulk is None
        found = await records(s).find({}, sort=[("n", 1)])
        assert [d["payload"] for d in found] == [{"big": "x" * 5000}, {"small": "x"}]


async def test_a_database_from_before_the_bulk_column_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute('CREATE TABLE "c_plays" (id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL)')
        db.execute(
            'INSERT INTO "c_plays" VALUES (?, ?)',
            ("p1", '{"_id": "p1", "company_id": "acme", "status": "DONE", "input": {"a": 1}}'),
        )
    async with open_store(f"sqlite:///{path}", encryption=Keyring.generate()) as s:
        plays = s.tenant("acme").collection("plays")
        old = await plays.find_one({"_id": "p1"})
        assert old is not None
        assert old["input"] == {"a": 1}  # read from the document as it was written
        await plays.update_one({"_id": "p1"}, {"$set": {"output": 2}})
        updated = await plays.find_one({"status": "DONE"})
        assert updated is not None
        assert (updated["input"], updated["output"]) == ({"a": 1}, 2)
