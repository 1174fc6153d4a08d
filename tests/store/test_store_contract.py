"""The store contract: every test runs unchanged on sqlite, mongomock and (with MONGO_URI) a
real MongoDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import trio
from store_kit import backend_of

from flow8.store import (
    Collection,
    DuplicateKey,
    InvalidDocument,
    InvalidQuery,
    ReturnDocument,
    Store,
    TenancyError,
    UnknownCollection,
    UpdateFailed,
)


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(str(r["_id"]) for r in rows)


def is_mongomock(store: Store) -> bool:
    return type(getattr(backend_of(store), "client", None)).__module__.startswith("mongomock")


def docs(store: Store, company: str = "acme") -> Collection:
    return store.tenant(company).collection("docs")


def strip(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: v for k, v in r.items() if k not in ("_id", "company_id")} for r in rows]


async def test_insert_generates_time_ordered_string_ids(store: Store) -> None:
    c = docs(store)
    ids = [await c.insert_one({"n": i}) for i in range(5)]
    assert all(isinstance(i, str) and len(i) == 26 for i in ids)
    assert ids == sorted(ids)
    got = await c.find({}, sort=[("_id", 1)])
    assert [d["n"] for d in got] == [0, 1, 2, 3, 4]
    assert got[0]["company_id"] == "acme"


async def test_explicit_id_and_duplicate_id(store: Store) -> None:
    c = docs(store)
    assert await c.insert_one({"_id": "a", "x": 1}) == "a"
    with pytest.raises(DuplicateKey) as e:
        await c.insert_one({"_id": "a", "x": 2})
    assert e.value.index == "_id_"
    assert (await c.find_one({"_id": "a"})) == {"_id": "a", "x": 1, "company_id": "acme"}


async def test_insert_many_is_all_or_nothing(store: Store) -> None:
    c = docs(store)
    await c.insert_one({"_id": "taken"})
    with pytest.raises(DuplicateKey) as e:
        await c.insert_many([{"_id": "new1"}, {"_id": "taken"}, {"_id": "new2"}])
    assert e.value.index == "_id_"
    assert [d["_id"] for d in await c.find()] == ["taken"]


async def test_insert_many_and_count(store: Store) -> None:
    c = docs(store)
    ids = await c.insert_many([{"n": i} for i in range(10)])
    assert len(ids) == 10
    assert await c.count() == 10
    assert await c.count({"n": {"$gte": 5}}) == 5
    assert await c.insert_many([]) == []


async def test_sort_skip_limit_projection(store: Store) -> None:
    c = docs(store)
    await c.insert_many([{"n": i % 3, "m": i, "sub": {"a": i}} for i in range(9)])
    got = await c.find({}, sort=[("n", -1), ("m", 1)], skip=2, limit=3, projection={"m": 1})
    assert [d["m"] for d in got] == [8, 1, 4]
    assert set(got[0]) == {"_id", "m"}
    got = await c.find({"m": 3}, projection={"sub": 0, "_id": 0})
    assert got == [{"n": 0, "m": 3, "company_id": "acme"}]
    got = await c.find({"m": 3}, projection={"sub.a": 1, "_id": 0})
    assert got == [{"sub": {"a": 3}}]


async def test_equality_matches_array_members_and_dotted_paths(store: Store) -> None:
    c = docs(store)
    await c.insert_many(
        [
            {"_id": "1", "tags": ["a", "b"], "p": {"q": {"r": 1}}},
            {"_id": "2", "tags": "a", "p": {"q": {"r": 2}}},
            {"_id": "3", "tags": ["c"], "p": {"q": 5}},
        ]
    )
    assert ids(await c.find({"tags": "a"})) == ["1", "2"]
    assert ids(await c.find({"tags": ["c"]})) == ["3"]
    assert ids(await c.find({"tags": {"$in": ["b", "c"]}})) == ["1", "3"]
    assert ids(await c.find({"tags": {"$nin": ["a"]}})) == ["3"]
    assert ids(await c.find({"p.q.r": 2})) == ["2"]
    assert ids(await c.find({"p.q.r": {"$exists": False}})) == ["3"]
    assert ids(await c.find({"p.q": {"r": 1}})) == ["1"]


async def test_dotted_paths_reach_into_arrays_of_subdocuments(store: Store) -> None:
    c = docs(store)
    await c.insert_many(
        [
            {"_id": "1", "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 5}]},
            {"_id": "2", "items": [{"sku": "c", "qty": 2, "tags": ["x", "y"]}]},
            {"_id": "3", "order": {"lines": [{"sku": "a"}]}},
            {"_id": "4", "items": {"sku": "a"}},
        ]
    )
    assert ids(await c.find({"items.sku": "a"})) == ["1", "4"]
    assert ids(await c.find({"items.qty": {"$gte": 2}})) == ["1", "2"]
    assert ids(await c.find({"items.tags": "y"})) == ["2"]
    assert ids(await c.find({"order.lines.sku": {"$in": ["a", "z"]}})) == ["3"]
    assert ids(await c.find({"items.sku": {"$ne": "a"}})) == ["2", "3"]


async def test_comparisons_respect_type_brackets(store: Store) -> None:
    c = docs(store)
    await c.insert_many(
        [
            {"_id": "i", "v": 7},
            {"_id": "f", "v": 7.5},
            {"_id": "s", "v": "9"},
            {"_id": "b", "v": True},
            {"_id": "n", "v": None},
            {"_id": "m"},
            {"_id": "d", "v": datetime(2030, 1, 1, tzinfo=UTC)},
        ]
    )
    assert ids(await c.find({"v": {"$gt": 5}})) == ["f", "i"]
    assert ids(await c.find({"v": {"$lt": "z"}})) == ["s"]
    assert ids(await c.find({"v": {"$gte": datetime(2029, 1, 1, tzinfo=UTC)}})) == ["d"]
    assert ids(await c.find({"v": None})) == ["m", "n"]
    assert ids(await c.find({"v": {"$ne": None}})) == ["b", "d", "f", "i", "s"]
    assert ids(await c.find({"v": {"$exists": True}})) == ["b", "d", "f", "i", "n", "s"]
    assert ids(await c.find({"v": {"$in": [None, 7]}})) == ["i", "m", "n"]
    assert ids(await c.find({"v": 7.0})) == ["i"]
    if not is_mongomock(store):  # mongomock quirk: it treats true as equal to 1
        assert ids(await c.find({"v": 1})) == []
    assert ids(await c.find({"$or": [{"v": "9"}, {"v": {"$lte": 7}}]})) == ["i", "s"]
    assert ids(await c.find({"$and": [{"v": {"$gt": 7}}, {"v": {"$lt": 8}}]})) == ["f"]


async def test_sort_orders_across_types_like_mongodb(store: Store) -> None:
    c = docs(store)
    values = [True, "b", 3, None, datetime(2020, 1, 1, tzinfo=UTC), 1.5, "a", False]
    await c.insert_many([{"_id": str(i), "v": v} for i, v in enumerate(values)] + [{"_id": "x"}])
    got = [d.get("v", "<missing>") for d in await c.find({}, sort=[("v", 1), ("_id", 1)])]
    assert got == [
        None,
        "<missing>",
        1.5,
        3,
        "a",
        "b",
        False,
        True,
        datetime(2020, 1, 1, tzinfo=UTC),
    ]


async def test_datetimes_round_trip_as_aware_utc_milliseconds(store: Store) -> None:
    c = docs(store)
    local = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    i = await c.insert_one({"at": local, "list": [local]})
    got = await c.find_one({"_id": i})
    assert got is not None
    assert got["at"] == datetime(2026, 3, 1, 10, 30, 15, 123000, tzinfo=UTC)
    assert got["at"].utcoffset() == timedelta(0)
    assert got["list"] == [got["at"]]
    assert await c.count({"at": local}) == 1
    with pytest.raises(InvalidDocument, match="naive"):
        await c.insert_one({"at": datetime(2026, 1, 1)})


async def test_text_that_is_not_valid_unicode_is_refused_naming_where(store: Store) -> None:
    """A lone surrogate is a Python str but no UTF-8 encoder takes it: every backend refuses
    it before writing, in values, keys, updates and filters, and nothing is written."""
    c = docs(store)
    lone = "x\udfff"
    with pytest.raises(InvalidDocument, match=r"note\[1\]\.t: text is not valid Unicode"):
        await c.insert_one({"note": ["ok", {"t": lone}]})
    with pytest.raises(InvalidDocument, match="field name text is not valid Unicode"):
        await c.insert_one({"a": {lone: 1}})
    i = await c.insert_one({"a": "\U0001f600 fine", "b": 1})
    with pytest.raises(InvalidQuery, match="not valid Unicode"):  # (caused by InvalidDocument)
        await c.update_one({"_id": i}, {"$set": {"b": lone}})
    with pytest.raises(InvalidQuery, match="not valid Unicode"):
        await c.find({"a": lone})
    assert strip(await c.find({})) == [{"a": "\U0001f600 fine", "b": 1}]


async def test_update_operators(store: Store) -> None:
    c = docs(store)
    i = await c.insert_one({"n": 1, "tags": ["a"], "drop": 1, "nest": {"x": 1}})
    r = await c.update_one(
        {"_id": i},
        {
            "$set": {"nest.y": 2, "s": "v"},
            "$unset": {"drop": ""},
            "$inc": {"n": 2, "fresh": 1.5},
            "$push": {"tags": {"$each": ["b", "a"]}, "log": 1},
            "$addToSet": {"set": {"$each": [1, 2]}},
            "$setOnInsert": {"never": True},
        },
    )
    assert (r.matched_count, r.modified_count, r.upserted_id) == (1, 1, None)
    got = await c.find_one({"_id": i}, projection={"_id": 0, "company_id": 0})
    assert got == {
        "n": 3,
        "tags": ["a", "b", "a"],
        "nest": {"x": 1, "y": 2},
        "s": "v",
        "fresh": 1.5,
        "log": [1],
        "set": [1, 2],
    }
    await c.update_one({"_id": i}, {"$pull": {"tags": "a", "set": {"$gte": 2}}})
    got = await c.find_one({"_id": i})
    assert got is not None
    assert got["tags"] == ["b"]
    assert got["set"] == [1]
    r = await c.update_one({"_id": i}, {"$set": {"s": "v"}, "$addToSet": {"set": 1}})
    assert (r.matched_count, r.modified_count) == (1, 0)


async def test_update_many_and_upsert(store: Store) -> None:
    c = docs(store)
    await c.insert_many([{"g": 1, "n": i} for i in range(4)] + [{"g": 2, "n": 9}])
    r = await c.update_many({"g": 1}, {"$inc": {"n": 10}})
    assert (r.matched_count, r.modified_count) == (4, 4)
    assert await c.count({"n": {"$gte": 10}}) == 4
    r = await c.update_one(
        {"key": "k", "v": {"$gt": 1}}, {"$set": {"x": 1}, "$setOnInsert": {"born": 1}}, upsert=True
    )
    assert r.matched_count == 0
    assert r.upserted_id
    got = await c.find_one({"_id": r.upserted_id})
    assert strip([got or {}]) == [{"key": "k", "x": 1, "born": 1}]
    r = await c.update_one(
        {"key": "k"}, {"$set": {"x": 2}, "$setOnInsert": {"born": 2}}, upsert=True
    )
    assert (r.matched_count, r.modified_count, r.upserted_id) == (1, 1, None)
    assert (await c.find_one({"key": "k"}) or {})["born"] == 1


async def test_update_failures_write_nothing(store: Store) -> None:
    c = docs(store)
    i = await c.insert_one({"s": "text", "n": 1})
    with pytest.raises(UpdateFailed):
        await c.update_one({"_id": i}, {"$inc": {"s": 1}, "$set": {"n": 2}})
    with pytest.raises(UpdateFailed):
        await c.update_one({"_id": i}, {"$push": {"n": 1}})
    with pytest.raises(UpdateFailed):
        await c.update_one({"_id": i}, {"$set": {"_id": "other"}})
    assert (await c.find_one({"_id": i}) or {})["n"] == 1


async def test_find_one_and_update(store: Store) -> None:
    c = docs(store)
    await c.insert_many([{"q": "NEW", "at": i} for i in (3, 1, 2)])
    before = await c.find_one_and_update(
        {"q": "NEW"}, {"$set": {"q": "RUN"}}, sort=[("at", 1)], projection={"at": 1, "q": 1}
    )
    assert before is not None
    assert before["at"] == 1
    assert before["q"] == "NEW"
    after = await c.find_one_and_update(
        {"q": "NEW"},
        {"$set": {"q": "RUN"}},
        sort=[("at", -1)],
        return_document=ReturnDocument.AFTER,
    )
    assert after is not None
    assert after["at"] == 3
    assert after["q"] == "RUN"
    assert await c.find_one_and_update({"q": "GONE"}, {"$set": {"q": "X"}}) is None
    made = await c.find_one_and_update(
        {"q": "GONE"}, {"$set": {"z": 1}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert made is not None
    assert made["q"] == "GONE"
    assert made["z"] == 1
    assert made["company_id"] == "acme"


async def test_concurrent_claims_take_each_document_once(store: Store) -> None:
    c = docs(store)
    await c.insert_many([{"state": "NEW", "i": i} for i in range(10)])
    claimed: list[int] = []

    async def worker(w: int) -> None:
        while True:
            d = await c.find_one_and_update(
                {"state": "NEW"}, {"$set": {"state": "RUN", "by": w}}, sort=[("i", 1)]
            )
            if d is None:
                return
            claimed.append(d["i"])

    async with trio.open_nursery() as n:
        for w in range(6):
            n.start_soon(worker, w)
    assert sorted(claimed) == list(range(10))


async def test_delete(store: Store) -> None:
    c = docs(store)
    await c.insert_many([{"g": i % 2} for i in range(6)])
    assert await c.delete_one({"g": 0}) == 1
    assert await c.delete_many({"g": 0}) == 2
    assert await c.delete_many({"g": 0}) == 0
    assert await c.count() == 3


async def test_unique_index_names_itself_and_ignores_missing_fields(store: Store) -> None:
    t = store.tenant("acme").collection("things")
    await t.insert_one({"k": "a"})
    await t.insert_one({"x": 1})
    await t.insert_one({"x": 2})  # missing k: no collision
    await store.tenant("other").collection("things").insert_one({"k": "a"})
    with pytest.raises(DuplicateKey) as e:
        await t.insert_one({"k": "a"})
    assert e.value.index == "company_id_1_k_1"
    b = await t.insert_one({"k": "b"})
    with pytest.raises(DuplicateKey):
        await t.update_one({"_id": b}, {"$set": {"k": "a"}})
    assert await t.count({"k": "a"}) == 1


async def test_indexed_scalar_fields_refuse_arrays(store: Store) -> None:
    t = store.tenant("acme").collection("things")
    with pytest.raises(InvalidDocument, match="'k'"):
        await t.insert_one({"k": ["a"]})
    i = await t.insert_one({"k": "z", "tags": ["multi", "key"]})
    with pytest.raises(InvalidDocument):
        await t.update_one({"_id": i}, {"$push": {"k": 1}})
    with pytest.raises(InvalidDocument):
        await t.update_one({"_id": i}, {"$set": {"n": [1]}})
    assert await t.count({"tags": "key"}) == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"a": {"$regex": "x"}},
        {"$where": "1"},
        {"a": {"$gt": [1]}},
        {"a": {"$in": 5}},
        {"a": {"$exists": "yes"}},
        {"$or": []},
        {"a.$b": 1},
        {"a": {"$eq": 1, "b": 2}},
    ],
)
async def test_bad_filters_are_refused(store: Store, bad: dict[str, object]) -> None:
    with pytest.raises(InvalidQuery):
        await docs(store).find(bad)


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"a": 1},
        {"$rename": {"a": "b"}},
        {"$set": {}},
        {"$set": {"a": 1}, "$inc": {"a": 1}},
        {"$inc": {"a": "1"}},
        {"$push": {"a": {"$each": [1], "$slice": 2}}},
        {"$set": {"a.$": 1}},
        {"$set": {"a": {"$b": 1}}},
    ],
)
async def test_bad_updates_are_refused_and_write_nothing(
    store: Store, bad: dict[str, object]
) -> None:
    c = docs(store)
    i = await c.insert_one({"a": 0})
    with pytest.raises((InvalidQuery, InvalidDocument)):
        await c.update_one({"_id": i}, bad)
    assert (await c.find_one({"_id": i}) or {})["a"] == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"$x": 1},
        {"a.b": 1},
        {"a": {"$b": 1}},
        {"a": [{"b.c": 1}]},
        {"a": float("nan")},
        {"a": 2**64},
        {"a": {1, 2}},
        {"_id": 5},
        {"_id": ""},
    ],
)
async def test_bad_documents_are_refused(store: Store, bad: dict[str, object]) -> None:
    c = docs(store)
    with pytest.raises(InvalidDocument):
        await c.insert_one(bad)
    with pytest.raises(InvalidDocument):
        await c.insert_many([{"ok": 1}, bad])
    assert await c.count() == 0


async def test_documents_over_16_mb_are_refused(store: Store) -> None:
    c = docs(store)
    with pytest.raises(InvalidDocument, match="16 MB"):
        await c.insert_one({"blob": "x" * (16 * 1024 * 1024 + 10)})
    with pytest.raises(InvalidDocument, match="16 MB"):  # 9 M characters, 18 MB of UTF-8
        await c.insert_one({"blob": "é" * (9 * 1024 * 1024)})
    assert await c.count() == 0


async def test_tenants_are_isolated(store: Store) -> None:
    a, b = docs(store, "a"), docs(store, "b")
    ia = await a.insert_one({"v": 1})
    await b.insert_one({"v": 1})
    assert await a.count({"v": 1}) == 1
    assert await b.find_one({"_id": ia}) is None
    assert await b.count({"company_id": "a"}) == 0
    assert (await b.update_many({}, {"$set": {"w": 1}})).matched_count == 1
    assert await b.delete_many({"_id": ia}) == 0
    assert await a.count({"w": 1}) == 0


async def test_tenancy_refusals(store: Store) -> None:
    a = docs(store, "a")
    for bad in ("", "  ", None, 5):
        with pytest.raises(TenancyError):
            store.tenant(bad)  # type: ignore[arg-type]
    with pytest.raises(TenancyError):
        await a.insert_one({"company_id": "b"})
    i = await a.insert_one({"v": 1})
    with pytest.raises(TenancyError):
        await a.update_one({"_id": i}, {"$set": {"company_id": "b"}})
    with pytest.raises(TenancyError):
        await a.update_one({"_id": i}, {"$unset": {"company_id": ""}})
    with pytest.raises(TenancyError, match=r"store\.tenant"):
        store.system.collection("flows")
    with pytest.raises(TenancyError, match=r"store\.system"):
        store.tenant("a").collection("users")
    with pytest.raises(UnknownCollection):
        store.tenant("a").collection("nope")
    with pytest.raises(TenancyError):
        await store.cross_tenant.collection("docs").insert_one({"v": 1})
    with pytest.raises(TenancyError, match="cross_tenant=False"):
        store.cross_tenant.collection("links")  # credentials: never outside a tenant scope
    with pytest.raises(TenancyError):
        store.cross_tenant.collection("users")


async def test_system_and_cross_tenant_paths(store: Store) -> None:
    users = store.system.collection("users")
    u = await users.insert_one({"email": "a@x"})
    assert (await users.find_one({"_id": u}) or {})["email"] == "a@x"
    await docs(store, "a").insert_one({"state": "NEW"})
    await docs(store, "b").insert_one({"state": "NEW"})
    cross = store.cross_tenant.collection("docs")
    assert sorted(d["company_id"] for d in await cross.find({"state": "NEW"})) == ["a", "b"]
    with pytest.raises(TenancyError):
        await cross.update_many({}, {"$set": {"company_id": "c"}})


async def test_ttl_hides_expired_documents(store: Store) -> None:
    c = store.tenant("acme").collection("leases")
    now = datetime.now(UTC)
    await c.insert_many(
        [
            {"key": "old", "expires_at": now - timedelta(seconds=5)},
            {"key": "new", "expires_at": now + timedelta(hours=1)},
            {"key": "none"},
            {"key": "text", "expires_at": "not a date"},
        ]
    )
    assert sorted(d["key"] for d in await c.find()) == ["new", "none", "text"]
    assert await c.count() == 3
    assert (await c.update_many({}, {"$set": {"t": 1}})).matched_count == 3
    r = await c.update_one(
        {"key": "old"}, {"$set": {"expires_at": now + timedelta(hours=1)}}, upsert=True
    )
    assert r.upserted_id is not None  # the expired one is gone, so this inserts
    await store.purge_expired()
    assert await c.count() == 4


async def test_pipeline_runs_in_order_and_sync_raises_first_error(store: Store) -> None:
    c = docs(store)
    t = store.tenant("acme").collection("things")
    pipe = store.pipeline()
    i = pipe.insert_one(c, {"step": 0})
    for _ in range(20):
        pipe.update_one(c, {"_id": i}, {"$inc": {"step": 1}})
    pipe.insert_one(t, {"k": "dup"})
    pipe.insert_one(t, {"k": "dup"})
    pipe.update_one(c, {"_id": i}, {"$set": {"after": True}})
    with pytest.raises(DuplicateKey):
        await pipe.sync()
    got = await c.find_one({"_id": i})
    assert got is not None
    assert got["step"] == 20
    assert got["after"] is True
    await pipe.sync()  # nothing pending: returns at once
    with pytest.raises(InvalidQuery):
        pipe.update_one(c, {"_id": i}, {"$bad": {}})
