"""Health and the admin actor tree over a real Hypercorn server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import httpx
import pytest
import trio

from flow8.http import HttpDeps, HttpSettings, create_app, serve_http

# The admin endpoints are served on real sockets (the `serve` fixture), on the real clock.
pytestmark = pytest.mark.wall_clock

Serve = Callable[[Any], Awaitable[str]]

TOKEN = "s3cret-admin-token-for-tests"
TREE: dict[str, Any] = {
    "name": "root",
    "kind": "supervisor",
    "strategy": "rest_for_one",
    "state": "running",
    "restarts": 0,
    "children": [
        {
            "name": "store",
            "kind": "actor",
            "state": "running",
            "restarts": 2,
            "mailbox": {"depth": 3, "capacity": 64},
            "children": [],
        },
        {"name": "<script>alert(1)</script>", "kind": "actor", "state": "running"},
    ],
}


def _app(token: str | None = TOKEN, ready: bool = True, clock: list[float] | None = None) -> Any:
    now = clock if clock is not None else [1_000_000.0]
    deps = HttpDeps(
        settings=HttpSettings(admin_token=token, admin_cookie_ttl_seconds=60),
        actor_tree=lambda: TREE,
        ready=lambda: ready,
        clock=lambda: now[0],
    )
    return create_app(deps)


async def test_healthz_ok_once_tree_is_up(serve: Serve) -> None:
    url = await serve(_app())
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_healthz_503_while_starting(serve: Serve) -> None:
    url = await serve(_app(ready=False))
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/healthz")
    assert r.status_code == 503
    assert r.json() == {"status": "starting"}


async def test_admin_tree_json_with_bearer(serve: Serve) -> None:
    url = await serve(_app())
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/admin/actors", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    assert r.json() == TREE
    assert r.headers["cache-control"] == "no-store"


async def test_admin_401_without_403_wrong_404_unconfigured(serve: Serve) -> None:
    url = await serve(_app())
    off = await serve(_app(token=None))
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{url}/admin/actors")
        assert r.status_code == 401
        assert r.json()["error"] == "ADMIN_AUTH_REQUIRED"
        r = await client.get(f"{url}/admin/actors", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 403
        assert r.json()["statusCode"] == 403
        assert "nope" not in r.text
        r = await client.get(f"{off}/admin/actors", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 404
        r = await client.get(f"{off}/admin/login")
        assert r.status_code == 404


async def test_browser_logs_in_with_form_and_sees_escaped_html(serve: Serve) -> None:
    url = await serve(_app())
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    async with httpx.AsyncClient(base_url=url, headers=html) as client:
        r = await client.get("/admin/actors")
        assert r.status_code == 401
        assert "<form" in r.text
        assert 'value="/admin/actors"' in r.text
        r = await client.post("/admin/login", data={"token": "wrong", "next": "/admin/actors"})
        assert r.status_code == 403
        assert "set-cookie" not in r.headers
        r = await client.post(
            "/admin/login", data={"token": TOKEN, "next": "https://evil.example/"}
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/admin/actors"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Path=/admin" in cookie
        assert TOKEN not in cookie
        r = await client.get("/admin/actors")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert "rest_for_one" in r.text
        assert "depth=3" in r.text
        assert "<script>alert(1)" not in r.text
        assert "&lt;script&gt;" in r.text
        assert "'unsafe-inline'" in r.headers["content-security-policy"]
        r = await client.post("/admin/logout")
        assert r.status_code == 303
        r = await client.get("/admin/actors")
        assert r.status_code == 401


async def test_admin_cookie_expires_and_is_bound_to_token(serve: Serve) -> None:
    clock = [1_000_000.0]
    url = await serve(_app(clock=clock))
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post("/admin/login", data={"token": TOKEN})
        assert r.status_code == 303
        assert (await client.get("/admin/actors")).status_code == 200
        clock[0] += 61
        assert (await client.get("/admin/actors")).status_code == 401
        # A cookie minted by another instance (another secret) is worthless here.
        other = await serve(_app(clock=clock))
        r = await client.post(f"{other}/admin/login", data={"token": TOKEN})
        forged = r.cookies.get("flow8_admin")
        assert forged
        client.cookies.clear()
        r = await client.get("/admin/actors", headers={"Cookie": f"flow8_admin={forged}"})
        assert r.status_code == 401


async def test_cross_origin_admin_login_refused(serve: Serve) -> None:
    url = await serve(_app())
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post(
            "/admin/login", data={"token": TOKEN}, headers={"Origin": "https://evil.example"}
        )
    assert r.status_code == 403
    assert "set-cookie" not in r.headers


async def test_body_over_limit_is_413_before_parsing(serve: Serve) -> None:
    deps = HttpDeps(settings=HttpSettings(admin_token=TOKEN, max_body_bytes=1000))
    url = await serve(create_app(deps))
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post("/admin/login", content=b"token=" + b"a" * 2000)
    assert r.status_code == 413
    assert r.json()["error"] == "PAYLOAD_TOO_LARGE"


async def test_unknown_route_is_json_404(serve: Serve) -> None:
    url = await serve(_app())
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/nope")
    assert r.status_code == 404
    assert r.json() == {"error": "NOT_FOUND", "message": r.json()["message"], "statusCode": 404}


async def test_serve_http_returns_on_shutdown_event() -> None:
    shutdown = trio.Event()
    app = _app()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                partial(
                    serve_http, app, "127.0.0.1", 0, shutdown_event=shutdown, graceful_timeout=1
                )
            )
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"{binds[0]}/healthz")).status_code == 200
            shutdown.set()
    assert app.closing.is_set()


async def test_admin_form_sign_in_is_rate_limited(serve: Serve) -> None:
    url = await serve(_app())
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(10):
            r = await client.post("/admin/login", data={"token": "guess"})
            assert r.status_code == 403
        r = await client.post("/admin/login", data={"token": TOKEN})
        assert r.status_code == 429
        assert "set-cookie" not in r.headers


async def test_admin_bearer_guesses_share_the_sign_in_limit(serve: Serve) -> None:
    url = await serve(_app())
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(10):
            r = await client.get("/admin/actors", headers={"Authorization": "Bearer guess"})
            assert r.status_code == 403
        r = await client.get("/admin/actors", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 0
        r = await client.post("/admin/login", data={"token": TOKEN})
        assert r.status_code == 429
