"""Credential routes on the real app (Hypercorn + sqlite): CRUD with field names only, RBAC,
tenant isolation, name conflicts, validation, and an audit trail without values."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv

from flow8.services.credentials import CredentialService

PASSWORD = "member-password-1"
SECRET = "Cr3d-canary-9xQ-secret-value"
OAUTH = {"clientId": "client-1", "clientSecret": SECRET, "scopes": ["read", "write"]}


@pytest.fixture
async def env(installed: ApiEnv) -> ApiEnv:
    assert isinstance(installed.app.deps.credentials, CredentialService)
    return installed


def _leaks(text: str) -> bool:
    encoded = base64.b64encode(SECRET.encode()).decode().rstrip("=")
    return SECRET in text or encoded in text


async def _company(client: httpx.AsyncClient) -> str:
    company: str = (await client.get("/api/auth/me")).json()["companyId"]
    return company


async def test_crud_answers_field_names_never_values(env: ApiEnv) -> None:
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.post(
            "/api/credentials",
            json={"name": "google", "type": "oauth2", "data": OAUTH, "description": "Drive"},
        )
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["fields"] == ["clientId", "clientSecret", "scopes"]
        assert (made["name"], made["type"], made["description"]) == ("google", "oauth2", "Drive")
        assert set(made) == {
            "id",
            "name",
            "type",
            "description",
            "fields",
            "createdAt",
            "updatedAt",
            "createdBy",
            "updatedBy",
            "oauth",  # an oauth2 credential's connection (never a token)
        }
        assert made["oauth"]["status"] == "not_connected"
        me = (await owner.get("/api/auth/me")).json()
        assert made["createdBy"] == me["user"]["id"]
        assert not _leaks(r.text)
        cid = made["id"]

        r = await owner.get(f"/api/credentials/{cid}")
        assert r.status_code == 200
        assert r.json() == made

        # Rotate the access token without resending the client secret; drop the scopes.
        r = await owner.put(
            f"/api/credentials/{cid}",
            json={"data": {"accessToken": "at-2", "scopes": None}, "name": "google-drive"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["fields"] == ["accessToken", "clientId", "clientSecret"]
        assert r.json()["name"] == "google-drive"
        assert r.json()["description"] == "Drive"  # absent: kept
        service = env.app.deps.credentials
        assert service is not None
        company = await _company(owner)
        assert await service.reveal(company, cid) == {
            "clientId": "client-1",
            "clientSecret": SECRET,
            "accessToken": "at-2",
        }
        r = await owner.put(f"/api/credentials/{cid}", json={"description": None})
        assert r.json()["description"] is None

        listing = await owner.get("/api/credentials")
        assert listing.status_code == 200
        assert listing.json()["total"] == 1
        assert listing.json()["data"][0]["id"] == cid
        assert not _leaks(listing.text)

        assert (await owner.delete(f"/api/credentials/{cid}")).status_code == 204
        r = await owner.get(f"/api/credentials/{cid}")
        assert r.status_code == 404
        assert r.json()["error"] == "CREDENTIAL_NOT_FOUND"
        assert (await owner.delete(f"/api/credentials/{cid}")).status_code == 404


async def test_list_pages_by_name_and_filters_by_type(env: ApiEnv) -> None:
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        for name in ("c", "a", "d", "b"):
            kind, data = ("bearer", {"token": "t"}) if name in "ab" else ("generic", {"k": "v"})
            r = await owner.post(
                "/api/credentials", json={"name": name, "type": kind, "data": data}
            )
            assert r.status_code == 201, r.text
        page = (await owner.get("/api/credentials", params={"size": 3, "page": 1})).json()
        assert (page["total"], page["pages"], page["page"], page["size"]) == (4, 2, 1, 3)
        assert [c["name"] for c in page["data"]] == ["d"]
        page = (await owner.get("/api/credentials", params={"type": "bearer"})).json()
        assert [c["name"] for c in page["data"]] == ["a", "b"]
        r = await owner.get("/api/credentials", params={"type": "ssh"})
        assert r.status_code == 422


@pytest.mark.parametrize("role", ["viewer", "operator", "editor", "admin"])
async def test_admins_and_owners_write_everyone_reads(env: ApiEnv, role: str) -> None:
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company = await _company(owner)
        await env.invite_and_accept(owner, company, f"{role}@example.com", role, PASSWORD)
        r = await owner.post(
            "/api/credentials", json={"name": "n", "type": "bearer", "data": {"token": SECRET}}
        )
        cid = r.json()["id"]
    writes = [
        ("POST", "/api/credentials", {"name": "m", "type": "bearer", "data": {"token": "t"}}),
        ("PUT", f"/api/credentials/{cid}", {"data": {"token": "replaced"}}),
        ("DELETE", f"/api/credentials/{cid}", None),
    ]
    async with env.session(f"{role}@example.com", PASSWORD) as member:
        assert (await member.get("/api/credentials")).json()["total"] == 1
        assert (await member.get(f"/api/credentials/{cid}")).status_code == 200
        for method, url, body in writes:
            r = await member.request(method, url, json=body)
            if role == "admin":
                assert r.status_code in (200, 201, 204), f"{method} {url}: {r.text}"
            else:
                assert r.status_code == 403, f"{role} {method} {url}: {r.text}"
                assert r.json()["error"] == "PERMISSION_DENIED"
    service = env.app.deps.credentials
    assert service is not None
    if role != "admin":
        assert await service.reveal(company, cid) == {"token": SECRET}


async def test_another_companys_credential_is_not_found_and_unchanged(env: ApiEnv) -> None:
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company_a = await _company(owner)
        await env.invite_and_accept(owner, company_a, "boss@b.example", "viewer", PASSWORD)
    async with env.session("boss@b.example", PASSWORD) as boss:
        company_b = (await boss.post("/api/companies", json={"name": "Beta"})).json()["id"]
        assert (await boss.post("/api/auth/company", json={"companyId": company_b})).is_success
        r = await boss.post(
            "/api/credentials", json={"name": "b-cred", "type": "bearer", "data": {"token": SECRET}}
        )
        assert r.status_code == 201, r.text
        b_id = r.json()["id"]
    links = env.store.tenant(company_b).collection("links")
    before = await links.find({})
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        for method, body in (
            ("GET", None),
            ("PUT", {"name": "stolen", "data": {"token": "x"}}),
            ("DELETE", None),
        ):
            r = await owner.request(method, f"/api/credentials/{b_id}", json=body)
            assert r.status_code == 404, f"{method}: {r.text}"
            assert r.json()["error"] == "CREDENTIAL_NOT_FOUND"
        listing = await owner.get("/api/credentials")
        assert listing.json()["total"] == 0
        assert b_id not in listing.text
        # The same name is free in company A.
        r = await owner.post(
            "/api/credentials", json={"name": "b-cred", "type": "generic", "data": {}}
        )
        assert r.status_code == 201
    assert await links.find({}) == before


async def test_duplicate_names_conflict(env: ApiEnv) -> None:
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        body: dict[str, Any] = {"name": "dup", "type": "basic"}
        body["data"] = {"username": "u", "password": SECRET}
        assert (await owner.post("/api/credentials", json=body)).status_code == 201
        r = await owner.post("/api/credentials", json=body)
        assert r.status_code == 409
        assert r.json()["error"] == "CREDENTIAL_NAME_TAKEN"
        other = await owner.post(
            "/api/credentials", json={"name": "other", "type": "generic", "data": {}}
        )
        r = await owner.put(f"/api/credentials/{other.json()['id']}", json={"name": "dup"})
        assert r.status_code == 409
        assert not _leaks(r.text)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "type": "ssh", "data": {"token": SECRET}}, "type"),
        ({"name": "x", "type": "bearer", "data": {"token": 5}}, "data.token"),
        ({"name": "x", "type": "bearer", "data": {"tok": SECRET}}, "data"),
        ({"name": "x", "type": "bearer", "data": {"token": "t", SECRET: "x"}}, "data"),
        ({"name": "x", "type": "basic", "data": {"username": "u"}}, "data.password"),
        ({"name": "x", "type": "apiKey", "data": {"key": SECRET, "header": "a b"}}, "data.header"),
        ({"name": "x", "type": "generic", "data": {SECRET + "!": SECRET}}, "data"),
        ({"name": " ", "type": "bearer", "data": {"token": SECRET}}, "name"),
        ({"name": "x", "type": "bearer", "data": {"token": SECRET}, "id": "01X"}, "id"),
        ({"name": "x", "type": "bearer", "data": [SECRET]}, "data"),
    ],
)
async def test_bad_bodies_are_422_naming_the_field_not_the_secret(
    env: ApiEnv, body: dict[str, Any], field: str
) -> None:
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.post("/api/credentials", json=body)
        assert r.status_code == 422, r.text
        assert field in [f["field"] for f in r.json()["fields"]]
        assert not _leaks(r.text)
        assert (await owner.get("/api/credentials")).json()["total"] == 0


async def test_update_that_breaks_the_type_is_422_and_changes_nothing(env: ApiEnv) -> None:
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.post(
            "/api/credentials", json={"name": "k", "type": "apiKey", "data": {"key": SECRET}}
        )
        cid = r.json()["id"]
        r = await owner.put(f"/api/credentials/{cid}", json={"data": {"key": None}})
        assert r.status_code == 422
        assert r.json()["fields"][0]["field"] == "data.key"
        r = await owner.put(f"/api/credentials/{cid}", json={"type": "bearer"})
        assert r.status_code == 422  # the type never changes
        assert (await owner.get(f"/api/credentials/{cid}")).json()["fields"] == ["key"]


async def test_audit_records_changes_with_field_names_only(env: ApiEnv) -> None:
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.post(
            "/api/credentials",
            json={"name": "db", "type": "basic", "data": {"username": "u", "password": SECRET}},
        )
        cid = r.json()["id"]
        await owner.put(f"/api/credentials/{cid}", json={"data": {"password": SECRET + "2"}})
        await owner.put(f"/api/credentials/{cid}", json={"name": "db"})  # no change: no entry
        await owner.delete(f"/api/credentials/{cid}")
        await env.audit.wait_idle()
        r = await owner.get("/api/audit", params={"targetType": "credential", "size": 100})
        entries = {e["action"]: e for e in r.json()["data"]}
    assert set(entries) == {"credential_created", "credential_updated", "credential_deleted"}
    created = entries["credential_created"]
    assert created["targetId"] == cid
    assert created["after"]["fields"] == ["password", "username"]
    updated = entries["credential_updated"]
    assert updated["details"] == {"changedFields": ["password"]}
    assert updated["before"]["name"] == updated["after"]["name"] == "db"
    assert entries["credential_deleted"]["before"]["type"] == "basic"
    assert not _leaks(r.text)
    assert SECRET + "2" not in r.text


def _doc_bodies(path: Path, start: str, end: str) -> list[Any]:
    """The JSON bodies (`-d '...'`) of the curl examples between two headings of a doc."""
    text = path.read_text()
    section = text[text.index(start) : text.index(end, text.index(start))]
    return [json.loads(b) for b in re.findall(r"-d '(\{.*?\})'", section, re.DOTALL)]


async def test_the_documented_curl_examples_work(env: ApiEnv) -> None:
    root = Path(__file__).parents[2]
    create, patch = _doc_bodies(root / "docs/api.md", "## Credentials", "## Routes")
    (readme,) = _doc_bodies(root / "README.md", "## Credentials", "## Components")
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.post("/api/credentials", json=create)
        assert r.status_code == 201, r.text
        assert r.json()["fields"] == ["header", "key"]
        r = await owner.put(f"/api/credentials/{r.json()['id']}", json=patch)
        assert r.status_code == 200, r.text
        assert (r.json()["name"], r.json()["fields"]) == ("github-ci", ["key"])
        r = await owner.get("/api/credentials", params={"type": "apiKey"})
        assert r.json()["total"] == 1
        r = await owner.post("/api/credentials", json=readme)
        assert r.status_code == 201, r.text
        assert r.json()["fields"] == ["password", "username"]
