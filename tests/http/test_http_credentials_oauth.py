"""OAuth2 routes on the app as deployed (Hypercorn, sqlite, a real socket) against authlib's
authorization server on loopback: authorize answers the provider URL, the callback completes
it for the user who started it and redirects to the UI, a wrong state is refused, the
credential shows its connection (and a refused refresh as needs_reauth) in the API, failures
are audited, and neither the client secret nor a refresh token appears in any answer or
audit entry."""

from __future__ import annotations

import json
import urllib.parse
from datetime import timedelta
from typing import Any

import attrs
import httpx
import pytest
import trio
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv
from support.oauth_server import OAuthServer

from flow8.outbound import OutboundPolicy
from flow8.services.credentials import CredentialService
from flow8.services.credentials._service import utcnow

pytestmark = pytest.mark.wall_clock  # the authorization server listens on a real socket

CLIENT = "flow8-web"
SECRET = "wEb-cLiEnT-sEcReT-canary-8Kd2"


@pytest.fixture
async def server(nursery: trio.Nursery) -> OAuthServer:
    server = OAuthServer(CLIENT, SECRET, expires_in=60)
    await nursery.start(server.serve)
    return server


@pytest.fixture
async def env(installed: ApiEnv) -> ApiEnv:
    creds = installed.app.deps.credentials
    assert isinstance(creds, CredentialService)
    creds.oauth.network = OutboundPolicy(allowed_cidrs=["127.0.0.1/32"])
    creds.oauth.audit = installed.app.deps.audit
    return installed


async def _create(client: httpx.AsyncClient, server: OAuthServer, **extra: Any) -> str:
    data = {
        "clientId": CLIENT,
        "clientSecret": SECRET,
        "authorizeUrl": server.url("/authorize"),
        "tokenUrl": server.url("/token"),
        "scopes": ["read", "write"],
        **extra,
    }
    r = await client.post("/api/credentials", json={"name": "crm", "type": "oauth2", "data": data})
    assert r.status_code == 201, r.text
    assert r.json()["oauth"] == {
        "status": "not_connected",
        "expiresAt": None,
        "connectedAt": None,
        "refreshedAt": None,
        "problem": None,
    }
    cid: str = r.json()["id"]
    return cid


async def _provider(url: str) -> dict[str, str]:
    """The person's browser at the provider: approved at once, redirected back."""
    async with httpx.AsyncClient() as browser:
        r = await browser.get(url)
    assert r.status_code == 302, r.text
    location = urllib.parse.urlsplit(r.headers["location"])
    assert location.path == "/auth/callback"
    return dict(urllib.parse.parse_qsl(location.query))


async def _audit(env: ApiEnv, client: httpx.AsyncClient) -> list[dict[str, Any]]:
    await env.audit.wait_idle()
    r = await client.get("/api/audit", params={"targetType": "credential", "size": 100})
    assert r.status_code == 200, r.text
    entries: list[dict[str, Any]] = r.json()["data"]
    return entries


async def test_connect_through_the_api_and_the_callback(env: ApiEnv, server: OAuthServer) -> None:
    answers: list[str] = []
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        cid = await _create(owner, server)
        r = await owner.post(f"/api/credentials/{cid}/oauth2/authorize")
        assert r.status_code == 200, r.text
        started = r.json()
        assert set(started) == {"url", "state", "expiresAt", "redirectUri"}
        assert started["redirectUri"] == env.url.rstrip("/") + "/auth/callback"
        assert started["url"].startswith(server.url("/authorize?"))
        back = await _provider(started["url"])
        assert back["state"] == started["state"]

        # A wrong state is refused, and nothing is exchanged.
        r = await owner.get("/auth/callback", params={**back, "state": "forged"})
        assert r.status_code == 400
        assert r.json()["error"] == "OAUTH_STATE_INVALID"
        # A browser gets a page.
        r = await owner.get(
            "/auth/callback", params={**back, "state": "forged"}, headers={"Accept": "text/html"}
        )
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("text/html")
        assert "start the connection again" in r.text
        assert server.token_requests == []

        r = await owner.get("/auth/callback", params=back)
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/credentials?connected=crm"
        r = await owner.get("/auth/callback", params=back)  # used up
        assert r.status_code == 400

        r = await owner.get(f"/api/credentials/{cid}")
        got = r.json()
        answers.append(r.text)
        assert got["oauth"]["status"] == "connected"
        assert got["oauth"]["expiresAt"] is not None
        assert {"accessToken", "refreshToken"} <= set(got["fields"])

        # The provider refuses the next refresh: the credential needs re-authorization.
        server.revoke_refresh_tokens()
        creds = env.app.deps.credentials
        assert isinstance(creds, CredentialService)
        creds.oauth.clock = lambda: utcnow() + timedelta(seconds=45)  # due
        r = await owner.post(f"/api/credentials/{cid}/oauth2/token")
        answers.append(r.text)
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "OAUTH_REAUTH_NEEDED"
        assert "must be connected again" in r.json()["message"]
        r = await owner.get("/api/credentials", params={"type": "oauth2"})
        answers.append(r.text)
        listed = r.json()["data"][0]["oauth"]
        assert listed["status"] == "needs_reauth"
        assert "invalid_grant" in listed["problem"]

        entries = await _audit(env, owner)
        actions = [e["action"] for e in entries]
        assert "credential_connected" in actions
        assert "credential_needs_reauth" in actions
        assert "credential_connect_failed" in actions  # the token route's refusal
        answers.append(json.dumps(entries))
    canaries = [SECRET, *server.issued_refresh_tokens()]
    assert len(canaries) >= 2
    for text in answers:
        for canary in canaries:
            assert canary not in text


async def test_only_the_user_who_started_may_complete(env: ApiEnv, server: OAuthServer) -> None:
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        cid = await _create(owner, server)
        started = (await owner.post(f"/api/credentials/{cid}/oauth2/authorize")).json()
        back = await _provider(started["url"])
        company = (await owner.get("/api/auth/me")).json()["companyId"]
        await env.invite_and_accept(owner, company, "eve@example.com", "admin", "eve-password-1")
        async with env.session("eve@example.com", "eve-password-1") as eve:
            r = await eve.get("/auth/callback", params=back)
            assert r.status_code == 400
            assert r.json()["error"] == "OAUTH_STATE_INVALID"
        # Without a session, nobody completes anything.
        async with env.client() as stranger:
            r = await stranger.get("/auth/callback", params=back)
            assert r.status_code == 401
        # Eve's try did not use it up: the owner still completes.
        r = await owner.get("/auth/callback", params=back)
        assert r.status_code == 303


async def test_the_redirect_uri_is_the_public_url_when_set(
    env: ApiEnv, server: OAuthServer
) -> None:
    env.app.deps.settings = attrs.evolve(
        env.app.deps.settings, public_url="https://flow8.example.com"
    )
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        cid = await _create(owner, server)
        r = await owner.post(f"/api/credentials/{cid}/oauth2/authorize")
        assert r.status_code == 200, r.text
        assert r.json()["redirectUri"] == "https://flow8.example.com/auth/callback"
        sent = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.json()["url"]).query))
        assert sent["redirect_uri"] == "https://flow8.example.com/auth/callback"
