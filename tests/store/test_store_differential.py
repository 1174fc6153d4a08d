"""Differential property tests: the sqlite backend must return exactly what the mongomock
oracle returns for generated documents, filters, sorts and updates.

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

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio
from conftest import open_test_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


class Pair:
    def __init__(self, sqlite: Store, mock: Store, collection: str = "docs") -> None:
        self.stores = (sqlite, mock)
        self.collection = collection
        self.round = 0

    async def reset(self, docs: list[dict[str, Any]]) -> None:
        self.round += 1
        self.company = f"c{self.round}"
        for s in self.stores:
            await (
                s.tenant(self.company)
                .collection("docs")
                .insert_many([{"_id": f"d{i:02d}", **d} for i, d in enumerate(docs)])
            )

    async def both(self, method: str, *args: Any, **kw: Any) -> tuple[Any, Any]:
        out = []
        for s in self.stores:
            coll = s.tenant(self.company).collection(self.collection)
            try:
                out.append(("ok", await getattr(coll, method)(*args, **kw)))
            except StoreError as e:
                out.append(("error", type(e).__name__))
        return out[0], out[1]


def run_pair(
    tmp_path: Path, check: Callable[[Pair], Awaitable[None]], collection: str = "docs"
) -> None:
    """Open a fresh sqlite + mongomock pair for one hypothesis example and run ``check``."""

    async def main() -> None:
        base = tmp_path / uuid.uuid4().hex
        base.mkdir()
        async with (
            open_test_store("sqlite", base, durability="normal") as s,
            open_test_store("mongomock", base) as m,
        ):
            await check(Pair(s, m, collection))

    trio.run(main)


SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(docs=st.lists(documents(), max_size=8), flt=filters, sort=sorts)
def test_find_matches_oracle(
    tmp_path: Path, docs: list[dict[str, Any]], flt: dict[str, Any], sort: list[tuple[str, int]]
) -> None:
    run_pair(tmp_path, lambda pair: _find(pair, docs, flt, sort))


async def _find(
    pair: Pair, docs: list[dict[str, Any]], flt: dict[str, Any], sort: list[tuple[str, int]]
) -> None:
    await pair.reset(docs)
    order = [*sort, ("_id", 1)]
    mine, oracle = await pair.both("find", flt, sort=order)
    assert mine == oracle, (flt, order)
    mine, oracle = await pair.both("count", flt)
    assert mine == oracle, flt


@SETTINGS
@given(docs=st.lists(documents(), min_size=1, max_size=6), flt=filters, upd=updates())
def test_update_many_matches_oracle(
    tmp_path: Path, docs: list[dict[str, Any]], flt: dict[str, Any], upd: dict[str, Any]
) -> None:
    run_pair(tmp_path, lambda pair: _update(pair, docs, flt, upd))


async def _update(
    pair: Pair, docs: list[dict[str, Any]], flt: dict[str, Any], upd: dict[str, Any]
) -> None:
    await pair.reset(docs)
    mine, oracle = await pair.both("update_many", flt, upd)
    if (
        mine == ("error", "UpdateFailed")
        and oracle[0] == "ok"
        and {"$pull", "$addToSet"} & set(upd)
    ):
        return  # real MongoDB refuses these on a non-array; mongomock may ignore them
    if mine[0] == "error" or oracle[0] == "error":
        # Both must refuse; mongomock stops midway through update_many, so only the
        # refusal itself is compared.
        assert mine[0] == oracle[0] == "error", (upd, mine, oracle)
        return
    assert mine == oracle, (flt, upd)
    mine, oracle = await pair.both("find", {}, sort=[("_id", 1)])
    assert mine == oracle, (flt, upd)


@SETTINGS
@given(docs=st.lists(documents(indexed=True), max_size=8), flt=filters, sort=sorts)
def test_find_on_indexed_scalar_paths_matches_oracle(
    tmp_path: Path, docs: list[dict[str, Any]], flt: dict[str, Any], sort: list[tuple[str, int]]
) -> None:
    run_pair(tmp_path, lambda pair: _find(pair, docs, flt, sort), "scalars")


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
    tmp_path: Path,
    docs: list[dict[str, Any]],
    flt: dict[str, Any],
    upd: dict[str, Any],
    sort: list[tuple[str, int]],
    after: bool,
    upsert: bool,
) -> None:
    run_pair(tmp_path, lambda pair: _fam(pair, docs, flt, upd, sort, after, upsert))


def _no_generated_id(result: tuple[str, Any]) -> tuple[str, Any]:
    kind, value = result
    if isinstance(value, dict) and not str(value.get("_id", "")).startswith("d"):
        value = {k: v for k, v in value.items() if k != "_id"}  # an upsert's fresh id
    return kind, value


async def _fam(
    pair: Pair,
    docs: list[dict[str, Any]],
    flt: dict[str, Any],
    upd: dict[str, Any],
    sort: list[tuple[str, int]],
    after: bool,
    upsert: bool,
) -> None:
    await pair.reset(docs)
    if upsert and "$and" in flt:
        matched, _ = await pair.both("count", flt)
        if matched == ("ok", 0):
            return  # an insert seeded from $and equalities, which mongomock ignores
    mode = ReturnDocument.AFTER if after else ReturnDocument.BEFORE
    order = [*sort, ("_id", 1)]
    mine, oracle = await pair.both(
        "find_one_and_update", flt, upd, sort=order, return_document=mode, upsert=upsert
    )
    tolerated = {"$pull", "$addToSet"} & set(upd)
    if mine == ("error", "UpdateFailed") and oracle[0] == "ok" and tolerated:
        return  # real MongoDB refuses these on a non-array; mongomock may ignore them
    if upsert and mine[0] != oracle[0]:
        return  # mongomock seeds upserts from top-level equalities only, not from $and
    assert _no_generated_id(mine) == _no_generated_id(oracle), (docs, flt, upd, order, after)
    if mine[0] == "error":
        return  # mongomock may half-apply a failing update; MongoDB (and the store) do not
    mine, oracle = await pair.both("find", {}, sort=[("_id", 1)], projection={"_id": 0})
    assert mine == oracle, (docs, flt, upd, order, after, upsert)
