"""The docs/api.md walkthrough, step by step: install, log in, create an API key, create a
flow, watch its events on the WebSocket, run it, read the play and its layers."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from http_fixtures import ApiEnv
from trio_websocket import open_websocket_url

FLOW = {
    "name": "hello",
    "flowlets": [
        {"ref": "greet", "appId": "template", "args": {"text": "Hello {{ $prev.args.name }}!"}}
    ],
}


async def _receive_until(ws: Any, kind: str, seen: list[dict[str, Any]]) -> dict[str, Any]:
    with trio.fail_after(10):
        while True:
            message: dict[str, Any] = json.loads(await ws.get_message())
            seen.append(message)
            if message["type"] == kind:
                return message


@pytest.mark.wall_clock  # its WebSocket needs the app on a real socket
async def test_readme_walkthrough(api: ApiEnv) -> None:
    async with api.client() as client:
        # 1. install (first company and owner)
        r = await client.post(
            "/api/install",
            json={"company": "Acme", "email": "you@example.com", "password": "a-long-password"},
        )
        assert r.status_code == 201
        # 2. log in; the cookie jar keeps the session, the CSRF token goes in a header
        r = await client.post(
            "/api/auth/login", json={"email": "you@example.com", "password": "a-long-password"}
        )
        assert r.status_code == 200
        csrf = r.json()["csrfToken"]
        # 3. an API key for scripts
        r = await client.post(
            "/api/auth/api-keys",
            json={"name": "cli", "scopes": ["api"]},
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status_code == 201
        key = r.json()["key"]
    bearer = {"Authorization": f"Bearer {key}"}
    async with api.client(headers=bearer) as client:
        # 4. create the flow
        r = await client.post("/api/flows", json=FLOW)
        assert r.status_code == 201, r.text
        flow_id = r.json()["id"]
        assert r.json()["version"] == 1
        # 5. watch the flow's events
        ws_url = api.url.replace("http://", "ws://") + "/ws"
        headers = [(b"authorization", f"Bearer {key}".encode())]
        async with open_websocket_url(ws_url, extra_headers=headers) as ws:
            await ws.send_message(json.dumps({"action": "subscribe", "flowId": flow_id}))
            seen: list[dict[str, Any]] = []
            await _receive_until(ws, "subscribed", seen)
            # 6. run it and wait for the answer
            r = await client.post(f"/api/flows/{flow_id}/run?wait=10", json={"name": "Ada"})
            assert r.status_code == 200, r.text
            play = r.json()
            assert play["state"] == "DONE"
            assert play["out"] == {"text": "Hello Ada!"}
            assert play["flowId"] == flow_id
            assert play["input"] == {"name": "Ada"}
            done = await _receive_until(ws, "play:completed", seen)
            assert done["playId"] == play["id"]
            kinds = [m["type"] for m in seen]
            assert "play:started" in kinds
            assert "play:layer:completed" in kinds
        # 7. the play and its layers
        r = await client.get(f"/api/plays/{play['id']}")
        assert r.json()["state"] == "DONE"
        layers = (await client.get(f"/api/plays/{play['id']}/layers")).json()
        assert [la["ref"] for la in layers["data"]] == ["greet"]
        assert layers["data"][0]["output"] == {"text": "Hello Ada!"}
        listing = (await client.get("/api/plays", params={"flowId": flow_id})).json()
        assert listing["total"] == 1


async def test_run_is_idempotent_and_async_without_wait(api: ApiEnv) -> None:
    async with api.client() as client:
        await client.post(
            "/api/install",
            json={"company": "Acme", "email": "you@example.com", "password": "a-long-password"},
        )
        r = await client.post(
            "/api/auth/login", json={"email": "you@example.com", "password": "a-long-password"}
        )
        client.headers["X-CSRF-Token"] = r.json()["csrfToken"]
        flow_id = (await client.post("/api/flows", json=FLOW)).json()["id"]
        first = await client.post(
            f"/api/flows/{flow_id}/run", json={"name": "A"}, headers={"Idempotency-Key": "k1"}
        )
        assert first.status_code in (200, 202)
        again = await client.post(
            f"/api/flows/{flow_id}/run", json={"name": "A"}, headers={"Idempotency-Key": "k1"}
        )
        assert again.json()["id"] == first.json()["id"]
        reused = await client.post(  # the same key for another request is refused
            f"/api/flows/{flow_id}/run", json={"name": "B"}, headers={"Idempotency-Key": "k1"}
        )
        assert reused.status_code == 422
        assert reused.json()["error"] == "IDEMPOTENCY_KEY_REUSED"
        r = await client.post(f"/api/flows/{flow_id}/run")  # no body: input null
        assert r.status_code in (200, 202)
        assert r.json()["input"] is None
        missing = await client.post("/api/flows/01NOPE/run", json={})
        assert missing.status_code == 404
        assert missing.json()["error"] == "FLOW_NOT_FOUND"
