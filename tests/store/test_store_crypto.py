"""Secret fields: encrypted at rest, bound to company/collection/document/field, rotatable."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
import structlog
from store_kit import KEYS, backend_of, open_test_store

from flow8.store import (
    DecryptionFailed,
    InvalidQuery,
    Keyring,
    KeyringError,
    ReturnDocument,
    Store,
    load_keyring,
    rotate_keys,
)

SECRET = "canary-7f3a-secret"


def raw_docs(store: Store, coll: str) -> list[dict[str, Any]]:
    """The documents as the database holds them (sqlite: the indexed part and the fields
    kept apart, merged)."""
    engine: Any = backend_of(store)
    if engine.name == "sqlite":
        with sqlite3.connect(engine.path) as c:
            rows = c.execute(f'SELECT doc, bulk FROM "c_{coll}"')
            return [{**json.loads(d), **json.loads(b or "{}")} for d, b in rows]
    if engine.name == "memory":
        return list(engine.tables[coll].docs.values())
    return list(engine.client[engine.database][coll].find())


def raw_set(store: Store, coll: str, doc_id: str, field: str, value: Any) -> None:
    engine: Any = backend_of(store)
    if engine.name == "sqlite":
        column = "bulk" if field in engine.catalog.get(coll).apart else "doc"
        with sqlite3.connect(engine.path) as c:
            c.execute(
                f"UPDATE \"c_{coll}\" SET {column} = json_set(coalesce({column}, '{{}}'), "
                f"'$.{field}', ?) WHERE id = ?",
                (value, doc_id),
            )
    elif engine.name == "memory":
        engine.tables[coll].docs[doc_id][field] = value  # secret fields are never indexed
    else:
        engine.client[engine.database][coll].update_one({"_id": doc_id}, {"$set": {field: value}})


async def test_secrets_are_ciphertext_at_rest_and_plaintext_through_the_scope(store: Store) -> None:
    v = store.tenant("acme").collection("vault")
    i = await v.insert_one({"name": "n", "secret": {"token": SECRET, "n": [1, 2]}})
    assert SECRET not in repr(raw_docs(store, "vault"))
    stored = raw_docs(store, "vault")[0]["secret"]
    assert stored.startswith("f8e1.k1.")
    got = await v.find_one({"_id": i})
    assert got is not None
    assert got["secret"] == {"token": SECRET, "n": [1, 2]}
    cross = await store.cross_tenant.collection("vault").find_one({"_id": i})
    assert cross is not None
    assert cross["secret"]["token"] == SECRET
    only = await v.find_one({"_id": i}, projection={"secret": 1, "_id": 0})
    assert only == {"secret": {"token": SECRET, "n": [1, 2]}}


async def test_secret_updates_bind_to_the_matched_document(store: Store) -> None:
    v = store.tenant("acme").collection("vault")
    a = await v.insert_one({"name": "a", "secret": "old"})
    await v.insert_one({"name": "b"})
    await v.update_one({"name": "a"}, {"$set": {"secret": "new-a"}})
    await v.update_many({}, {"$set": {"other": "both"}})
    after = await v.find_one_and_update(
        {"name": "b"}, {"$set": {"secret": "new-b"}}, return_document=ReturnDocument.AFTER
    )
    assert after is not None
    assert after["secret"] == "new-b"
    r = await v.update_one(
        {"name": "c"}, {"$setOnInsert": {"secret": "born"}, "$set": {"x": 1}}, upsert=True
    )
    rows = {d["name"]: d for d in await v.find({})}
    assert rows["a"]["secret"] == "new-a"
    assert rows["a"]["_id"] == a
    assert rows["b"]["secret"] == "new-b"
    assert rows["a"]["other"] == rows["b"]["other"] == "both"
    assert rows["c"]["secret"] == "born"
    assert rows["c"]["_id"] == r.upserted_id
    await v.update_one({"name": "a"}, {"$unset": {"secret": ""}})
    assert "secret" not in (await v.find_one({"name": "a"}) or {})


@pytest.mark.parametrize(
    ("target_company", "target_field"),
    [("evil", "secret"), ("acme", "other")],
)
async def test_moved_ciphertext_fails_to_decrypt(
    store: Store, target_company: str, target_field: str
) -> None:
    v = store.tenant("acme").collection("vault")
    await v.insert_one({"_id": "src", "name": "src", "secret": SECRET})
    token = raw_docs(store, "vault")[0]["secret"]
    dst = store.tenant(target_company).collection("vault")
    await dst.insert_one({"_id": "dst", "name": "dst"})
    raw_set(store, "vault", "dst", target_field, token)
    with pytest.raises(DecryptionFailed, match="another company, collection, document or field"):
        await dst.find_one({"_id": "dst"})
    assert (await v.find_one({"_id": "src"}) or {})["secret"] == SECRET


async def test_secret_fields_cannot_be_queried_or_patched(store: Store) -> None:
    v = store.tenant("acme").collection("vault")
    i = await v.insert_one({"name": "x", "secret": {"a": 1}})
    with pytest.raises(InvalidQuery, match="encrypted"):
        await v.find({"secret": {"a": 1}})
    with pytest.raises(InvalidQuery, match="encrypted"):
        await v.find({"secret.a": 1})
    with pytest.raises(InvalidQuery, match="encrypted"):
        await v.update_one({"_id": i}, {"$set": {"secret.a": 2}})
    with pytest.raises(InvalidQuery, match="encrypted"):
        await v.update_one({"_id": i}, {"$push": {"secret": 2}})


async def test_wrong_or_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    async with open_test_store("sqlite", tmp_path) as s:
        await s.tenant("acme").collection("vault").insert_one({"_id": "x", "secret": SECRET})
    async with open_test_store("sqlite", tmp_path, encryption=Keyring.generate("k2")) as s:
        with pytest.raises(DecryptionFailed, match="'k1', not in the key ring"):
            await s.tenant("acme").collection("vault").find_one({"_id": "x"})
    async with open_test_store("sqlite", tmp_path, encryption=Keyring.generate("k1")) as s:
        with pytest.raises(DecryptionFailed, match="authentication failed"):
            await s.tenant("acme").collection("vault").find_one({"_id": "x"})


async def test_rotation_reencrypts_everything_resumably(tmp_path: Path) -> None:
    async with open_test_store("sqlite", tmp_path) as s:
        for company in ("a", "b"):
            v = s.tenant(company).collection("vault")
            await v.insert_many(
                [{"_id": f"{company}{i:02d}", "secret": f"s{i}", "other": i} for i in range(7)]
            )
        await s.tenant("a").collection("kv").insert_one({"key": "k", "value": [SECRET]})
    k2 = Keyring.generate("k2")
    both = Keyring(k2.keys + KEYS.keys)
    async with open_test_store("sqlite", tmp_path, encryption=both) as s:
        assert await rotate_keys(s, batch_size=3) == 2 * 7 * 2 + 1
        assert await rotate_keys(s, batch_size=3) == 0  # safe to re-run
        kids = {d[f].split(".")[1] for d in raw_docs(s, "vault") for f in ("secret", "other")}
        assert kids == {"k2"}
    async with open_test_store("sqlite", tmp_path, encryption=k2) as s:
        got = await s.tenant("b").collection("vault").find_one({"_id": "b03"})
        assert got is not None
        assert got["secret"] == "s3"
        assert got["other"] == 3
        assert (await s.tenant("a").collection("kv").find_one({}) or {})["value"] == [SECRET]
    # A rotation killed after checkpointing "a03" resumes after it.
    k3 = Keyring.generate("k3")
    async with open_test_store("sqlite", tmp_path, encryption=Keyring(k3.keys + k2.keys)) as s:
        await s.system.collection("store_meta").update_one(
            {"_id": "rotation:vault"},
            {"$set": {"kid": "k3", "last_id": "a03", "done": False}},
            upsert=True,
        )
        assert await rotate_keys(s, batch_size=4) == (3 + 7) * 2 + 1
        by_id = {d["_id"]: d["secret"].split(".")[1] for d in raw_docs(s, "vault")}
        assert by_id["a03"] == "k2"
        assert by_id["a04"] == "k3"
        assert by_id["b00"] == "k3"


def test_load_keyring_from_env_and_generated_file(tmp_path: Path) -> None:
    ring = load_keyring(KEYS.serialize() + ",old:" + "A" * 43 + "=", None)
    assert [k for k, _ in ring.keys] == ["k1", "old"]
    assert ring.primary_kid == "k1"
    assert "A" * 20 not in repr(ring)
    for bad in ("nocolon", "k:notbase64!!", "k:" + "QQ==", "bad id:" + "A" * 43 + "="):
        with pytest.raises(KeyringError):
            load_keyring(bad, None)
    with pytest.raises(KeyringError, match="MongoDB"):
        load_keyring(None, tmp_path, backend="mongo")
    with structlog.testing.capture_logs() as logs:
        made = load_keyring(None, tmp_path)
    assert any(e["event"] == "encryption_key_generated" for e in logs)
    key_file = tmp_path / "encryption.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert load_keyring("", tmp_path).keys == made.keys


async def test_store_without_configured_keys_generates_one_for_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOW8_ENCRYPTION_KEYS", raising=False)
    from flow8.store import open_store

    async with open_store(f"sqlite://{tmp_path}/x.db") as s:
        await s.tenant("a").collection("links").insert_one({"name": "l", "data": {"t": SECRET}})
    assert (tmp_path / "encryption.key").exists()
    async with open_store(f"sqlite://{tmp_path}/x.db") as s:
        got = await s.tenant("a").collection("links").find_one({"name": "l"})
        assert got is not None
        assert got["data"] == {"t": SECRET}
