"""CredentialService on a real sqlite store: encryption at rest, update semantics, validation
that never repeats a secret, names, paging, tenancy, concurrent patches."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import mongomock
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from flow8.services.credentials import (
    MAX_DATA_CHARS,
    RULES,
    TYPES,
    CredentialNameTaken,
    CredentialNotFound,
    CredentialService,
    InvalidCredential,
    data_schema,
    patch_schema,
)
from flow8.services.credentials._types import (
    GENERIC_MAX_FIELDS,
    GENERIC_MAX_VALUE,
    check_data,
    merge_data,
)
from flow8.store import Keyring, Store, open_store

CANARY = "cAnArY-s3cret-7Qx9-zz"
ACME = "acme"
GLOBEX = "globex"


@pytest.fixture(params=["sqlite", "mongomock"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        async with open_store(
            f"sqlite:///{tmp_path / 'cred.db'}",
            data_dir=tmp_path,
            durability="normal",
            encryption=Keyring.generate(),
        ) as s:
            yield s
        return
    client: Any = mongomock.MongoClient(tz_aware=True)
    async with open_store(
        "mongodb://mock/flow8test", mongo_client=client, encryption=Keyring.generate()
    ) as s:
        yield s


@pytest.fixture
def creds(store: Store) -> CredentialService:
    return CredentialService(store)


def _raw_rows(path: Path) -> list[str]:
    """Each credential as stored: its indexed document and the fields kept apart (the
    encrypted data among them), as one JSON object."""
    with sqlite3.connect(path) as db:
        rows = db.execute('SELECT doc, bulk FROM "c_links"')
        return [json.dumps({**json.loads(d), **json.loads(b or "{}")}) for d, b in rows]


def _database_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.glob("cred.db*"))


def _forms(secret: str) -> list[str]:
    return [secret, base64.b64encode(secret.encode()).decode().rstrip("=")]


async def test_create_answers_field_names_and_reveal_gives_the_data(
    creds: CredentialService,
) -> None:
    made = await creds.create(
        ACME,
        "  github  ",
        "apiKey",
        {"key": CANARY, "header": "X-Api-Key"},
        description="CI token",
        created_by="u1",
    )
    assert made.name == "github"
    assert made.type == "apiKey"
    assert made.fields == ("header", "key")
    assert made.created_by == made.updated_by == "u1"
    assert CANARY not in repr(made)
    assert await creds.get(ACME, made.id) == made
    assert await creds.reveal(ACME, made.id) == {"key": CANARY, "header": "X-Api-Key"}


async def test_data_is_ciphertext_on_disk(tmp_path: Path) -> None:
    async with open_store(
        f"sqlite:///{tmp_path / 'cred.db'}", data_dir=tmp_path, encryption=Keyring.generate()
    ) as store:
        creds = CredentialService(store)
        made = await creds.create(ACME, "db", "basic", {"username": "svc", "password": CANARY})
        await creds.update(ACME, made.id, data={"password": CANARY + "-2"})
        rows = _raw_rows(tmp_path / "cred.db")
        assert len(rows) == 1
        stored = json.loads(rows[0])
        assert stored["name"] == "db"
        assert isinstance(stored["data"], str)  # the sealed token, not a document
        raw = _database_bytes(tmp_path)
        for form in _forms(CANARY) + _forms(CANARY + "-2"):
            assert form not in rows[0]
            assert form.encode() not in raw
        assert await creds.reveal(ACME, made.id) == {"username": "svc", "password": CANARY + "-2"}


async def test_data_is_ciphertext_in_mongodb() -> None:
    client: Any = mongomock.MongoClient(tz_aware=True)
    async with open_store(
        "mongodb://mock/flow8test", mongo_client=client, encryption=Keyring.generate()
    ) as store:
        creds = CredentialService(store)
        made = await creds.create(ACME, "tok", "bearer", {"token": CANARY})
        await creds.update(ACME, made.id, data={"token": CANARY + "-2"})
        raw = client["flow8test"]["links"].find_one({"_id": made.id})
        assert isinstance(raw["data"], str)
        for form in _forms(CANARY) + _forms(CANARY + "-2"):
            assert form not in json.dumps(raw, default=str)
        assert await creds.reveal(ACME, made.id) == {"token": CANARY + "-2"}


async def test_update_replaces_removes_and_keeps_fields(creds: CredentialService) -> None:
    made = await creds.create(
        ACME,
        "google",
        "oauth2",
        {"clientId": "cid", "clientSecret": CANARY, "accessToken": "at-1", "scopes": ["a", "b"]},
    )
    change = await creds.update(
        ACME,
        made.id,
        data={"accessToken": "at-2", "scopes": None, "refreshToken": "rt"},
        updated_by="u2",
    )
    assert change.changed_fields == ("accessToken", "refreshToken", "scopes")
    assert change.before == made
    assert change.after.fields == ("accessToken", "clientId", "clientSecret", "refreshToken")
    assert change.after.updated_by == "u2"
    assert change.after.created_by == made.created_by
    assert await creds.reveal(ACME, made.id) == {
        "clientId": "cid",
        "clientSecret": CANARY,  # omitted: kept, the client never resent it
        "accessToken": "at-2",
        "refreshToken": "rt",
    }
    assert await creds.get(ACME, made.id) == change.after


async def test_rename_and_description(creds: CredentialService) -> None:
    made = await creds.create(ACME, "a", "bearer", {"token": CANARY}, description="old")
    change = await creds.update(ACME, made.id, name="b", description=None)
    assert (change.after.name, change.after.description) == ("b", None)
    assert change.changed_fields == ()
    assert await creds.reveal(ACME, made.id) == {"token": CANARY}
    kept = await creds.update(ACME, made.id, description="new")
    assert kept.after.name == "b"
    assert kept.after.description == "new"


async def test_an_update_changing_nothing_writes_nothing(creds: CredentialService) -> None:
    made = await creds.create(ACME, "a", "bearer", {"token": CANARY})
    change = await creds.update(ACME, made.id, name="a", data={"token": CANARY})
    assert not change.changed
    assert await creds.get(ACME, made.id) == made


async def test_update_may_not_break_the_type(creds: CredentialService) -> None:
    made = await creds.create(ACME, "a", "basic", {"username": "u", "password": CANARY})
    with pytest.raises(InvalidCredential) as info:
        await creds.update(ACME, made.id, data={"password": None, "extra": "x"})
    fields = {p.field for p in info.value.problems}
    assert fields == {"data.password", "data"}
    assert await creds.reveal(ACME, made.id) == {"username": "u", "password": CANARY}


@pytest.mark.parametrize(
    ("type_", "data", "field"),
    [
        ("apiKey", {"key": ""}, "data.key"),
        ("apiKey", {"key": "k", "header": f"X {CANARY}"}, "data.header"),
        ("apiKey", {"header": "X-Key"}, "data.key"),
        ("basic", {"username": "u", "password": 7}, "data.password"),
        ("basic", {"username": "u", "password": CANARY * 1000}, "data.password"),
        ("bearer", {"token": CANARY, "other": CANARY}, "data"),
        ("bearer", {"token": "t", CANARY: "v"}, "data"),
        ("bearer", {"token": CANARY, CANARY + " x": "v"}, "data"),
        ("oauth2", {"clientId": "c", "clientSecret": CANARY, "tokenUrl": CANARY}, "data.tokenUrl"),
        ("oauth2", {"clientId": "c", "clientSecret": CANARY, "scopes": "a b"}, "data.scopes"),
        ("oauth2", {"clientId": "c", "clientSecret": "s", "scopes": [CANARY + " "]}, "data.scopes"),
        ("generic", {"ok": CANARY, "n": 1}, "data.n"),
        ("generic", {f"k{i}": CANARY for i in range(17)}, "data"),
        ("generic", [CANARY], "data"),
    ],
)
async def test_validation_errors_name_the_field_never_the_secret(
    creds: CredentialService, type_: str, data: Any, field: str
) -> None:
    with pytest.raises(InvalidCredential) as info:
        await creds.create(ACME, "x", type_, data)
    assert field in {p.field for p in info.value.problems}
    text = str(info.value) + repr(info.value.problems)
    assert CANARY not in text
    assert await creds.list(ACME) == ([], 0)


async def test_bad_name_and_type(creds: CredentialService) -> None:
    for name in ("", "   ", "\u3000\t", "n" * 129):
        with pytest.raises(InvalidCredential) as info:
            await creds.create(ACME, name, "bearer", {"token": "t"})
        assert info.value.problems[0].field == "name"
    with pytest.raises(InvalidCredential) as info:
        await creds.create(ACME, "x", "ssh", {"token": CANARY})
    assert info.value.problems[0].field == "type"
    assert CANARY not in str(info.value)
    with pytest.raises(InvalidCredential):
        await creds.create(ACME, "x", "bearer", {"token": "t"}, description="d" * 1001)


async def test_names_are_unique_per_company(creds: CredentialService) -> None:
    first = await creds.create(ACME, "shared", "bearer", {"token": "a"})
    with pytest.raises(CredentialNameTaken):
        await creds.create(ACME, "shared", "generic", {})
    await creds.create(GLOBEX, "shared", "bearer", {"token": "b"})  # another company: fine
    other = await creds.create(ACME, "other", "bearer", {"token": "c"})
    with pytest.raises(CredentialNameTaken):
        await creds.update(ACME, other.id, name="shared")
    assert (await creds.get(ACME, other.id)).name == "other"
    assert (await creds.get(ACME, first.id)).name == "shared"


async def test_list_pages_by_name_and_filters_by_type(creds: CredentialService) -> None:
    for name in ("delta", "alpha", "charlie", "bravo", "echo"):
        kind = "bearer" if name in ("alpha", "echo") else "generic"
        data = {"token": "t"} if kind == "bearer" else {"x": "y"}
        await creds.create(ACME, name, kind, data)
    page, total = await creds.list(ACME, page=0, size=2)
    assert total == 5
    assert [c.name for c in page] == ["alpha", "bravo"]
    page, _ = await creds.list(ACME, page=2, size=2)
    assert [c.name for c in page] == ["echo"]
    page, total = await creds.list(ACME, type="bearer")
    assert (total, [c.name for c in page]) == (2, ["alpha", "echo"])
    with pytest.raises(InvalidCredential):
        await creds.list(ACME, type="nope")


async def test_another_company_never_reaches_a_credential(creds: CredentialService) -> None:
    made = await creds.create(ACME, "mine", "bearer", {"token": CANARY})
    with pytest.raises(CredentialNotFound):
        await creds.get(GLOBEX, made.id)
    with pytest.raises(CredentialNotFound):
        await creds.reveal(GLOBEX, made.id)
    with pytest.raises(CredentialNotFound):
        await creds.update(GLOBEX, made.id, data={"token": "stolen"})
    with pytest.raises(CredentialNotFound):
        await creds.delete(GLOBEX, made.id)
    assert await creds.list(GLOBEX) == ([], 0)
    assert await creds.get(ACME, made.id) == made
    assert await creds.reveal(ACME, made.id) == {"token": CANARY}


async def test_delete(creds: CredentialService) -> None:
    made = await creds.create(ACME, "gone", "generic", {"a": "b"})
    assert (await creds.delete(ACME, made.id)) == made
    with pytest.raises(CredentialNotFound):
        await creds.get(ACME, made.id)
    with pytest.raises(CredentialNotFound):
        await creds.delete(ACME, made.id)
    # The name is free again.
    await creds.create(ACME, "gone", "generic", {})


async def _patch(creds: CredentialService, credential_id: str, key: str) -> None:
    await creds.update(ACME, credential_id, data={key: "1"})


async def test_concurrent_patches_of_different_fields_both_land(
    creds: CredentialService,
) -> None:
    made = await creds.create(ACME, "g", "generic", {"a": "0", "b": "0"})
    async with trio.open_nursery() as nursery:
        for key in ("a", "b", "c", "d"):
            nursery.start_soon(_patch, creds, made.id, key)
    assert await creds.reveal(ACME, made.id) == {"a": "1", "b": "1", "c": "1", "d": "1"}


def test_every_type_fits_the_size_limit() -> None:
    # The per-field limits must keep the largest valid credential of every type within
    # MAX_DATA_CHARS, or a body the published schema accepts would be refused.
    for type_, rules in RULES.items():
        worst = sum(len(r.name) + r.max_length * (64 if r.is_list else 1) for r in rules)
        assert worst <= MAX_DATA_CHARS, type_
    assert MAX_DATA_CHARS >= GENERIC_MAX_FIELDS * (64 + GENERIC_MAX_VALUE)


_KEYS = st.sampled_from(
    ["key", "header", "username", "password", "token", "clientId", "clientSecret", "scopes",
     "tokenUrl", "accessToken", "x", "bad key", "9lives", ""]
)  # fmt: skip
_VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["X-Api-Key", "https://auth.example/token", "ftp://x", "a b", "\n"]),
    st.lists(st.text(max_size=5), max_size=3),
    st.integers(),
    st.none(),
)


@settings(max_examples=150, deadline=None)
@given(type_=st.sampled_from(TYPES), data=st.dictionaries(_KEYS, _VALUES, max_size=5))
def test_the_published_schema_and_the_service_agree(type_: str, data: dict[str, Any]) -> None:
    schema_ok = jsonschema.Draft202012Validator(data_schema(type_)).is_valid(data)
    try:
        check_data(type_, data)
        service_ok = True
    except InvalidCredential:
        service_ok = False
    assert schema_ok is service_ok, (type_, data)


@settings(max_examples=100, deadline=None)
@given(patch=st.dictionaries(_KEYS, _VALUES, max_size=5))
def test_every_patch_the_schema_refuses_the_service_refuses(patch: dict[str, Any]) -> None:
    if jsonschema.Draft202012Validator(patch_schema()).is_valid(patch):
        return
    with pytest.raises(InvalidCredential):
        merge_data("generic", {}, patch)
