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
        # An admin never chooses a member's password: the field is gone.
        r = await owner.post(
            base, json={"email": "ed@example.com", "role": "editor", "password": "ed-password-1"}
        )
        assert r.status_code == 422
        assert [f["field"] for f in r.json()["fields"]] == ["password"]
        r = await owner.post(base, json={"email": "Ed@Example.com", "role": "editor"})
        assert r.status_code == 201
        invited = r.json()
        assert invited["email"] == "ed@example.com"
        assert invited["role"] == "editor"
        async with installed.client() as ed_holder:
            r = await ed_holder.post(
                "/api/invitations/accept",
                json={"token": invited["token"], "password": "ed-password-1"},
            )
            assert r.status_code == 200, r.text
            ed = r.json()["user"]
            assert ed["email"] == "ed@example.com"
            assert r.json()["role"] == "editor"
        r = await owner.post(base, json={"email": "ed@example.com", "role": "viewer"})
        assert r.status_code == 409
        assert r.json()["error"] == "MEMBER_EXISTS"
        # The second company invites the same existing user, who joins with their own
        # password; no one can choose it for them.
        other = (await owner.post("/api/companies", json={"name": "Other"})).json()["id"]
        await installed.invite_and_accept(owner, other, "ed@example.com", "viewer", "ed-password-1")
        r = await owner.put(f"{base}/{ed['id']}", json={"role": "operator"})
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
        await installed.invite_and_accept(
            owner, company, "ad@example.com", "admin", "ad-password-1"
        )
    async with installed.session("ad@example.com", "ad-password-1") as admin:
        r = await admin.post(base, json={"email": "x@example.com", "role": "owner"})
        assert r.status_code == 403  # an admin cannot grant owner
        r = await admin.put(f"{base}/{me}", json={"role": "viewer"})
        assert r.status_code == 403  # nor demote an owner
        r = await admin.put(f"/api/companies/{company}", json={"name": "Renamed"})
        assert r.status_code == 403  # company management is for owners
        r = await admin.post(base, json={"email": "v@example.com", "role": "viewer"})
        assert r.status_code == 201
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        pending = (await owner.get(f"/api/companies/{company}/invitations")).json()["data"]
        assert [(i["email"], i["role"]) for i in pending] == [("v@example.com", "viewer")]


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
