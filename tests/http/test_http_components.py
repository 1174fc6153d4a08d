"""Component routes on the real app: CRUD answering secret field names only, one default per
kind, provider schemas, the connectivity check, RBAC, tenant isolation, and an audit trail
without secret values."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv

PASSWORD = "member-password-1"
SECRET = "Comp0nent-canary-31f-secret"
PG = {
    "name": "warehouse",
    "kind": "db",
    "provider": "postgres",
    "config": {"host": "db.internal.example", "database": "wh", "user": "flow8",
               "password": SECRET, "maxRows": 500},
    "isDefault": True,
}  # fmt: skip


async def _company(client: httpx.AsyncClient) -> str:
    company: str = (await client.get("/api/auth/me")).json()["companyId"]
    return company


async def test_crud_answers_secret_field_names_never_values(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.post("/api/components", json=PG)
        assert r.status_code == 201, r.text
        made = r.json()
        assert SECRET not in r.text
        assert made["config"] == {
            "host": "db.internal.example",
            "database": "wh",
            "user": "flow8",
            "maxRows": 500,
        }
        assert made["secretFields"] == ["password"]
        assert (made["kind"], made["provider"], made["isDefault"]) == ("db", "postgres", True)
        cid = made["id"]
        for r in (
            await owner.get(f"/api/components/{cid}"),
            await owner.get("/api/components"),
            await owner.get("/api/components", params={"kind": "db"}),
        ):
            assert r.status_code == 200, r.text
            assert SECRET not in r.text
        assert [c["id"] for c in (await owner.get("/api/components")).json()["items"]] == [cid]
        assert (await owner.get("/api/components", params={"kind": "email"})).json() == {
            "items": []
        }
        # A patch without the password keeps it; null removes a plain field.
        r = await owner.put(
            f"/api/components/{cid}", json={"config": {"maxRows": None, "database": "wh2"}}
        )
        assert r.status_code == 200, r.text
        assert r.json()["config"] == {"host": "db.internal.example", "database": "wh2",
                                      "user": "flow8"}  # fmt: skip
        assert r.json()["secretFields"] == ["password"]
        service = installed.app.deps.components
        assert service is not None
        stored = (
            await installed.store.tenant(await _company(owner))
            .collection("component_configs")
            .find_one({"_id": cid})
        )
        assert stored is not None
        assert stored["secrets"] == {"password": SECRET}  # decrypted by the store for us
        assert (await owner.delete(f"/api/components/{cid}")).status_code == 204
        assert (await owner.get(f"/api/components/{cid}")).status_code == 404


async def test_one_default_per_kind(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        first = (await owner.post("/api/components", json={
            "name": "a", "kind": "storage", "provider": "local",
            "config": {"rootPath": "a"}, "isDefault": True})).json()  # fmt: skip
        second = (await owner.post("/api/components", json={
            "name": "b", "kind": "storage", "provider": "local",
            "config": {"rootPath": "b"}, "isDefault": True})).json()  # fmt: skip
        assert second["isDefault"] is True
        assert (await owner.get(f"/api/components/{first['id']}")).json()["isDefault"] is False
        r = await owner.put(f"/api/components/{first['id']}", json={"isDefault": True})
        assert r.json()["isDefault"] is True
        assert (await owner.get(f"/api/components/{second['id']}")).json()["isDefault"] is False


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({**PG, "kind": "ai", "provider": "bard"}, "provider", "openai-compatible"),
        ({"name": "a", "kind": "ai", "provider": "openai-compatible",
          "config": {"model": "m", "apiKey": SECRET}}, "config", "required"),  # no baseUrl
        ({"name": "a", "kind": "ai", "provider": "openai",
          "config": {"model": "m", "apiKey": SECRET, "baseUrl": "ftp://x"}}, "config", "http"),
        ({**PG, "provider": "oracle"}, "provider", "postgres"),
        ({**PG, "config": {"host": "h"}}, "config", "required"),
        ({**PG, "config": {**PG["config"], "port": 70000}}, "config.port", "70000"),
        ({**PG, "config": {**PG["config"], "colour": "red"}}, "config", "colour"),
        ({"name": "s", "kind": "storage", "provider": "local",
          "config": {"rootPath": "/etc"}}, "config", "outside the directories"),
    ],
)  # fmt: skip
async def test_bad_configs_are_refused_naming_the_field(
    installed: ApiEnv, body: dict[str, Any], field: str, words: str
) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.post("/api/components", json=body)
        assert r.status_code == 422, r.text
        fields = r.json()["fields"]
        assert any(f["field"] == field and words in f["message"] for f in fields), fields
        assert SECRET not in r.text
        assert (await owner.get("/api/components")).json()["items"] == []


async def test_providers_publish_their_schemas(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.get("/api/components/providers")
        assert r.status_code == 200
        providers = {(p["kind"], p["provider"]): p for p in r.json()["items"]}
    assert set(providers) == {
        ("request", "http"), ("storage", "local"), ("storage", "s3"), ("storage", "gcs"),
        ("db", "postgres"), ("db", "mysql"), ("db", "sqlite"), ("email", "smtp"),
        ("console", "console"), ("ai", "openai"), ("ai", "anthropic"), ("ai", "mistral"),
        ("ai", "ollama"), ("ai", "openai-compatible"),
    }  # fmt: skip
    assert providers[("ai", "openai")]["secretFields"] == ["apiKey"]
    assert providers[("ai", "openai")]["extra"] == "ai"
    assert providers[("db", "postgres")]["secretFields"] == ["password"]
    assert providers[("db", "postgres")]["extra"] == "postgres"
    assert "password" in providers[("db", "postgres")]["configSchema"]["properties"]
    assert providers[("request", "http")]["builtinDefault"] is True


async def test_the_connectivity_check_answers_what_it_found(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        made = (await owner.post("/api/components", json={
            "name": "files", "kind": "storage", "provider": "local",
            "config": {"rootPath": "files"}})).json()  # fmt: skip
        r = await owner.post(f"/api/components/{made['id']}/test")
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is True
        assert r.json()["message"].startswith("connected")
        made = (await owner.post("/api/components", json={
            "name": "crm", "kind": "db", "provider": "sqlite",
            "config": {"path": "missing/crm.db", "readOnly": True}})).json()  # fmt: skip
        r = await owner.post(f"/api/components/{made['id']}/test")
        assert r.json()["ok"] is False
        assert "cannot open the database" in r.json()["message"]


@pytest.mark.parametrize("role", ["viewer", "operator", "editor", "admin"])
async def test_admins_and_owners_write_everyone_reads(installed: ApiEnv, role: str) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company = await _company(owner)
        await installed.invite_and_accept(owner, company, f"{role}@example.com", role, PASSWORD)
        cid = (await owner.post("/api/components", json=PG)).json()["id"]
    writes = [
        ("POST", "/api/components", {**PG, "name": "other"}),
        ("PUT", f"/api/components/{cid}", {"config": {"password": "replaced-1"}}),
        ("POST", f"/api/components/{cid}/test", None),
        ("DELETE", f"/api/components/{cid}", None),
    ]
    async with installed.session(f"{role}@example.com", PASSWORD) as member:
        assert len((await member.get("/api/components")).json()["items"]) == 1
        assert (await member.get(f"/api/components/{cid}")).status_code == 200
        for method, url, body in writes:
            r = await member.request(method, url, json=body)
            if role == "admin":
                assert r.status_code in (200, 201, 204), f"{method} {url}: {r.text}"
            else:
                assert r.status_code == 403, f"{role} {method} {url}: {r.text}"
                assert r.json()["error"] == "PERMISSION_DENIED"


async def test_another_companys_component_is_not_found_and_unchanged(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company_a = await _company(owner)
        cid = (await owner.post("/api/components", json=PG)).json()["id"]
        company_b = (await owner.post("/api/companies", json={"name": "Beta"})).json()["id"]
        assert (await owner.post("/api/auth/company", json={"companyId": company_b})).is_success
        for method, body in (
            ("GET", None),
            ("PUT", {"name": "stolen"}),
            ("POST", None),
            ("DELETE", None),
        ):
            url = f"/api/components/{cid}" + ("/test" if method == "POST" else "")
            r = await owner.request(method, url, json=body)
            assert r.status_code == 404, f"{method}: {r.text}"
            assert r.json()["error"] == "COMPONENT_NOT_FOUND"
        assert (await owner.get("/api/components")).json()["items"] == []
        # A flow of company B naming A's component, by id or by name, is refused as unknown.
        for choice in (cid, "warehouse"):
            r = await owner.post("/api/flows", json={"name": "steal", "flowlets": [
                {"ref": "q", "appId": "db-query", "componentConfigIds": {"db": choice},
                 "args": {"sql": "SELECT 1"}}]})  # fmt: skip
            assert r.status_code == 422, r.text
            assert f"no db component {choice!r} in this company" in r.text
        assert (await owner.post("/api/auth/company", json={"companyId": company_a})).is_success
        assert (await owner.get(f"/api/components/{cid}")).json()["name"] == "warehouse"


async def test_audit_records_changes_with_secret_field_names_only(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        cid = (await owner.post("/api/components", json=PG)).json()["id"]
        await owner.put(f"/api/components/{cid}", json={"config": {"password": SECRET + "2"}})
        await owner.put(f"/api/components/{cid}", json={"name": "warehouse"})  # no change
        await owner.delete(f"/api/components/{cid}")
        await installed.audit.wait_idle()
        r = await owner.get("/api/audit", params={"targetType": "component", "size": 100})
        entries = [e["action"] for e in r.json()["data"]]
    assert sorted(entries) == ["component_created", "component_deleted", "component_updated"]
    assert SECRET not in r.text
    assert "secretFields" in r.text


async def test_the_readme_examples_create_what_they_say(installed: ApiEnv) -> None:
    text = (Path(__file__).parents[2] / "README.md").read_text()
    section = text[text.index("## Components") : text.index("## Security and limits")]
    bodies = [json.loads(b) for b in re.findall(r"-d '(\{.*?\})'", section)]
    assert {(b["kind"], b["provider"]) for b in bodies} == {
        ("request", "http"), ("storage", "local"), ("storage", "s3"), ("db", "postgres"),
        ("db", "sqlite"), ("email", "smtp"), ("ai", "openai"), ("ai", "ollama"),
    }  # fmt: skip
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        for body in bodies:
            r = await owner.post("/api/components", json=body)
            assert r.status_code == 201, (body["name"], r.text)
            assert set(r.json()["secretFields"]) <= {"password", "secretAccessKey", "apiKey"}
