"""The /ws endpoint: authentication, Origin, subscriptions scoped to the company, shutdown."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv, start_app
from trio_websocket import ConnectionClosed, open_websocket_url

from flow8.events import Event
from flow8.http import HttpSettings, serve_http
from flow8.store import Store
from flow8.store._store import StoreImpl

# WebSockets need a real socket: the app as deployed (sqlite), on the real clock (see conftest).
pytestmark = pytest.mark.wall_clock

FLOW = {"name": "f", "flowlets": [{"ref": "a", "appId": "noop", "args": {"value": 1}}]}


async def _key(env: ApiEnv) -> str:
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.post("/api/auth/api-keys", json={"name": "ws", "scopes": ["api"]})
        key: str = r.json()["key"]
        return key


def _ws_url(env: ApiEnv) -> str:
    return env.url.replace("http://", "ws://") + "/ws"


async def _next(ws: Any) -> dict[str, Any]:
    with trio.fail_after(5):
        message: dict[str, Any] = json.loads(await ws.get_message())
        return message


async def _refused(env: ApiEnv, headers: list[tuple[bytes, bytes]]) -> tuple[int, str]:
    async with open_websocket_url(_ws_url(env), extra_headers=headers) as ws:
        frame = await _next(ws)
        with pytest.raises(ConnectionClosed) as closed:
            with trio.fail_after(5):
                await ws.get_message()
        await _close_socket(ws)
        reason = closed.value.reason
        assert reason is not None
        return reason.code, frame["error"]


async def _drain(ws: Any) -> None:
    while True:
        await ws.get_message()


async def _close_socket(ws: Any) -> None:
    # After a server-initiated close, trio-websocket's client never closes its own TCP
    # stream (aclose() returns early once a close reason is set), leaking the socket.
    await ws._stream.aclose()


async def test_unauthenticated_and_foreign_origin_are_refused(installed: ApiEnv) -> None:
    key = await _key(installed)
    assert await _refused(installed, []) == (4401, "UNAUTHENTICATED")
    bearer = (b"authorization", f"Bearer {key}".encode())
    bad = [bearer, (b"origin", b"https://evil.example")]
    assert await _refused(installed, bad) == (4403, "ORIGIN_REFUSED")
    forged = [(b"authorization", b"Bearer f8k_AAAAAAAA_" + b"a" * 43)]
    assert (await _refused(installed, forged))[0] == 4401
    allowed = [bearer, (b"origin", b"https://ui.example")]
    async with open_websocket_url(_ws_url(installed), extra_headers=allowed) as ws:
        await ws.send_message(json.dumps({"action": "subscribe", "company": True}))
        assert (await _next(ws))["type"] == "subscribed"
    await installed.audit.wait_idle()
    company = (await installed.store.system.collection("companies").find_one({}) or {})["_id"]
    logs = installed.store.tenant(company).collection("audit_logs")
    assert await logs.count({"action": "ws_connected"}) == 1


async def test_bad_frames_get_error_frames_and_foreign_plays_are_not_found(
    installed: ApiEnv,
) -> None:
    key = await _key(installed)
    headers = [(b"authorization", f"Bearer {key}".encode())]
    async with open_websocket_url(_ws_url(installed), extra_headers=headers) as ws:
        await ws.send_message("not json")
        assert (await _next(ws))["error"] == "INVALID_JSON"
        await ws.send_message(json.dumps({"action": "dance"}))
        assert (await _next(ws))["error"] == "UNKNOWN_ACTION"
        await ws.send_message('{"action": "subscribe", "flowId": "a\\udfff"}')  # lone surrogate
        refused = await _next(ws)
        assert refused["error"] == "VALIDATION_FAILED"
        assert refused["message"].startswith("flowId: text is not valid Unicode")
        await ws.send_message(json.dumps({"action": "subscribe", "playId": "01OTHERCOMPANY"}))
        assert (await _next(ws))["error"] == "PLAY_NOT_FOUND"
        await ws.send_message(json.dumps({"action": "unsubscribe", "subscription": "s9"}))
        assert (await _next(ws))["error"] == "SUBSCRIPTION_NOT_FOUND"


async def test_company_subscription_sees_only_own_company(installed: ApiEnv) -> None:
    key = await _key(installed)
    headers = [(b"authorization", f"Bearer {key}".encode())]
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        other = (await owner.post("/api/companies", json={"name": "Other"})).json()["id"]
        await owner.post("/api/auth/company", json={"companyId": other})
        other_flow = (await owner.post("/api/flows", json=FLOW)).json()["id"]
        async with open_websocket_url(_ws_url(installed), extra_headers=headers) as ws:
            await ws.send_message(json.dumps({"action": "subscribe", "company": True}))
            assert (await _next(ws))["type"] == "subscribed"
            r = await owner.post(f"/api/flows/{other_flow}/run?wait=5", json={})
            assert r.json()["state"] == "DONE"
            with trio.move_on_after(0.5):
                leaked = await ws.get_message()
                pytest.fail(f"event of another company delivered: {leaked!r}")


async def test_shutdown_closes_open_sockets_promptly(store: Store, nursery: trio.Nursery) -> None:
    app, identity, _ = await start_app(nursery, store, HttpSettings())
    await identity.install("Acme", OWNER_EMAIL, OWNER_PASSWORD)
    result = await identity.login(OWNER_EMAIL, OWNER_PASSWORD, ip="t", user_agent="t")
    key = (await identity.create_api_key(result.principal, "k", ["api"])).key
    shutdown = trio.Event()
    done = trio.Event()

    async def run_server(task_status: trio.TaskStatus[list[str]]) -> None:
        # graceful_timeout is long on purpose: an open socket must not hold shutdown for it.
        await serve_http(
            app,
            "127.0.0.1",
            0,
            shutdown_event=shutdown,
            graceful_timeout=30,
            task_status=task_status,
        )
        done.set()

    binds = await nursery.start(run_server)
    url = binds[0].replace("http://", "ws://") + "/ws"
    headers = [(b"authorization", f"Bearer {key}".encode())]
    async with open_websocket_url(url, extra_headers=headers) as ws:
        await ws.send_message(json.dumps({"action": "subscribe", "company": True}))
        assert (await _next(ws))["type"] == "subscribed"
        started = trio.current_time()
        shutdown.set()
        with pytest.raises(ConnectionClosed) as closed:
            with trio.fail_after(5):
                await ws.get_message()
        assert closed.value.reason is not None
        assert closed.value.reason.code == 1001
        await _close_socket(ws)
        with trio.fail_after(5):
            await done.wait()
        assert trio.current_time() - started < 5


async def test_client_that_stops_reading_is_disconnected(
    store: Store, nursery: trio.Nursery, serve: Any
) -> None:
    app, identity, _ = await start_app(nursery, store, HttpSettings(ws_queue_size=4))
    await identity.install("Acme", OWNER_EMAIL, OWNER_PASSWORD)
    result = await identity.login(OWNER_EMAIL, OWNER_PASSWORD, ip="t", user_agent="t")
    key = (await identity.create_api_key(result.principal, "k", ["api"])).key
    company = result.principal.company_id
    assert company is not None
    url = (await serve(app)).replace("http://", "ws://") + "/ws"
    assert app.deps.events is not None
    bus = app.deps.events.bus
    headers = [(b"authorization", f"Bearer {key}".encode())]
    async with open_websocket_url(
        url, extra_headers=headers, message_queue_size=1, max_message_size=2**24
    ) as ws:
        await ws.send_message(json.dumps({"action": "subscribe", "company": True}))
        assert (await _next(ws))["type"] == "subscribed"
        # Stop reading; the server keeps publishing large events until buffers fill up.
        with trio.fail_after(10):
            while bus.subscriber_count:
                bus.publish(Event("play:started", company, None, "p", {"blob": "x" * 200_000}))
                await trio.sleep(0.001)
        with pytest.raises(ConnectionClosed) as closed, trio.fail_after(10):
            await _drain(ws)
        await _close_socket(ws)
    assert closed.value.reason is not None
    assert closed.value.reason.code == 1013


async def test_a_socket_closes_once_its_key_is_revoked(
    store: Store, nursery: trio.Nursery, serve: Any
) -> None:
    app, identity, _ = await start_app(nursery, store, HttpSettings(ws_recheck_seconds=0.1))
    await identity.install("Acme", OWNER_EMAIL, OWNER_PASSWORD)
    result = await identity.login(OWNER_EMAIL, OWNER_PASSWORD, ip="t", user_agent="t")
    created = await identity.create_api_key(result.principal, "k", ["api"])
    url = (await serve(app)).replace("http://", "ws://") + "/ws"
    headers = [(b"authorization", f"Bearer {created.key}".encode())]
    async with open_websocket_url(url, extra_headers=headers) as ws:
        await ws.send_message(json.dumps({"action": "subscribe", "company": True}))
        assert (await _next(ws))["type"] == "subscribed"
        await trio.sleep(0.5)  # several re-checks pass while the key is valid
        await ws.send_message(json.dumps({"action": "subscribe", "company": True}))
        assert (await _next(ws))["type"] == "subscribed"
        await identity.delete_api_key(result.principal, created.api_key.id)
        with pytest.raises(ConnectionClosed) as closed, trio.fail_after(5):
            await _drain(ws)
        await _close_socket(ws)
    assert closed.value.reason is not None
    assert closed.value.reason.code == 4401


async def test_a_store_outage_is_not_reported_as_a_missing_play(installed: ApiEnv) -> None:
    """Subscribing while the database is gone answers that the server could not check
    (retry later), never that the play or flow does not exist."""
    key = await _key(installed)
    headers = [(b"authorization", f"Bearer {key}".encode())]
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        flow = (await owner.post("/api/flows", json=FLOW)).json()["id"]
        play = (await owner.post(f"/api/flows/{flow}/run?wait=5", json={})).json()["id"]
    async with open_websocket_url(_ws_url(installed), extra_headers=headers) as ws:
        await ws.send_message(json.dumps({"action": "subscribe", "playId": play}))
        assert (await _next(ws))["type"] == "subscribed"
        assert isinstance(installed.store, StoreImpl)
        await installed.store.backend.aclose()  # the database goes away under the server
        # (a flow the server has cached is still found; one it must look up is not)
        for target in ({"playId": play}, {"flowId": "01UNCACHEDFLOW"}):
            await ws.send_message(json.dumps({"action": "subscribe", **target}))
            frame = await _next(ws)
            assert frame.get("error") == "SERVICE_UNAVAILABLE", frame
            assert "retry" in frame["message"]
