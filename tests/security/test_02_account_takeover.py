"""Attack 2: one company takes over the account another company's member signs in with.

An admin of company A could add a member by email *with a password A chose*: flow8 created
the account with that password. A then removed the member again. When company B later added
the same email, the account existed already, so B's password was ignored: the real person
was told to use it, could not, and A signed in as B's new member with the password A had
planted, reaching everything B gave them.

Now no admin ever chooses or learns a password. Adding a member creates an invitation whose
one-time token (shown once to the inviting admin, stored only hashed) the person uses to join:
with the password of the account the email has, or, when it has none, by choosing the new
account's password. An account exists only once its holder chose its password; A's tokens
(revoked, or still pending) open nothing of B's; the answer to an invitation does not tell
whether the email has an account.
"""

from __future__ import annotations

from typing import Any

import httpx
from attack_kit import Target

PERSON = "x@y.example"
PERSON_PASSWORD = "the-persons-own-password-1"
A_CHOSEN = ["a-chosen-password-1", "welcome-to-a-1234", "x@y.example-123"]
# The attacker works from the test's own address; the real person from another one, as they
# would (so the attacker's guesses, throttled per account and source, never slow them).
ATTACKER = "127.0.0.1"
PERSON_SOURCE = "127.0.0.2"
REFUSED = {401, 429}  # wrong password, or too many wrong ones from this source


def _members(target: Target, company: str, key_client: httpx.Client) -> list[str]:
    r = key_client.get(f"/api/companies/{company}/members?size=100")
    assert r.status_code == 200, r.text
    return sorted(m["email"] for m in r.json()["data"])


def _invite(client: httpx.Client, company: str, email: str, role: str) -> dict[str, Any]:
    r = client.post(f"/api/companies/{company}/members", json={"email": email, "role": role})
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _client(target: Target, source: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=target.base, timeout=30, transport=transport)


def _accept(target: Target, token: str, password: str, source: str = ATTACKER) -> httpx.Response:
    with _client(target, source) as holder:
        return holder.post("/api/invitations/accept", json={"token": token, "password": password})


def _login(target: Target, email: str, password: str, source: str = ATTACKER) -> httpx.Response:
    with _client(target, source) as client:
        return client.post("/api/auth/login", json={"email": email, "password": password})


def test_a_company_cannot_plant_the_account_another_companys_member_uses(target: Target) -> None:
    a, b = target.attacker, target.victim
    with target.bystander():
        # The old attack: A creates the account with a password A chooses. Refused.
        r = a.client.post(
            f"/api/companies/{a.company_id}/members",
            json={"email": PERSON, "role": "viewer", "password": A_CHOSEN[0]},
        )
        assert r.status_code == 422, r.text
        assert [f["field"] for f in r.json()["fields"]] == ["password"]
        # A invites the email and "removes" it again (revokes), then invites it once more
        # and keeps that token pending; no account exists for the email.
        first = _invite(a.client, a.company_id, PERSON, "viewer")
        r = a.client.delete(f"/api/companies/{a.company_id}/invitations/{first['id']}")
        assert r.status_code == 204
        pending = _invite(a.client, a.company_id, PERSON, "viewer")
        for password in A_CHOSEN:
            assert _login(target, PERSON, password).status_code == 401
        # B invites the same email; the real person accepts with their own password.
        invited = _invite(b.client, b.company_id, PERSON, "editor")
        r = _accept(target, invited["token"], PERSON_PASSWORD, PERSON_SOURCE)
        assert r.status_code == 200, r.text
        assert (r.json()["companyId"], r.json()["role"]) == (b.company_id, "editor")
        # A tries everything it holds: its tokens with any password, and signing in.
        assert _accept(target, first["token"], A_CHOSEN[0]).status_code == 404
        for password in A_CHOSEN:
            assert _accept(target, pending["token"], password).status_code in REFUSED
            assert _login(target, PERSON, password).status_code in REFUSED
        # And B's company stays out of reach of A's key.
        r = a.client.get(f"/api/companies/{b.company_id}/members")
        assert r.status_code == 404
    # Nothing lost or half-written: the person signs in with their own password and is in
    # B only; A's members are unchanged and its invitation is still merely pending.
    r = _login(target, PERSON, PERSON_PASSWORD, PERSON_SOURCE)
    assert r.status_code == 200, r.text
    assert r.json()["companyId"] == b.company_id
    with httpx.Client(base_url=target.base, timeout=30, cookies=r.cookies) as person:
        companies = person.get("/api/companies").json()["data"]
        assert [(c["id"], c["role"]) for c in companies] == [(b.company_id, "editor")]
    assert PERSON in _members(target, b.company_id, b.client)
    assert PERSON not in _members(target, a.company_id, a.client)
    r = a.client.get(f"/api/companies/{a.company_id}/invitations")
    assert [(i["id"], i["email"]) for i in r.json()["data"]] == [(pending["id"], PERSON)]
    assert b.client.get(f"/api/companies/{b.company_id}/invitations").json()["total"] == 0


def test_accepting_its_own_invitation_gives_a_company_nothing_elsewhere(target: Target) -> None:
    """While tokens are handed on by admins, A can accept its own invitation for an address
    nobody claimed yet. That makes an account A holds, in A only: B's invitation of the same
    email still needs B's token, and A's spent token and A's account reach nothing of B's."""
    a, b = target.attacker, target.victim
    with target.bystander():
        own = _invite(a.client, a.company_id, PERSON, "viewer")
        r = _accept(target, own["token"], A_CHOSEN[0])
        assert r.status_code == 200, r.text
        user_id = r.json()["user"]["id"]
        r = a.client.delete(f"/api/companies/{a.company_id}/members/{user_id}")
        assert r.status_code == 204
        invited = _invite(b.client, b.company_id, PERSON, "editor")
        assert _accept(target, own["token"], A_CHOSEN[0]).status_code == 404
        r = _login(target, PERSON, A_CHOSEN[0])
        assert r.status_code == 200
        with httpx.Client(base_url=target.base, timeout=30, cookies=r.cookies) as planted:
            planted.headers["X-CSRF-Token"] = r.json()["csrfToken"]
            assert r.json()["companyId"] is None
            assert planted.get("/api/companies").json()["data"] == []
            r = planted.post("/api/auth/company", json={"companyId": b.company_id})
            assert r.status_code == 404
            assert planted.get(f"/api/companies/{b.company_id}").status_code == 404
    assert PERSON not in _members(target, b.company_id, b.client)
    pending = b.client.get(f"/api/companies/{b.company_id}/invitations").json()["data"]
    assert [(i["id"], i["role"]) for i in pending] == [(invited["id"], "editor")]


def test_an_invitation_does_not_tell_whether_an_email_has_an_account(target: Target) -> None:
    a, b = target.attacker, target.victim
    # An account A has no business knowing of: B's member.
    invited = _invite(b.client, b.company_id, PERSON, "viewer")
    assert _accept(target, invited["token"], PERSON_PASSWORD, PERSON_SOURCE).status_code == 200
    answers = []
    with target.bystander():
        for email in (PERSON, "nobody@y.example", "X@Y.example"):
            r = a.client.post(
                f"/api/companies/{a.company_id}/members", json={"email": email, "role": "viewer"}
            )
            answers.append((r.status_code, dict(r.headers), r.json()))
    varying = {"id", "email", "token", "createdAt", "expiresAt"}
    headers = {"content-type", "cache-control", "x-frame-options"}
    (status, first_headers, first), *rest = answers
    for other_status, other_headers, other in rest:
        assert other_status == status == 201
        assert {h: first_headers.get(h) for h in headers} == {
            h: other_headers.get(h) for h in headers
        }
        assert set(other) == set(first)
        assert {k: v for k, v in other.items() if k not in varying} == {
            k: v for k, v in first.items() if k not in varying
        }
        assert len(other["token"]) == len(first["token"])
    # The third replaced the first (same email, normalized): one pending invitation each.
    pending = a.client.get(f"/api/companies/{a.company_id}/invitations").json()["data"]
    assert sorted(i["email"] for i in pending) == ["nobody@y.example", PERSON]
    # Nothing was created for the new address, and the person's account is untouched.
    assert _login(target, "nobody@y.example", PERSON_PASSWORD).status_code == 401
    assert _login(target, PERSON, PERSON_PASSWORD, PERSON_SOURCE).status_code == 200
