"""The store's own work as a supervised service (`open_store(..., serve=False)` + `store.serve`).

This is how the `store` actor of the supervision tree runs the group-commit writer: it may be
stopped and started again on the same store handle without losing a queued write.
"""

from __future__ import annotations

from pathlib import Path

import mongomock
import trio
from store_kit import KEYS, TEST_CATALOG

import actors
from flow8.store import open_store


def _url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path}/service.db"


async def test_writes_wait_for_the_writer_and_commit_once_it_runs(tmp_path: Path) -> None:
    async with open_store(
        _url(tmp_path), encryption=KEYS, catalog=TEST_CATALOG, serve=False
    ) as store, trio.open_nursery() as nursery:  # fmt: skip
        docs = store.tenant("acme").collection("docs")
        inserted = trio.Event()

        async def insert() -> None:
            await docs.insert_one({"n": 1})
            inserted.set()

        nursery.start_soon(insert)
        await trio.sleep(0.05)
        assert not inserted.is_set()  # no writer yet: the write is queued, not lost
        await nursery.start(store.serve)
        with trio.fail_after(5):
            await inserted.wait()
        assert await docs.count({}) == 1
        nursery.cancel_scope.cancel()


async def test_a_stopped_writer_leaves_the_queue_to_the_next_run(tmp_path: Path) -> None:
    async with open_store(
        _url(tmp_path), encryption=KEYS, catalog=TEST_CATALOG, serve=False
    ) as store:
        docs = store.tenant("acme").collection("docs")
        async with trio.open_nursery() as nursery:
            scope = trio.CancelScope()

            async def first_run(task_status: trio.TaskStatus[None]) -> None:
                with scope:
                    await store.serve(task_status=task_status)

            await nursery.start(first_run)
            await docs.insert_one({"n": 1})
            scope.cancel()  # the store actor is stopped (or crashed) ...
        pipe = store.pipeline()
        for n in range(2, 6):
            pipe.insert_one(docs, {"n": n})
        async with trio.open_nursery() as nursery:
            await nursery.start(store.serve)  # ... and started again on the same handle
            with trio.fail_after(5):
                await pipe.sync()
            nursery.cancel_scope.cancel()
        assert sorted(d["n"] for d in await docs.find({})) == [1, 2, 3, 4, 5]


async def test_closing_without_a_running_writer_drains_the_queue(tmp_path: Path) -> None:
    async with open_store(
        _url(tmp_path), encryption=KEYS, catalog=TEST_CATALOG, serve=False
    ) as store:
        pipe = store.pipeline()
        for n in range(3):
            pipe.insert_one(store.tenant("acme").collection("docs"), {"n": n})
    async with open_store(_url(tmp_path), encryption=KEYS, catalog=TEST_CATALOG) as reopened:
        assert await reopened.tenant("acme").collection("docs").count({}) == 3
    with trio.fail_after(1):
        await pipe.sync()  # every queued write was answered


async def test_store_actor_in_a_supervision_tree(tmp_path: Path) -> None:
    async with open_store(
        _url(tmp_path), encryption=KEYS, catalog=TEST_CATALOG, serve=False
    ) as store:
        tree = actors.SupervisorSpec([actors.task("store", store.serve)])
        async with actors.open_runtime(tree) as runtime:
            node = runtime.tree()["children"][0]
            assert (node["name"], node["state"]) == ("store", "running")
            await store.tenant("acme").collection("docs").insert_one({"n": 1})
        assert await store.tenant("acme").collection("docs").count({}) == 1


async def test_mongo_lanes_run_under_the_service() -> None:
    async with open_store(
        "mongodb://localhost/flow8_test", encryption=KEYS, catalog=TEST_CATALOG,
        mongo_client=mongomock.MongoClient(tz_aware=True), serve=False,
    ) as store, trio.open_nursery() as nursery:  # fmt: skip
        await nursery.start(store.serve)
        pipe = store.pipeline()
        pipe.insert_one(store.tenant("acme").collection("docs"), {"n": 1})
        with trio.fail_after(5):
            await pipe.sync()
        assert await store.tenant("acme").collection("docs").count({}) == 1
        nursery.cancel_scope.cancel()
