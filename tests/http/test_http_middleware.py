"""What every answer carries, whatever route produced it: security headers, a correlation id,
CORS for allowed origins only, and one audit entry per request."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import httpx
import trio
from http_fixtures import ApiEnv, start_app

from flow8.http import HttpSettings

_EVERY_ANSWER = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
}


async def test_api_answers_success_and_error_carry_the_security_headers(
    installed: ApiEnv,
) -> None:
    async with installed.client() as client:
        for r in (
            await client.get("/api/install"),  # 200 from a route
            await client.get("/api/auth/me"),  # 401 from the auth check
            await client.get("/api/no-such-route"),  # 404 from routing
        ):
            for name, value in _EVERY_ANSWER.items():
                assert r.headers[name] == value, (r.url, name)
            assert r.headers["cache-control"] == "no-store"
            assert "strict-transport-security" not in r.headers
            # each header once: defaults never duplicate what a route or error set
            assert len(r.headers.get_list("content-security-policy")) == 1
        health = await client.get("/healthz")
        assert health.headers["x-frame-options"] == "DENY"
        assert "cache-control" not in health.headers  # only API answers are no-store


async def test_hsts_only_when_served_over_tls(
    serve: Any, store: Any, nursery: trio.Nursery
) -> None:
    app, _, _ = await start_app(nursery, store, HttpSettings(secure_cookies=True))
    url = await serve(app)
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/api/install")
    assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    # the server does not name its software to whoever asks
    assert "server" not in r.headers


async def test_correlation_id_is_echoed_or_made_and_lands_in_the_audit_trail(
    installed: ApiEnv,
) -> None:
    async with installed.client() as client:
        made = await client.get("/api/install")
        assert re.fullmatch(r"[0-9a-f]{16}", made.headers["x-request-id"])
        other = await client.get("/api/install")
        assert other.headers["x-request-id"] != made.headers["x-request-id"]
        sent = await client.get("/api/install", headers={"X-Request-Id": "trace-42.a:b"})
        assert sent.headers["x-request-id"] == "trace-42.a:b"
        bad = await client.get("/api/install", headers={"X-Request-Id": "no spaces <allowed>"})
        assert re.fullmatch(r"[0-9a-f]{16}", bad.headers["x-request-id"])
    async with installed.session("owner@example.com", "owner-password-1") as owner:
        r = await owner.get("/api/auth/me", headers={"X-Request-Id": "me-call-1"})
        company = r.json()["companyId"]
        user = r.json()["user"]["id"]
    await installed.audit.wait_idle()
    logs = installed.store.tenant(company).collection("audit_logs")
    entry = await logs.find_one({"correlation_id": "me-call-1"})
    assert entry is not None
    assert entry["action"] == "http_request"
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/api/auth/me", 200)
    assert entry["user_id"] == user
    assert entry["user_email"] == "owner@example.com"
    assert entry["duration_ms"] >= 0
    assert entry["ip"] == "127.0.0.1"
    # anonymous requests go to the system trail, probes to none
    system = installed.store.system.collection("system_audit_logs")
    assert await system.find_one({"correlation_id": "trace-42.a:b", "path": "/api/install"})
    assert await system.count({"path": "/healthz"}) == 0


async def test_cors_headers_on_answers_to_allowed_origins_only(installed: ApiEnv) -> None:
    async with installed.client() as client:
        ok = await client.get("/api/install", headers={"Origin": "https://ui.example"})
        assert ok.headers["access-control-allow-origin"] == "https://ui.example"
        assert ok.headers["access-control-allow-credentials"] == "true"
        assert ok.headers["access-control-expose-headers"] == "X-Request-Id, Retry-After"
        assert ok.headers["vary"] == "Origin"
        foreign = await client.get("/api/install", headers={"Origin": "https://evil.x"})
        assert "access-control-allow-origin" not in foreign.headers
        assert "access-control-expose-headers" not in foreign.headers


async def test_requests_made_with_an_api_key_record_which_key(installed: ApiEnv) -> None:
    async with installed.session("owner@example.com", "owner-password-1") as owner:
        created = await owner.post("/api/auth/api-keys", json={"name": "ci", "scopes": ["api"]})
        key, key_id = created.json()["key"], created.json()["id"]
        company = (await owner.get("/api/auth/me")).json()["companyId"]
    async with installed.client(headers={"Authorization": f"Bearer {key}"}) as client:
        r = await client.get("/api/auth/me", headers={"X-Request-Id": "by-key-1"})
        assert r.status_code == 200
    await installed.audit.wait_idle()
    logs = installed.store.tenant(company).collection("audit_logs")
    entry = await logs.find_one({"correlation_id": "by-key-1"})
    assert entry is not None
    assert entry["details"] == {"keyId": key_id}
    assert key not in str(await logs.find({}))  # the key itself never


async def _audited(store: Any, audit: Any, correlation_id: str) -> dict[str, Any]:
    await audit.wait_idle()
    entry = await store.system.collection("system_audit_logs").find_one(
        {"correlation_id": correlation_id}
    )
    assert entry is not None, correlation_id
    return dict(entry)


async def test_answers_given_before_routing_carry_the_headers_and_are_audited(
    serve: Any, store: Any, nursery: trio.Nursery
) -> None:
    settings = HttpSettings(max_body_bytes=1000, allowed_origins=("https://ui.example",))
    app, _, audit = await start_app(nursery, store, settings)
    url = await serve(app)
    async with httpx.AsyncClient(base_url=url) as client:
        big = await client.post(
            "/api/auth/login",
            content=b"{" + b" " * 2000 + b"}",
            headers={"Content-Type": "application/json", "X-Request-Id": "big-1"},
        )
        preflight = await client.options(
            "/api/flows",
            headers={
                "Origin": "https://ui.example",
                "Access-Control-Request-Method": "POST",
                "X-Request-Id": "pre-1",
            },
        )
    assert big.status_code == 413
    assert big.json() == {
        "error": "PAYLOAD_TOO_LARGE",
        "message": "request body exceeds 1000 bytes",
        "statusCode": 413,
    }
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://ui.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    for r, correlation_id in ((big, "big-1"), (preflight, "pre-1")):
        for name, value in _EVERY_ANSWER.items():
            assert r.headers[name] == value, (r.request.method, name)
        assert r.headers["x-request-id"] == correlation_id
    assert (await _audited(store, audit, "big-1"))["status"] == 413
    assert (await _audited(store, audit, "pre-1"))["method"] == "OPTIONS"


async def test_an_unexpected_error_is_a_bare_500_with_the_headers_and_an_audit_entry(
    serve: Any, store: Any, nursery: trio.Nursery
) -> None:
    app, _, audit = await start_app(nursery, store, HttpSettings())

    async def broken() -> None:
        raise RuntimeError("detail only the log may see")

    app.add_url_rule("/api/broken", view_func=broken, methods=["GET"])
    url = await serve(app)
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/api/broken", headers={"X-Request-Id": "broken-1"})
    assert r.status_code == 500
    assert r.json()["error"] == "INTERNAL_ERROR"
    assert "detail" not in r.text
    for name, value in _EVERY_ANSWER.items():
        assert r.headers[name] == value
    assert r.headers["x-request-id"] == "broken-1"
    entry = await _audited(store, audit, "broken-1")
    assert (entry["path"], entry["status"]) == ("/api/broken", 500)


async def test_a_request_the_client_gives_up_on_is_audited_as_499(
    serve: Any, store: Any, nursery: trio.Nursery
) -> None:
    app, _, audit = await start_app(nursery, store, HttpSettings())
    entered = trio.Event()

    async def slow() -> None:
        entered.set()
        await trio.sleep_forever()

    app.add_url_rule("/api/slow", view_func=slow, methods=["GET"])
    url = await serve(app)
    async with httpx.AsyncClient(base_url=url) as client, trio.open_nursery() as inner:
        inner.start_soon(partial(client.get, "/api/slow", headers={"X-Request-Id": "gone-1"}))
        await entered.wait()
        inner.cancel_scope.cancel()  # the client hangs up mid-request
    with trio.fail_after(5):
        while True:
            await audit.wait_idle()
            found = await store.system.collection("system_audit_logs").find_one(
                {"correlation_id": "gone-1"}
            )
            if found is not None:
                break
            await trio.sleep(0.05)
    assert (found["path"], found["status"]) == ("/api/slow", 499)
