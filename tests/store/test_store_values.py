"""Stored values, ids, catalog and start-up errors."""

from __future__ import annotations

import base64
import functools
import json
from datetime import UTC
from pathlib import Path
from typing import Any

import pymongo
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from store_kit import KEYS, TEST_CATALOG

from flow8.store import (
    CATALOG,
    CollectionSpec,
    InvalidDocument,
    KeyringError,
    StoreUnavailable,
    index,
    load_keyring,
    new_id,
    open_store,
)
from flow8.store._ids import encode as encode_id
from flow8.store._values import MARK, _date_hook, dumps, loads, normalize_document, to_storage


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"a": {"b": 2**70}}, r"a\.b: integer \d+ does not fit in 64 bits"),
        ({"x": float("nan")}, r"x: nan is not a finite number"),
        ({"l": [1, {"q": float("-inf")}]}, r"l\[1\]\.q: -inf is not a finite number"),
        ({"ok": 1, "bad": {"$set": 1}}, r"bad: field name '\$set' starts with '\$'"),
    ],
)
async def test_bad_values_are_refused_naming_where_they_are(
    tmp_path: Path, doc: dict[str, Any], message: str
) -> None:
    async with open_store(f"sqlite:///{tmp_path / 'c.db'}", catalog=TEST_CATALOG) as s:
        docs = s.tenant("acme").collection("docs")
        with pytest.raises(InvalidDocument, match=message):
            await docs.insert_one(doc)
        assert await docs.count() == 0


def _ulid_reference(ms: int, rand: int) -> str:
    """Crockford base32 of the 128-bit ULID value, through the standard library."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    table = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", alphabet.encode())
    raw = base64.b32encode(((ms << 80) | rand).to_bytes(20, "big"))
    return raw[6:].translate(table).decode()


@given(st.integers(0, 2**48 - 1), st.integers(0, 2**80 - 1))
def test_ids_are_written_as_ulids_in_crockford_base32(ms: int, rand: int) -> None:
    assert encode_id(ms, rand) == _ulid_reference(ms, rand)
    assert len(encode_id(ms, rand)) == 26


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()  # any code point: control characters, the storage mark, astral planes
    | st.datetimes(timezones=st.just(UTC))
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(min_size=1).filter(lambda k: k[0] not in "$" + MARK), _VALUES))
def test_stored_json_reads_back_and_matches_the_standard_encoder(doc: dict[str, Any]) -> None:
    """Documents are written with orjson; the JSON must hold what `json` would have written
    (so files written before and after read and index alike) and read back the same."""
    try:
        norm, marked = normalize_document(doc, "things")
    except InvalidDocument:
        return  # what the store refuses (dots in keys, ...) is tested elsewhere
    text = dumps(norm, marked=marked)
    expected = json.dumps(
        to_storage(norm), ensure_ascii=False, separators=(",", ":"), default=_date_hook
    )
    assert json.loads(text) == json.loads(expected)
    assert loads(text) == loads(expected)


def test_new_ids_are_unique_and_sorted() -> None:
    ids = [new_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(len(i) == 26 and i.isalnum() for i in ids[:100])


def test_catalog_declares_the_collections_others_rely_on() -> None:
    system = {"companies", "users", "memberships", "sessions", "api_keys", "instances"}
    tenant = {
        "flows", "flow_versions", "plays", "play_layers", "kv", "audit_logs", "schedules",
        "component_configs", "links", "channels",
    }  # fmt: skip
    assert {s.name for s in CATALOG if s.scope == "system"} >= system
    assert {s.name for s in CATALOG if s.scope == "tenant"} >= tenant
    assert CATALOG.get("kv").secret_fields == {"value"}
    assert CATALOG.get("links").secret_fields == {"data"}
    assert CATALOG.get("component_configs").secret_fields == {"secrets"}
    ttl = CATALOG.get("sessions").ttl
    assert ttl is not None
    assert ttl.expire_after_seconds == 0


@pytest.mark.parametrize(
    "make",
    [
        lambda: CollectionSpec("Bad-Name", "tenant"),
        lambda: CollectionSpec("x", "global"),  # type: ignore[arg-type]
        lambda: CollectionSpec("x", "tenant", (index("a", "b", expire_after_seconds=1),)),
        lambda: CollectionSpec("x", "tenant", (index("s"),), frozenset({"s"})),
        lambda: CollectionSpec("x", "tenant", (index("a.$b"),)),
        lambda: CATALOG.extended(CollectionSpec("flows", "tenant")),
    ],
)
def test_catalog_refuses_bad_declarations(make: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        make()  # type: ignore[operator]


async def test_unreachable_mongodb_names_the_url_without_credentials(
    autojump_clock: trio.testing.MockClock,
) -> None:
    url = "mongodb://admin:hunter2@127.0.0.1:1/flow8"
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        url, serverSelectionTimeoutMS=50, connectTimeoutMS=50
    )
    try:
        with pytest.raises(StoreUnavailable) as e:
            async with open_store(url, mongo_client=client, encryption=KEYS):
                pass
    finally:
        client.close()
    text = str(e.value)
    assert "mongodb://***@127.0.0.1:1/flow8" in text
    assert "hunter2" not in text
    assert "admin" not in text


@pytest.mark.parametrize(
    "url", ["mongodb://admin:pa@ss-canary@db/flow8", "mongodb://admin:pa/ss-canary@db/flow8"]
)
async def test_a_password_needing_escapes_does_not_show_in_the_url_error(url: str) -> None:
    with pytest.raises(StoreUnavailable) as e:
        async with open_store(url, encryption=KEYS):
            pass
    assert "invalid MongoDB URL mongodb://***@db/flow8" in str(e.value)
    assert "canary" not in str(e.value)


async def test_bad_store_urls_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="unsupported store URL"):
        async with open_store("postgres://x", encryption=KEYS):
            pass
    with pytest.raises(StoreUnavailable, match="file path"):
        async with open_store("sqlite://", encryption=KEYS):
            pass
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StoreUnavailable, match="cannot create the directory of sqlite database"):
        async with open_store(f"sqlite:///{blocker}/sub/flow8.db", encryption=KEYS):
            pass


def test_a_key_file_that_cannot_be_written_is_a_keyring_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(KeyringError, match="cannot use the key file"):
        load_keyring(None, blocker / "data")


async def test_errors_from_the_callers_block_come_back_unwrapped(tmp_path: Path) -> None:
    class Boom(Exception):
        pass

    cause = KeyError("why")
    with pytest.raises(Boom) as e:
        async with open_store(f"sqlite://{tmp_path}/u.db", encryption=KEYS):
            raise Boom from cause
    assert e.value.__cause__ is cause


async def test_serve_store_runs_as_a_service(tmp_path: Path) -> None:
    from flow8.store import Store, serve_store

    async with trio.open_nursery() as nursery:
        store: Store = await nursery.start(
            functools.partial(serve_store, f"sqlite://{tmp_path}/s.db", encryption=KEYS)
        )
        await store.system.collection("users").insert_one({"email": "x@y"})
        nursery.cancel_scope.cancel()
    async with open_store(f"sqlite://{tmp_path}/s.db", encryption=KEYS) as again:
        assert await again.system.collection("users").count({"email": "x@y"}) == 1


async def test_mongodb_without_configured_keys_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mongomock

    from flow8.store import KeyringError

    monkeypatch.delenv("FLOW8_ENCRYPTION_KEYS", raising=False)
    client: Any = mongomock.MongoClient()
    with pytest.raises(KeyringError, match="FLOW8_ENCRYPTION_KEYS"):
        async with open_store("mongodb://u:secretpw@db/flow8", mongo_client=client):
            pass
    async with open_store(
        "mongodb://u:secretpw@db/flow8", mongo_client=client, encryption=KEYS
    ) as store:
        stats = store.statistics()
    assert stats["backend"] == "mongo"
    assert stats["location"] == "mongodb://***@db/flow8 (database flow8)"
    assert "secretpw" not in repr(stats)
