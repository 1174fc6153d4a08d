"""Install gate, login/logout, sessions, CSRF, API keys — over real HTTP and a real store."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
import trio
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv

from flow8.services.identity import Argon2Params, Passwords


async def test_install_once_then_409(api: ApiEnv) -> None:
    async with api.client() as client:
        assert (await client.get("/api/install")).json() == {"installed": False}
        bad = await client.post("/api/install", json={"company": "", "email": "x", "password": "s"})
        assert bad.status_code == 422
        fields = {f["field"] for f in bad.json()["fields"]}
        assert fields == {"company", "email", "password"}
        body = {"company": "Acme", "email": OWNER_EMAIL, "password": OWNER_PASSWORD}
        r = await client.post("/api/install", json=body)
        assert r.status_code == 201
        assert r.json()["company"]["name"] == "Acme"
        assert r.json()["company"]["role"] == "owner"  # the installer owns the company
        assert "password" not in r.text
        again = await client.post("/api/install", json={**body, "email": "other@example.com"})
        assert again.status_code == 409
        assert again.json()["error"] == "ALREADY_INSTALLED"
        assert (await client.get("/api/install")).json() == {"installed": True}


async def test_login_me_logout_cycle(installed: ApiEnv) -> None:
    async with installed.client() as client:
        r = await client.post(
            "/api/auth/login", json={"email": OWNER_EMAIL.upper(), "password": OWNER_PASSWORD}
        )
        assert r.status_code == 200
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        body = r.json()
        assert body["role"] == "owner"
        assert body["csrfToken"]
        me = await client.get("/api/auth/me")
        assert me.status_code == 200
        assert me.headers["cache-control"] == "no-store"
        assert me.headers["x-frame-options"] == "DENY"
        assert me.json()["user"]["email"] == OWNER_EMAIL
        # Unsafe requests on a cookie session need the CSRF token.
        r = await client.post("/api/auth/logout")
        assert r.status_code == 403
        assert r.json()["error"] == "CSRF_INVALID"
        r = await client.post("/api/auth/logout", headers={"X-CSRF-Token": "wrong"})
        assert r.status_code == 403
        # Logging in again while holding a session cookie works (no CSRF needed to log in)
        # and retires the old session.
        old = client.cookies["flow8_session"]
        again = await client.post(
            "/api/auth/login", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
        )
        assert again.status_code == 200
        body = again.json()
        async with installed.client() as other:
            stale = await other.get("/api/auth/me", headers={"Cookie": f"flow8_session={old}"})
            assert stale.status_code == 401
        r = await client.post("/api/auth/logout", headers={"X-CSRF-Token": body["csrfToken"]})
        assert r.status_code == 204
        assert (await client.get("/api/auth/me")).status_code == 401


async def test_old_session_token_is_dead_after_logout(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as client:
        token = client.cookies["flow8_session"]
        assert (await client.post("/api/auth/logout")).status_code == 204
    async with installed.client() as replay:
        r = await replay.get("/api/auth/me", headers={"Cookie": f"flow8_session={token}"})
        assert r.status_code == 401


# The hash's real cost is what makes the two paths comparable (one verification each).
@pytest.mark.parametrize("argon2_params", [Argon2Params()], ids=["production-argon2"])
async def test_unknown_user_and_wrong_password_answer_the_same(installed: ApiEnv) -> None:
    async with installed.client() as client:
        timings = {}
        bodies = {}
        for label, email, password in (
            ("wrong", OWNER_EMAIL, "not-the-password"),
            ("unknown", "nobody@example.com", "not-the-password"),
        ):
            started = time.perf_counter()
            r = await client.post("/api/auth/login", json={"email": email, "password": password})
            timings[label] = time.perf_counter() - started
            assert r.status_code == 401
            bodies[label] = r.json()
            assert "set-cookie" not in r.headers
    assert bodies["wrong"] == bodies["unknown"]
    # Both paths run one argon2 verification; neither is an order of magnitude faster.
    assert timings["unknown"] > timings["wrong"] / 5


async def test_login_rate_limited_per_account(installed: ApiEnv) -> None:
    # Five failures from one source make it wait (1 s, then doubling) even with the right
    # password; another source is not touched (tests/services/test_auth_ratelimit.py,
    # tests/security/test_09_signin_throttling.py).
    async with installed.client() as client:
        for _ in range(5):
            r = await client.post(
                "/api/auth/login", json={"email": OWNER_EMAIL, "password": "bad-password-x"}
            )
            assert r.status_code == 401
        r = await client.post(
            "/api/auth/login", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
        )
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 0
        # The same limit applies to an unknown account: no way to tell them apart.
        for _ in range(5):
            await client.post(
                "/api/auth/login", json={"email": "ghost@example.com", "password": "bad-pass-x"}
            )
        r = await client.post(
            "/api/auth/login", json={"email": "ghost@example.com", "password": "bad-pass-x"}
        )
        assert r.status_code == 429


@pytest.mark.parametrize("argon2_params", [Argon2Params()], ids=["production-argon2"])
async def test_login_rehashes_when_parameters_change(installed: ApiEnv) -> None:
    users = installed.store.system.collection("users")
    weak = Passwords(Argon2Params(memory_kib=8 * 1024, iterations=1))
    await users.update_one(
        {"email": OWNER_EMAIL}, {"$set": {"password_hash": await weak.hash(OWNER_PASSWORD)}}
    )
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD):
        pass
    doc = await users.find_one({"email": OWNER_EMAIL})
    assert doc is not None
    assert doc["password_hash"].startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_api_key_created_once_listed_without_secret_and_revoked(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.post("/api/auth/api-keys", json={"name": "ci", "scopes": ["api"]})
        assert r.status_code == 201
        created = r.json()
        key = created["key"]
        assert key.startswith("f8k_")
        assert set(created) >= {"id", "key", "prefix", "scopes"}
        listing = await owner.get("/api/auth/api-keys")
        assert listing.status_code == 200
        assert listing.json()["total"] == 1
        assert key not in listing.text
        assert listing.json()["data"][0]["prefix"] == created["prefix"]
        stored = await installed.store.system.collection("api_keys").find_one({})
        assert stored is not None
        assert key not in str(stored)

        async with installed.client(headers={"Authorization": f"Bearer {key}"}) as bot:
            me = await bot.get("/api/auth/me")
            assert me.status_code == 200
            assert me.json()["via"] == "api_key"
            assert me.json()["csrfToken"] is None
            # Bearer callers need no CSRF token: no ambient credential to ride on.
            r = await bot.post("/api/auth/api-keys", json={"name": "k2", "scopes": ["mcp"]})
            assert r.status_code == 201
            mcp_only = r.json()["key"]
            r = await owner.delete(f"/api/auth/api-keys/{created['id']}")
            assert r.status_code == 204
            assert (await bot.get("/api/auth/me")).status_code == 401
        async with installed.client(headers={"Authorization": f"Bearer {mcp_only}"}) as mcp:
            r = await mcp.get("/api/auth/me")
            assert r.status_code == 403  # an mcp-scoped key cannot call the REST API


async def test_bad_bearer_and_bad_cookie_are_401(installed: ApiEnv) -> None:
    async with installed.client() as client:
        for headers in (
            {"Authorization": "Bearer f8k_AAAAAAAA_" + "a" * 43},
            {"Authorization": "Basic dXNlcjpwYXNz"},
            {"Cookie": "flow8_session=forged"},
        ):
            r = await client.get("/api/auth/me", headers=headers)
            assert r.status_code == 401, headers
            assert r.json()["statusCode"] == 401


async def test_json_routes_refuse_other_content_types(installed: ApiEnv) -> None:
    async with installed.client() as client:
        r = await client.post(
            "/api/auth/login",
            content=f"email={OWNER_EMAIL}&password={OWNER_PASSWORD}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 415
        r = await client.post(
            "/api/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400
        assert r.json()["error"] == "INVALID_JSON"
        deep = "[" * 100_000 + "]" * 100_000
        r = await client.post(
            "/api/auth/login", content=deep, headers={"Content-Type": "application/json"}
        )
        assert r.status_code in (400, 422)


async def test_cors_only_for_allowed_origins(installed: ApiEnv) -> None:
    async with installed.client() as client:
        pre = {"Access-Control-Request-Method": "POST"}
        r = await client.options("/api/auth/login", headers={**pre, "Origin": "https://ui.example"})
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == "https://ui.example"
        assert r.headers["access-control-allow-credentials"] == "true"
        r = await client.options("/api/auth/login", headers={**pre, "Origin": "https://evil.x"})
        assert "access-control-allow-origin" not in r.headers
        r = await client.get("/api/install", headers={"Origin": "https://evil.x"})
        assert "access-control-allow-origin" not in r.headers


async def test_switch_company_and_create_company(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        first = (await owner.get("/api/auth/me")).json()["companyId"]
        r = await owner.post("/api/companies", json={"name": "Second Co"})
        assert r.status_code == 201
        second = r.json()["id"]
        assert r.json()["role"] == "owner"
        mine = (await owner.get("/api/companies")).json()
        assert {c["id"] for c in mine["data"]} == {first, second}
        r = await owner.post("/api/auth/company", json={"companyId": second})
        assert r.status_code == 200
        assert r.json()["companyId"] == second
        assert (await owner.get("/api/auth/me")).json()["companyId"] == second
        r = await owner.post("/api/auth/company", json={"companyId": "01NOTMINE"})
        assert r.status_code == 404


async def test_auth_events_are_audited_with_no_secrets(installed: ApiEnv) -> None:
    async with installed.client() as client:
        await client.post("/api/auth/login", json={"email": OWNER_EMAIL, "password": "nope-nope"})
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as client:
        await client.post("/api/auth/api-keys", json={"name": "k", "scopes": ["api"]})
        company = (await client.get("/api/auth/me")).json()["companyId"]
    await installed.audit.wait_idle()
    logs = installed.store.tenant(company).collection("audit_logs")
    actions = [d["action"] for d in await logs.find({}, sort=[("_id", 1)])]
    for expected in ("auth_login_failure", "auth_login_success", "auth_api_key_created"):
        assert expected in actions
    requests = await logs.find({"action": "http_request"})
    assert requests
    assert all(r["status"] and r["method"] and r["correlation_id"] for r in requests)
    everything = str(await logs.find({}))
    assert OWNER_PASSWORD not in everything
    assert "nope-nope" not in everything


@pytest.mark.wall_clock  # a raw socket to a real server
async def test_chunked_body_over_limit_is_413(serve: Any, store: Any, nursery: Any) -> None:
    from http_fixtures import start_app

    from flow8.http import HttpSettings

    app, _, _ = await start_app(nursery, store, HttpSettings(max_body_bytes=1000))
    host, port = (await serve(app)).removeprefix("http://").split(":")
    # A raw socket: a chunked body has no Content-Length, so the limit must hold while
    # reading (and httpx leaves its body generator unfinished when the server answers early).
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        head = (
            b"POST /api/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        with contextlib.suppress(trio.BrokenResourceError):
            await stream.send_all(head)
            for _ in range(20):
                chunk = b"a" * 100
                await stream.send_all(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = b""
        with trio.fail_after(5):
            while b"statusCode" not in answer:
                data = await stream.receive_some(65536)
                if not data:
                    break
                answer += data
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"PAYLOAD_TOO_LARGE" in answer


async def test_an_api_key_is_not_a_session_cookie(installed: ApiEnv) -> None:
    # Credentials are cached by digest: a key the REST API just refused for its scope (and
    # so cached) must not come back as a session when sent as the cookie instead.
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.post("/api/auth/api-keys", json={"name": "m", "scopes": ["mcp"]})
        mcp_only = r.json()["key"]
    async with installed.client(headers={"Authorization": f"Bearer {mcp_only}"}) as mcp:
        assert (await mcp.get("/api/flows")).status_code == 403
    async with installed.client(headers={"Cookie": f"flow8_session={mcp_only}"}) as client:
        r = await client.get("/api/flows")
        assert r.status_code == 401, r.text


async def test_concurrent_logins_do_not_outrun_the_account_limit(installed: ApiEnv) -> None:
    # Attempts racing each other must each count before their (slow) password check, or a
    # burst gets as many guesses as it sends.
    statuses: list[int] = []
    async with installed.client() as client:

        async def guess(i: int) -> None:
            body = {"email": OWNER_EMAIL, "password": f"bad-password-{i}"}
            statuses.append((await client.post("/api/auth/login", json=body)).status_code)

        async with trio.open_nursery() as nursery:
            for i in range(12):
                nursery.start_soon(guess, i)
    assert sorted(set(statuses)) == [401, 429]
    assert statuses.count(401) == 5


async def test_changing_my_password_ends_my_other_sessions(installed: ApiEnv) -> None:
    new = "owner-password-2"
    change = {"currentPassword": OWNER_PASSWORD, "newPassword": new}
    async with (
        installed.session(OWNER_EMAIL, OWNER_PASSWORD) as laptop,
        installed.session(OWNER_EMAIL, OWNER_PASSWORD) as phone,
    ):
        r = await laptop.post("/api/auth/api-keys", json={"name": "k", "scopes": ["api"]})
        async with installed.client(headers={"Authorization": f"Bearer {r.json()['key']}"}) as bot:
            r = await bot.post("/api/auth/password", json=change)
            assert (r.status_code, r.json()["error"]) == (403, "PERMISSION_DENIED")
        r = await laptop.post("/api/auth/password", json=change, headers={"X-CSRF-Token": "x"})
        assert (r.status_code, r.json()["error"]) == (403, "CSRF_INVALID")
        r = await laptop.post(
            "/api/auth/password", json={"currentPassword": "wrong-one-x", "newPassword": new}
        )
        assert r.status_code == 422
        assert [f["field"] for f in r.json()["fields"]] == ["currentPassword"]
        r = await laptop.post(
            "/api/auth/password", json={"currentPassword": OWNER_PASSWORD, "newPassword": "short"}
        )
        assert r.status_code == 422
        assert [f["field"] for f in r.json()["fields"]] == ["newPassword"]
        assert (await phone.get("/api/auth/me")).status_code == 200  # nothing changed yet
        r = await laptop.post("/api/auth/password", json=change)
        assert r.status_code == 204
        assert (await laptop.get("/api/auth/me")).status_code == 200  # this session stays
        assert (await phone.get("/api/auth/me")).status_code == 401  # the others end
    async with installed.client() as client:
        r = await client.post(
            "/api/auth/login", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
        )
        assert r.status_code == 401
        r = await client.post("/api/auth/login", json={"email": OWNER_EMAIL, "password": new})
        assert r.status_code == 200
        company = r.json()["companyId"]
    await installed.audit.wait_idle()
    logs = installed.store.tenant(company).collection("audit_logs")
    changed = await logs.find({"action": "auth_password_changed"})
    assert [e["details"] for e in changed] == [{"otherSessionsEnded": 1}]
    assert new not in str(await logs.find({}))
