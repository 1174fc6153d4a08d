"""Invitations over HTTP: inviting answers the same for every email, the token is shown once
and works once, accepting signs the holder in, and admins list and revoke pending ones."""

from __future__ import annotations

from typing import Any

import httpx
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv

# What differs between two invitations by nature; everything else must be equal.
VARYING = {"id", "email", "token", "createdAt", "expiresAt"}


async def _company(client: httpx.AsyncClient) -> str:
    company: str = (await client.get("/api/auth/me")).json()["companyId"]
    return company


async def _invite(client: httpx.AsyncClient, company: str, email: str, role: str) -> Any:
    r = await client.post(f"/api/companies/{company}/members", json={"email": email, "role": role})
    assert r.status_code == 201, r.text
    return r.json()


async def test_the_answer_is_the_same_for_an_existing_and_a_new_email(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company = await _company(owner)
        other = (await owner.post("/api/companies", json={"name": "Other"})).json()["id"]
        await installed.invite_and_accept(owner, other, "known@example.com", "viewer", "known-pw-1")
        base = f"/api/companies/{company}/members"
        answers = []
        for email in ("known@example.com", "unknown@example.com"):
            r = await owner.post(base, json={"email": email, "role": "editor"})
            answers.append((r.status_code, r.headers["content-type"], r.json()))
        (status_a, type_a, known), (status_b, type_b, unknown) = answers
        assert (status_a, type_a) == (status_b, type_b) == (201, "application/json")
        assert set(known) == set(unknown)
        assert {k: v for k, v in known.items() if k not in VARYING} == {
            k: v for k, v in unknown.items() if k not in VARYING
        }
        for key in VARYING:
            assert type(known[key]) is type(unknown[key]), key
        assert len(known["token"]) == len(unknown["token"])
        # Nobody joined, and no account was made for the new email.
        members = (await owner.get(base)).json()["data"]
        assert [m["email"] for m in members] == [OWNER_EMAIL]
    users = installed.store.system.collection("users")
    assert await users.find_one({"email": "unknown@example.com"}) is None


async def test_accepting_joins_and_signs_in_to_the_inviting_company(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company = await _company(owner)
        invited = await _invite(owner, company, "new@example.com", "operator")
        assert invited["companyId"] == company
        assert invited["token"].startswith("f8i_")
    async with installed.client() as holder:
        r = await holder.post(
            "/api/invitations/accept", json={"token": invited["token"], "password": "new-pw-123"}
        )
        assert r.status_code == 200, r.text
        assert "HttpOnly" in r.headers["set-cookie"]
        assert r.headers["cache-control"] == "no-store"
        session = r.json()
        assert (session["companyId"], session["role"]) == (company, "operator")
        assert session["user"]["email"] == "new@example.com"
        me = (await holder.get("/api/auth/me")).json()
        assert (me["companyId"], me["role"]) == (company, "operator")
        r = await holder.post(
            "/api/invitations/accept", json={"token": invited["token"], "password": "new-pw-123"}
        )
        assert r.status_code == 404  # used once
        assert r.json()["error"] == "INVITATION_NOT_FOUND"
    async with installed.session("new@example.com", "new-pw-123") as member:
        assert (await member.get("/api/auth/me")).json()["companyId"] == company


async def test_refusals_leave_the_invitation_pending(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company = await _company(owner)
        other = (await owner.post("/api/companies", json={"name": "Other"})).json()["id"]
        await installed.invite_and_accept(owner, other, "known@example.com", "viewer", "known-pw-1")
        known = await _invite(owner, company, "known@example.com", "viewer")
        new = await _invite(owner, company, "new@example.com", "viewer")
    async with installed.client() as holder:
        accept = "/api/invitations/accept"
        r = await holder.post(accept, json={"token": "f8i_" + "x" * 43, "password": "whatever-1"})
        assert (r.status_code, r.json()["error"]) == (404, "INVITATION_NOT_FOUND")
        # An existing account: its own password, nothing else (the answer a login gives).
        r = await holder.post(accept, json={"token": known["token"], "password": "guess-pw-12"})
        login = await holder.post(
            "/api/auth/login", json={"email": "known@example.com", "password": "guess-pw-12"}
        )
        assert r.status_code == login.status_code == 401
        assert r.json() == login.json()
        r = await holder.post(accept, json={"token": new["token"], "password": "short"})
        assert r.status_code == 422
        assert [f["field"] for f in r.json()["fields"]] == ["password"]
        r = await holder.post(
            accept, json={"token": new["token"], "password": "x-pw-12345", "email": "a@b.example"}
        )
        assert r.status_code == 422  # unknown fields are refused
        assert "set-cookie" not in r.headers
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        pending = (await owner.get(f"/api/companies/{company}/invitations")).json()
        emails = sorted(i["email"] for i in pending["data"])
        assert emails == ["known@example.com", "new@example.com"]
        members = (await owner.get(f"/api/companies/{company}/members")).json()["data"]
        assert [m["email"] for m in members] == [OWNER_EMAIL]


async def test_admins_list_and_revoke_pending_invitations(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company = await _company(owner)
        base = f"/api/companies/{company}/invitations"
        await installed.invite_and_accept(owner, company, "v@example.com", "viewer", "viewer-pw-1")
        first = await _invite(owner, company, "p@example.com", "viewer")
        again = await _invite(owner, company, "p@example.com", "editor")  # replaces
        assert again["id"] == first["id"]
        listing = await owner.get(base)
        assert listing.status_code == 200
        (pending,) = listing.json()["data"]
        assert set(pending) == {
            "id",
            "email",
            "role",
            "companyId",
            "invitedBy",
            "createdAt",
            "expiresAt",
        }
        assert (pending["email"], pending["role"]) == ("p@example.com", "editor")
        assert first["token"] not in listing.text
        assert again["token"] not in listing.text
        async with installed.session("v@example.com", "viewer-pw-1") as viewer:
            assert (await viewer.get(base)).status_code == 403
            assert (await viewer.delete(f"{base}/{pending['id']}")).status_code == 403
        assert (await owner.delete(f"{base}/{pending['id']}")).status_code == 204
        assert (await owner.delete(f"{base}/{pending['id']}")).status_code == 404
        assert (await owner.get(base)).json()["total"] == 0
        async with installed.client() as holder:
            for token in (first["token"], again["token"]):
                r = await holder.post(
                    "/api/invitations/accept", json={"token": token, "password": "p-pw-123456"}
                )
                assert r.status_code == 404
        await installed.audit.wait_idle()
        trail = await owner.get("/api/audit", params={"size": 100, "targetType": "invitation"})
        actions = [e["action"] for e in trail.json()["data"]]
        assert sorted(actions) == sorted(
            ["invitation_created"] * 3 + ["invitation_accepted", "invitation_revoked"]
        )
        everything = (await owner.get("/api/audit", params={"size": 100})).text
        for token in (first["token"], again["token"]):
            assert token.removeprefix("f8i_") not in everything
