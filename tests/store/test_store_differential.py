"""Differential property tests: the sqlite and memory backends must each return exactly what
the mongomock oracle returns for generated documents, filters, sorts and updates.

Generation avoids where mongomock itself departs from real MongoDB:
* booleans mixed with the numbers 0/1 (mongomock treats true == 1); booleans are covered by the
  contract suite instead;
* sorting on array-valued fields (MongoDB sorts by the min/max element; both backends here order
  arrays as one bracket) - sort keys are scalar fields only;
* ``$addToSet`` with repeated values inside one ``$each`` (mongomock keeps duplicates);
* ``$pull`` / ``$addToSet`` on a non-array value: MongoDB refuses them (so does the store);
  mongomock sometimes ignores them, so that one disagreement is tolerated;
* upserts whose filter puts equalities inside ``$and`` (mongomock does not seed from them);
* a failing update's effect on the document: mongomock may half-apply it (MongoDB does not);
* null equality and ``$exists`` on dotted paths through arrays of sub-documents (the store
  answers those on the plain path only; value conditions do traverse one array level and are
  generated).
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_kit import open_test_store

from flow8.store import ReturnDocument, Store, StoreError

BASE = datetime(2026, 1, 1, tzinfo=UTC)

scalars = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.sampled_from([0.5, -1.5, 2.0, 1e9]),
    st.sampled_from(["", "a", "b", "ab", "B", "é", "\x01x", "10"]),
    st.integers(0, 4).map(lambda d: BASE + timedelta(days=d)),
)
arrays = st.lists(scalars, max_size=3)
FIELDS = ["a", "b", "arr", "sub.x"]
COMPARE = ["$gt", "$gte", "$lt", "$lte"]


@st.composite
def documents(draw: st.DrawFn, indexed: bool = False) -> dict[str, Any]:
    """On the "scalars" collection, a, b and sub.x are indexed and so never arrays."""
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["a"] = draw(scalars)
    if draw(st.booleans()):
        doc["b"] = draw(scalars if indexed else st.one_of(scalars, arrays))
    if draw(st.booleans()):
        doc["arr"] = draw(st.one_of(arrays, scalars))
    if draw(st.booleans()):
        doc["sub"] = {"x": draw(scalars)} if draw(st.booleans()) else {}
    if not indexed and draw(st.booleans()):
        item = st.one_of(
            st.builds(lambda x: {"x": x}, st.one_of(scalars, arrays)), st.just({"y": 1}), scalars
        )
        doc["items"] = draw(st.lists(item, max_size=3))
    return doc


comparable = scalars.filter(lambda v: v is not None)


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    path = draw(st.sampled_from([*FIELDS, "items.x"]))
    if path == "items.x":
        # through an array of sub-documents: value conditions only (see the store README)
        op = draw(st.sampled_from(["eq", "$eq", "$ne", *COMPARE, "$in", "$nin"]))
        if op in ("$in", "$nin"):
            return {path: {op: draw(st.lists(comparable, max_size=3))}}
        return {path: {op: draw(comparable)} if op != "eq" else draw(comparable)}
    op = draw(
        st.sampled_from(
            ["eq", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"]
        )
    )
    if op == "eq":
        return {path: draw(st.one_of(scalars, arrays))}
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return {path: {op: draw(comparable)}}
    if op in ("$in", "$nin"):
        return {path: {op: draw(st.lists(scalars, max_size=3))}}
    if op == "$exists":
        return {path: {op: draw(st.booleans())}}
    return {path: {op: draw(scalars)}}


filters = st.recursive(
    conditions(),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(inner, min_size=1, max_size=3)),
    ),
    max_leaves=4,
)

sorts = st.lists(
    st.tuples(st.sampled_from(["a", "sub.x"]), st.sampled_from([1, -1])),
    max_size=2,
    unique_by=lambda t: t[0],
)


@st.composite
def updates(draw: st.DrawFn) -> dict[str, Any]:
    ops: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(["a", "b", "arr", "sub.x", "c"]))
        if any(path == u or path.startswith(u + ".") or u.startswith(path + ".") for u in used):
            continue
        used.add(path)
        op = draw(st.sampled_from(["$set", "$unset", "$inc", "$push", "$addToSet", "$pull"]))
        if op == "$set":
            arg: Any = draw(st.one_of(scalars, arrays))
        elif op == "$unset":
            arg = ""
        elif op == "$inc":
            arg = draw(st.integers(-3, 3))
        elif op == "$push":
            arg = draw(st.one_of(scalars, st.builds(lambda x: {"$each": x}, arrays)))
        elif op == "$addToSet":
            arg = draw(scalars)
        else:
            arg = draw(st.one_of(scalars, st.builds(lambda v: {"$gte": v}, st.integers(-5, 5))))
        ops.setdefault(op, {})[path] = arg
    return ops


class Backends:
    """The backends under test (sqlite, memory) and the oracle (mongomock), each holding the
    same documents; every backend's answer is compared with the oracle's. Each example
    writes its documents as a company of its own (``reset``), so examples share the stores
    without seeing each other's documents (and a query that leaked across companies would
    disagree with the oracle)."""

    def __init__(self, tested: dict[str, Store], oracle: Store, collection: str = "docs") -> None:
        self.tested = tested
        self.oracle = oracle
        self.collection = collection
        self.company = ""

    async def reset(self, docs: list[dict[str, Any]]) -> None:
        self.company = f"c{next(_companies)}"
        for s in [*self.tested.values(), self.oracle]:
            await (
                s.tenant(self.company)
                .collection(self.collection)
                # _id is unique across companies, as a ULID is: the company in it.
                .insert_many([{"_id": f"d{i:02d}-{self.company}", **d} for i, d in enumerate(docs)])
            )

    async def call(self, store: Store, method: str, *args: Any, **kw: Any) -> tuple[str, Any]:
        coll = store.tenant(self.company).collection(self.collection)
        try:
            return ("ok", await getattr(coll, method)(*args, **kw))
        except StoreError as e:
            return ("error", type(e).__name__)

    async def oracle_call(self, method: str, *args: Any, **kw: Any) -> tuple[str, Any]:
        return await self.call(self.oracle, method, *args, **kw)


_companies = itertools.count(1)


class Stores:
    """sqlite, memory and mongomock stores open in a Trio run on a thread of their own, for
    the whole module: opening three stores per example cost more than the example. (A plain
    class: hypothesis prints it beside each example, and would print an attrs class's
    fields, the stores' whole state.)"""

    def __init__(
        self, token: trio.lowlevel.TrioToken, tested: dict[str, Store], oracle: Store
    ) -> None:
        self.token = token
        self.tested = tested
        self.oracle = oracle

    def __repr__(self) -> str:
        return f"Stores({', '.join(self.tested)}, oracle)"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    ready: queue.Queue[Stores | BaseException] = queue.Queue()
    stop = threading.Event()
    base = tmp_path_factory.mktemp("differential")

    async def serve() -> None:
        async with (
            open_test_store("sqlite", base, durability="normal") as s,
            open_test_store("memory", base) as mem,
            open_test_store("mongomock", base) as m,
        ):
            ready.put(Stores(trio.lowlevel.current_trio_token(), {"sqlite": s, "memory": mem}, m))
            await trio.to_thread.run_sync(stop.wait)

    def run() -> None:
        try:
            trio.run(serve)
        except BaseException as e:  # the tests must learn about a failed start
            ready.put(e)
            raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started = ready.get(timeout=60)
    if isinstance(started, BaseException):
        raise started
    yield started
    stop.set()
    thread.join(timeout=30)


def run_backends(
    stores: Stores, check: Callable[[Backends], Awaitable[None]], collection: str = "docs"
) -> None:
    """Run ``check`` for one hypothesis example on the module's stores."""
    backends = Backends(stores.tested, stores.oracle, collection)
    trio.from_thread.run(check, backends, trio_token=stores.token)


SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(docs=st.lists(documents(), max_size=8), flt=filters, sort=sorts)
def test_find_matches_oracle(
    stores: Stores, docs: list[dict[str, Any]], flt: dict[str, Any], sort: list[tuple[str, int]]
) -> None:
    run_backends(stores, lambda b: _find(b, docs, flt, sort))


async def _find(
    b: Backends, docs: list[dict[str, Any]], flt: dict[str, Any], sort: list[tuple[str, int]]
) -> None:
    await b.reset(docs)
    order = [*sort, ("_id", 1)]
    oracle = await b.oracle_call("find", flt, sort=order)
    oracle_count = await b.oracle_call("count", flt)
    for name, store in b.tested.items():
        assert await b.call(store, "find", flt, sort=order) == oracle, (name, flt, order)
        assert await b.call(store, "count", flt) == oracle_count, (name, flt)


@SETTINGS
@given(docs=st.lists(documents(), min_size=1, max_size=6), flt=filters, upd=updates())
def test_update_many_matches_oracle(
    stores: Stores, docs: list[dict[str, Any]], flt: dict[str, Any], upd: dict[str, Any]
) -> None:
    run_backends(stores, lambda b: _update(b, docs, flt, upd))


async def _update(
    b: Backends, docs: list[dict[str, Any]], flt: dict[str, Any], upd: dict[str, Any]
) -> None:
    await b.reset(docs)
    oracle = await b.oracle_call("update_many", flt, upd)
    oracle_after = await b.oracle_call("find", {}, sort=[("_id", 1)])
    for name, store in b.tested.items():
        mine = await b.call(store, "update_many", flt, upd)
        if (
            mine == ("error", "UpdateFailed")
            and oracle[0] == "ok"
            and {"$pull", "$addToSet"} & set(upd)
        ):
            continue  # real MongoDB refuses these on a non-array; mongomock may ignore them
        if mine[0] == "error" or oracle[0] == "error":
            # Both must refuse; mongomock stops midway through update_many, so only the
            # refusal itself is compared.
            assert mine[0] == oracle[0] == "error", (name, upd, mine, oracle)
            continue
        assert mine == oracle, (name, flt, upd)
        after = await b.call(store, "find", {}, sort=[("_id", 1)])
        assert after == oracle_after, (name, flt, upd)


@SETTINGS
@given(docs=st.lists(documents(indexed=True), max_size=8), flt=filters, sort=sorts)
def test_find_on_indexed_scalar_paths_matches_oracle(
    stores: Stores, docs: list[dict[str, Any]], flt: dict[str, Any], sort: list[tuple[str, int]]
) -> None:
    run_backends(stores, lambda b: _find(b, docs, flt, sort), "scalars")


@SETTINGS
@given(
    docs=st.lists(documents(), min_size=1, max_size=6),
    flt=filters,
    upd=updates(),
    sort=sorts,
    after=st.booleans(),
    upsert=st.booleans(),
)
def test_find_one_and_update_matches_oracle(
    stores: Stores,
    docs: list[dict[str, Any]],
    flt: dict[str, Any],
    upd: dict[str, Any],
    sort: list[tuple[str, int]],
    after: bool,
    upsert: bool,
) -> None:
    run_backends(stores, lambda b: _fam(b, docs, flt, upd, sort, after, upsert))


def _no_generated_id(result: tuple[str, Any]) -> tuple[str, Any]:
    kind, value = result
    if isinstance(value, dict) and not str(value.get("_id", "")).startswith("d"):
        value = {k: v for k, v in value.items() if k != "_id"}  # an upsert's fresh id
    return kind, value


async def _fam(
    b: Backends,
    docs: list[dict[str, Any]],
    flt: dict[str, Any],
    upd: dict[str, Any],
    sort: list[tuple[str, int]],
    after: bool,
    upsert: bool,
) -> None:
    await b.reset(docs)
    if upsert and "$and" in flt and await b.oracle_call("count", flt) == ("ok", 0):
        return  # an insert seeded from $and equalities, which mongomock ignores
    mode = ReturnDocument.AFTER if after else ReturnDocument.BEFORE
    order = [*sort, ("_id", 1)]
    args = ("find_one_and_update", flt, upd)
    kw = {"sort": order, "return_document": mode, "upsert": upsert}
    oracle = await b.oracle_call(*args, **kw)
    oracle_after = await b.oracle_call("find", {}, sort=[("_id", 1)], projection={"_id": 0})
    tolerated = {"$pull", "$addToSet"} & set(upd)
    for name, store in b.tested.items():
        mine = await b.call(store, *args, **kw)
        if mine == ("error", "UpdateFailed") and oracle[0] == "ok" and tolerated:
            continue  # real MongoDB refuses these on a non-array; mongomock may ignore them
        if upsert and mine[0] != oracle[0]:
            continue  # mongomock seeds upserts from top-level equalities only, not from $and
        where = (name, docs, flt, upd, order, after, upsert)
        assert _no_generated_id(mine) == _no_generated_id(oracle), where
        if mine[0] == "error":
            continue  # mongomock may half-apply a failing update; MongoDB (and the store) don't
        assert await b.call(store, "find", {}, sort=[("_id", 1)], projection={"_id": 0}) == (
            oracle_after
        ), where
