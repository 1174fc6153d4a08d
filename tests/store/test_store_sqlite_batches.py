"""The sqlite writer runs consecutive inserts into one collection as one multi-row statement,
so the writer thread hands the GIL back and forth once per chunk rather than once per row."""

from __future__ import annotations

from pathlib import Path

import trio
from store_kit import backend_of, open_test_store

from flow8.store import DuplicateKey, StoreError
from flow8.store._ops import InsertOp


async def test_concurrent_inserts_into_one_collection_share_a_statement(tmp_path: Path) -> None:
    async with open_test_store("sqlite", tmp_path) as s:
        docs = s.tenant("acme").collection("docs")
        things = s.tenant("acme").collection("things")
        statements: list[str] = []
        backend_of(s)._writer.set_trace_callback(statements.append)

        async def put(i: int) -> None:
            await (docs if i % 10 else things).insert_one({"i": i, "k": f"k{i}"})

        async with trio.open_nursery() as n:
            for i in range(100):
                n.start_soon(put, i)
        backend_of(s)._writer.set_trace_callback(None)
        inserts = [q for q in statements if q.startswith("INSERT")]
        assert len(inserts) < 40, f"100 inserts took {len(inserts)} statements"
        assert await docs.count() == 90
        assert await things.count() == 10


async def test_a_duplicate_in_a_merged_statement_fails_only_its_own_insert(
    tmp_path: Path,
) -> None:
    async with open_test_store("sqlite", tmp_path) as s:
        things = s.tenant("acme").collection("things")
        await things.insert_one({"k": "taken"})
        outcome: dict[str, str] = {}

        async def put(k: str) -> None:
            try:
                await things.insert_one({"k": k})
                outcome[k] = "ok"
            except DuplicateKey:
                outcome[k] = "dup"

        async with trio.open_nursery() as n:
            for k in ["a", "b", "taken", "c", "d"]:
                n.start_soon(put, k)
        assert outcome == {"a": "ok", "b": "ok", "taken": "dup", "c": "ok", "d": "ok"}
        assert sorted(d["k"] for d in await things.find({})) == ["a", "b", "c", "d", "taken"]


async def test_an_op_the_driver_refuses_fails_alone_and_the_writer_keeps_running(
    tmp_path: Path,
) -> None:
    """Defence in depth behind the store's checks: a document that reaches the writer and
    that sqlite3 cannot even encode (here handed to the backend directly, past the scope's
    validation) fails its own write only; the batch around it commits and the writer goes on."""
    async with open_test_store("sqlite", tmp_path) as s:
        things = s.tenant("acme").collection("things")
        backend = backend_of(s)
        spec = backend.catalog.get("things")
        bad = InsertOp(spec, ({"_id": "bad", "company_id": "acme", "k": "\udfff"},))
        outcome: dict[str, str] = {}

        async def put(k: str) -> None:
            await things.insert_one({"k": k})
            outcome[k] = "ok"

        async def put_bad() -> None:
            try:
                await backend.write(bad)
                outcome["bad"] = "ok"
            except StoreError as e:
                outcome["bad"] = str(e)

        async with trio.open_nursery() as n:
            for k in ["a", "b"]:
                n.start_soon(put, k)
            n.start_soon(put_bad)
            for k in ["c", "d"]:
                n.start_soon(put, k)
        assert outcome["bad"] == "things: the write could not be made: UnicodeEncodeError"
        assert {k: v for k, v in outcome.items() if k != "bad"} == dict.fromkeys("abcd", "ok")
        await things.insert_one({"k": "after"})  # the writer is still running
        assert sorted(d["k"] for d in await things.find({})) == ["a", "after", "b", "c", "d"]
