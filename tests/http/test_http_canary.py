"""Canary secrets (passwords, API keys, invitation tokens, credential data) never appear in any
response, log line, audit entry, error or WebSocket frame — in plain, base64 or URL-encoded
form."""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv
from trio_websocket import open_websocket_url

MEMBER_PASSWORD = "canary-member-Pw-7731"
NEW_MEMBER_PASSWORD = "canary-member-Pw-8842-new"  # set by the member's password change
CREDENTIAL_SECRET = "canary-cred-Sx81-planted"  # stored on create
ROTATED_SECRET = "canary-rot-Qv27-planted"  # stored by an update


def _forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        quote(secret, safe=""),
        quote_plus(secret),
    ]


def _raw_links(database: Path) -> list[str]:
    """The credential rows as the database file holds them, both columns (ciphertext
    expected)."""
    with sqlite3.connect(database) as db:
        return [f"{d} {b}" for d, b in db.execute('SELECT doc, bulk FROM "c_links"')]


async def _plant_credential_secrets(client: httpx.AsyncClient) -> None:
    """Store a credential, rotate its secret, and provoke every credential error with the
    secrets in the body: bad data, unknown fields, a duplicate name, an unknown id."""
    secret = CREDENTIAL_SECRET
    r = await client.post(
        "/api/credentials",
        json={"name": "vault", "type": "basic", "data": {"username": "svc", "password": secret}},
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    r = await client.put(f"/api/credentials/{cid}", json={"data": {"password": ROTATED_SECRET}})
    assert r.status_code == 200, r.text
    bad_bodies: list[Any] = [
        {"name": "vault", "type": "basic", "data": {"username": "u", "password": secret}},
        {"name": "x", "type": "bearer", "data": {"token": secret, "extra": ROTATED_SECRET}},
        {"name": "x", "type": "apiKey", "data": {"key": secret, "header": f"X {secret}"}},
        {"name": "x", "type": "generic", "data": {f"{secret} ": ROTATED_SECRET}},
        {"name": "x", "type": f"t-{secret}", "data": {"token": secret}},
        {"name": "x", "type": "oauth2", "data": {"clientId": secret, "tokenUrl": secret}},
        {"name": "x", "type": "basic", "data": {"username": "u", "password": 7}, "k": secret},
    ]
    for body in bad_bodies:
        assert (await client.post("/api/credentials", json=body)).status_code in (409, 422)
    for body in (
        {"data": {"password": None, "username": secret}},
        {"data": {secret: ROTATED_SECRET}},
        {"type": "bearer", "data": {"token": secret}},
    ):
        assert (await client.put(f"/api/credentials/{cid}", json=body)).status_code == 422
    r = await client.put("/api/credentials/01UNKNOWN", json={"data": {"password": secret}})
    assert r.status_code == 404
    # (Not in URLs: the request trail records paths, and a server cannot tell a secret a
    # client typed into a URL from an id.)
    assert (await client.get("/api/credentials/01UNKNOWN")).status_code == 404
    assert (await client.get(f"/api/credentials/{cid}")).status_code == 200
    assert (await client.get("/api/credentials")).json()["total"] == 1


async def _join_and_change_password(env: ApiEnv, hooks: Any, invitation: str) -> None:
    """The invited member accepts (a wrong password first), reuses the spent token, and
    changes their password (a wrong current one first): every secret is in a body."""
    async with env.client(event_hooks=hooks) as member:
        accept = {"token": invitation, "password": MEMBER_PASSWORD}
        r = await member.post("/api/invitations/accept", json={**accept, "password": "short"})
        assert r.status_code == 422  # a new account's password has rules
        r = await member.post("/api/invitations/accept", json=accept)
        assert r.status_code == 200, r.text
        member.headers["X-CSRF-Token"] = r.json()["csrfToken"]
        r = await member.post("/api/invitations/accept", json=accept)
        assert r.status_code == 404  # spent
        change = {"currentPassword": NEW_MEMBER_PASSWORD, "newPassword": MEMBER_PASSWORD}
        assert (await member.post("/api/auth/password", json=change)).status_code == 422
        change = {"currentPassword": MEMBER_PASSWORD, "newPassword": NEW_MEMBER_PASSWORD}
        assert (await member.post("/api/auth/password", json=change)).status_code == 204


@pytest.mark.wall_clock  # the app as deployed: WebSocket frames and sqlite's file are searched too
async def test_secrets_never_leak(
    installed: ApiEnv, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    async def record(response: httpx.Response) -> None:
        await response.aread()
        seen.append(json.dumps(dict(response.headers)))
        seen.append(response.text)

    hooks = {"response": [record]}
    async with installed.client(event_hooks=hooks) as client:
        r = await client.post(
            "/api/auth/login", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
        )
        client.headers["X-CSRF-Token"] = r.json()["csrfToken"]
        company = r.json()["companyId"]
        r = await client.post(
            f"/api/companies/{company}/members", json={"email": "m@example.com", "role": "editor"}
        )
        assert r.status_code == 201
        invitation = r.json()["token"]
        seen.pop()  # the one response allowed to show the invitation token: its creation
        seen.pop()
        await _join_and_change_password(installed, hooks, invitation)
        r = await client.post("/api/auth/api-keys", json={"name": "k", "scopes": ["api"]})
        api_key = r.json()["key"]
        seen.pop()  # the one response allowed to show the key: its creation
        seen.pop()
        await _plant_credential_secrets(client)
        # Provoke errors carrying the secrets in every place a client could put them.
        await client.post("/api/companies", json={"name": "x", "password": MEMBER_PASSWORD})
        await client.post("/api/auth/login", json={"email": OWNER_EMAIL, "password": api_key})
        await client.post("/api/auth/login", content=f'{{"password": "{OWNER_PASSWORD}"')
        await client.get(f"/api/plays/{api_key}")
        await client.get("/api/auth/me", headers={"Authorization": f"Bearer {api_key}x"})
        await client.post(
            "/api/flows",
            json={"name": "f", "flowlets": [{"ref": "a", "appId": "nope", "args": {}}]},
        )
        await client.get("/admin/actors", headers={"Authorization": f"Bearer {api_key}"})
        listing = await client.get("/api/auth/api-keys")
        assert listing.status_code == 200
        await installed.audit.wait_idle()
        audit = await client.get("/api/audit", params={"size": 100})
        assert audit.json()["total"] > 5
    async with installed.client(headers={"Authorization": f"Bearer {api_key}"}) as bot:
        seen.append((await bot.get("/api/auth/me")).text)
        ws_url = installed.url.replace("http://", "ws://") + "/ws"
        async with open_websocket_url(
            ws_url, extra_headers=[(b"authorization", f"Bearer {api_key}".encode())]
        ) as ws:
            await ws.send_message(json.dumps({"action": "subscribe", "playId": api_key}))
            seen.append(str(await ws.get_message()))

    system = installed.store.system
    stored_audit: list[Any] = (
        await installed.store.tenant(company).collection("audit_logs").find({})
    )
    stored_audit += await system.collection("system_audit_logs").find({})
    users = await system.collection("users").find({})
    keys = await system.collection("api_keys").find({})
    invitations = await system.collection("invitations").find({})
    haystacks = {
        "responses": "\n".join(seen),
        # The server's loggers (the test's own httpx/websocket client logs its URLs).
        "logs": "\n".join(
            r.getMessage() + str(r.exc_info)
            for r in caplog.records
            if r.name.split(".")[0] in ("flow8", "hypercorn", "quart", "actors")
        ),
        "audit": json.dumps(stored_audit, default=str),
        "users": json.dumps(users, default=str),
        "api_keys": json.dumps(keys, default=str),
        "invitations": json.dumps(invitations, default=str),
        "links (on disk)": "\n".join(_raw_links(tmp_path / "flow8.db")),
    }
    secrets = (OWNER_PASSWORD, MEMBER_PASSWORD, NEW_MEMBER_PASSWORD, api_key, invitation)
    for secret in (*secrets, CREDENTIAL_SECRET, ROTATED_SECRET):
        for form in _forms(secret):
            for where, text in haystacks.items():
                assert form not in text, f"{secret[:6]}… found in {where} as {form[:12]}…"
