"""An oauth2 credential in a play: curl applies an access token refreshed before it expires,
a refresh the provider refuses fails the step saying the credential must be connected again,
and the client secret and every refresh token stay on the wire (not in the play, its layers,
its events, the logs or the database file)."""

from __future__ import annotations

import urllib.parse
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import trio
from components_kit import COMPANY, Kit, component_kit
from support.local_http import Start
from support.oauth_server import OAuthServer
from test_components_requests import LOOPBACK, curl, echo, stored_bytes

from flow8.domain import PlayState
from flow8.outbound import OutboundPolicy
from flow8.services.credentials._service import utcnow

CLIENT = "flow8-steps"
SECRET = "sTeP-cLiEnT-sEcReT-canary-3Hq7"
REDIRECT = "http://flow8.test/auth/callback"


async def _connect(kit: Kit, server: OAuthServer, credential_id: str) -> None:
    started = await kit.credentials.oauth2_authorize(COMPANY, credential_id, "ada", REDIRECT)
    async with httpx.AsyncClient() as browser:
        r = await browser.get(started.url)
    back = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.headers["location"]).query))
    await kit.credentials.oauth2_complete(
        COMPANY, "ada", back["state"], code=back["code"], error=None
    )


def _later(kit: Kit, seconds: float) -> None:
    kit.credentials.oauth.clock = lambda: utcnow() + timedelta(seconds=seconds)


async def test_a_step_uses_a_token_refreshed_before_expiry_and_fails_when_refused(
    tmp_path: Path, start: Start, nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]
) -> None:
    oauth = OAuthServer(CLIENT, SECRET, expires_in=60)
    await nursery.start(oauth.serve)
    api = await start(echo)
    url = f"http://127.0.0.1:{api.port}/me"
    async with component_kit(tmp_path) as kit:
        kit.credentials.oauth.network = OutboundPolicy(allowed_cidrs=["127.0.0.1/32"])
        await kit.component("request", "http", LOOPBACK)
        cred = await kit.credential(
            "oauth2",
            {
                "clientId": CLIENT,
                "clientSecret": SECRET,
                "authorizeUrl": oauth.url("/authorize"),
                "tokenUrl": oauth.url("/token"),
                "scopes": ["read"],
            },
            name="crm",
        )
        await _connect(kit, oauth, cred)
        oauth.expires_in = 3600
        _later(kit, 45)  # 15 s left of 60: due before the step calls out

        play, layer = await curl(kit, {"url": url, "credentialId": cred})
        assert play.state is PlayState.DONE, play.error
        assert oauth.token_requests == ["authorization_code", "refresh_token"]
        fresh = oauth.tokens[-1].access_token
        assert api.requests[-1].headers["authorization"] == f"Bearer {fresh}"
        records = [repr(play), repr(layer)]

        # The provider stops honouring the refresh token; the token is due again.
        oauth.revoke_refresh_tokens()
        _later(kit, 3600 - 10)
        play, layer = await curl(kit, {"url": url, "credentialId": cred})
        assert play.state is PlayState.FAIL
        assert layer.error is not None
        assert "the oauth2 credential 'crm' must be connected again" in layer.error
        assert "invalid_grant" in layer.error
        assert len(api.requests) == 1  # the API was not called with a stale token
        got = await kit.credentials.get(COMPANY, cred)
        assert got.oauth is not None
        assert got.oauth.status == "needs_reauth"
        records += [repr(play), repr(layer), repr(kit.events)]
    out = capsys.readouterr()
    records += [out.out, out.err]
    canaries = [SECRET, *oauth.issued_refresh_tokens()]
    assert len(canaries) == 3
    disk = stored_bytes(tmp_path)
    for canary in canaries:
        assert canary.encode() not in disk
        for text in records:
            assert canary not in text
