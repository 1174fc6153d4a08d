"""Companies and members: adding, roles, the last owner, and who may grant what."""

from __future__ import annotations

import httpx
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv


async def _company(client: httpx.AsyncClient) -> str:
    r = await client.get("/api/auth/me")
    company: str = r.json()["companyId"]
    return company


async def test_add_new_and_existing_users_and_change_roles(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company = await _company(owner)
        base = f"/api/companies/{company}/members"
        r = await owner.post(base, json={"email": "ed@example.com", "role": "editor"})
        assert r.status_code == 422  # a new user needs an initial password
        assert r.json()["fields"][0]["field"] == "password"
        r = await owner.post(
            base, json={"email": "Ed@Example.com", "role": "editor", "password": "ed-password-1"}
        )
        assert r.status_code == 201
        ed = r.json()
        assert ed["email"] == "ed@example.com"
        assert ed["role"] == "editor"
        r = await owner.post(base, json={"email": "ed@example.com", "role": "viewer"})
        assert r.status_code == 409
        # The second company adds the same existing user without touching their password.
        other = (await owner.post("/api/companies", json={"name": "Other"})).json()["id"]
        r = await owner.post(
            f"/api/companies/{other}/members",
            json={"email": "ed@example.com", "role": "viewer", "password": "hijack-pass-1"},
        )
        assert r.status_code == 201
        r = await owner.put(f"{base}/{ed['userId']}", json={"role": "operator"})
        assert r.status_code == 200
        assert r.json()["role"] == "operator"
        listing = (await owner.get(base)).json()
        assert {m["email"]: m["role"] for m in listing["data"]} == {
            OWNER_EMAIL: "owner",
            "ed@example.com": "operator",
        }
    async with installed.session("ed@example.com", "ed-password-1") as ed_client:
        companies = (await ed_client.get("/api/companies")).json()["data"]
        assert {c["role"] for c in companies} == {"operator", "viewer"}
    async with installed.client() as anon:
        r = await anon.post(
            "/api/auth/login", json={"email": "ed@example.com", "password": "hijack-pass-1"}
        )
        assert r.status_code == 401


async def test_last_owner_stays_and_no_self_promotion(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company = await _company(owner)
        me = (await owner.get("/api/auth/me")).json()["user"]["id"]
        base = f"/api/companies/{company}/members"
        r = await owner.delete(f"{base}/{me}")
        assert r.status_code == 409
        assert r.json()["error"] == "LAST_OWNER"
        r = await owner.put(f"{base}/{me}", json={"role": "viewer"})
        assert r.status_code == 403
        await owner.post(
            base, json={"email": "ad@example.com", "role": "admin", "password": "ad-password-1"}
        )
    async with installed.session("ad@example.com", "ad-password-1") as admin:
        r = await admin.post(
            base, json={"email": "x@example.com", "role": "owner", "password": "x-password-1"}
        )
        assert r.status_code == 403  # an admin cannot grant owner
        r = await admin.put(f"{base}/{me}", json={"role": "viewer"})
        assert r.status_code == 403  # nor demote an owner
        r = await admin.put(f"/api/companies/{company}", json={"name": "Renamed"})
        assert r.status_code == 403  # company management is for owners
        r = await admin.post(
            base, json={"email": "v@example.com", "role": "viewer", "password": "v-password-1"}
        )
        assert r.status_code == 201


async def test_fields_a_client_must_not_set_are_refused(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company = await _company(owner)
        r = await owner.post(
            "/api/companies", json={"name": "X", "id": "chosen", "createdBy": "someone"}
        )
        assert r.status_code == 422
        assert {f["field"] for f in r.json()["fields"]} == {"id", "createdBy"}
        r = await owner.put(
            f"/api/companies/{company}", json={"name": "Y", "companyId": "elsewhere"}
        )
        assert r.status_code == 422
        assert (await owner.get(f"/api/companies/{company}")).json()["name"] == "Acme"
