"""Seeding plays, layers, KV and audit entries straight into a store, for the retention tests."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flow8.store import Store, new_id

DAY = 86_400.0
LAYERS = 3


async def company(store: Store, cid: str) -> None:
    await store.system.collection("companies").insert_one({"_id": cid, "slug": cid, "name": cid})


async def flow(store: Store, cid: str, fid: str, group: str | None = None) -> None:
    definition: dict[str, Any] = {"name": fid}
    if group:
        definition["group"] = group
    await (
        store.tenant(cid)
        .collection("flows")
        .insert_one({"_id": fid, "name": fid, "version": 1, "definition": definition})
    )


async def plays(
    store: Store,
    cid: str,
    fid: str,
    n: int,
    *,
    age_days: float,
    status: str = "DONE",
    filtered: bool = False,
    kv: bool = False,
) -> list[str]:
    """``n`` plays of ``fid`` created ``age_days`` ago (one second apart), each with
    ``LAYERS`` layers (the last FILTERED when ``filtered``) and, with ``kv``, a play-scoped
    KV entry."""
    t = store.tenant(cid)
    now = time.time()
    ids, docs, layers = [], [], []
    for i in range(n):
        pid = new_id()
        ids.append(pid)
        created = now - age_days * DAY + i
        docs.append({"_id": pid, "flow_id": fid, "flow_version": 1, "status": status,
                     "created_at": created, "finished_at": created + 1})  # fmt: skip
        for s in range(LAYERS):
            state = "FILTERED" if filtered and s == LAYERS - 1 else "DONE"
            layers.append({"_id": f"{pid}:s{s}", "play_id": pid, "layer_id": f"s{s}",
                           "seq": s, "ref": f"s{s}", "state": state})  # fmt: skip
    await t.collection("plays").insert_many(docs)
    await t.collection("play_layers").insert_many(layers)
    if kv:
        for pid in ids:
            await t.collection("kv").insert_one({"scope": f"play:{pid}", "key": "k", "value": 1})
    return ids


async def audit_entries(store: Store, cid: str, n: int, *, age_days: float) -> None:
    at = datetime.now(UTC) - timedelta(days=age_days)
    await (
        store.tenant(cid)
        .collection("audit_logs")
        .insert_many(
            [{"action": "thing_done", "created_at": at + timedelta(seconds=i)} for i in range(n)]
        )
    )


async def play_ids(store: Store, cid: str, fid: str | None = None) -> set[str]:
    q = {} if fid is None else {"flow_id": fid}
    docs = await store.tenant(cid).collection("plays").find(q, projection={"_id": 1})
    return {d["_id"] for d in docs}


async def layer_counts(store: Store, cid: str) -> dict[str, int]:
    docs = await store.tenant(cid).collection("play_layers").find({}, projection={"play_id": 1})
    out: dict[str, int] = {}
    for d in docs:
        out[d["play_id"]] = out.get(d["play_id"], 0) + 1
    return out


async def assert_whole(store: Store, cid: str) -> None:
    """Every play has all its layers and every layer its play: nothing half-deleted."""
    present = await play_ids(store, cid)
    counts = await layer_counts(store, cid)
    assert set(counts) == present
    assert set(counts.values()) <= {LAYERS}


async def writes_landed(store: Store) -> None:
    """Return once every write queued so far is committed. A run cancelled while it awaited a
    write has still queued that write, and it lands after the cancel: a test that then plays
    "ten minutes later" must first let it land, as ten real minutes would. (The writer takes
    writes in the order they were queued, so awaiting one more write awaits them all.)"""
    await store.system.collection("retention_journal").delete_many({"_id": "none"})
