"""OAuth2 connections of the credential service against authlib's authorization server on
loopback (tests/support/oauth_server.py): the authorization code flow with PKCE, `state`
checks, the client credentials grant, refresh before expiry by one refresher across two
instances sharing one database (a sqlite file; mongomock), a refused refresh marking the
credential `needs_reauth`, and the client secret and refresh token nowhere but on the wire."""

from __future__ import annotations

import hashlib
import sqlite3
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import httpx
import mongomock
import pytest
import trio
from support.oauth_server import OAuthServer

from flow8.jobs import oauth_refresh_job
from flow8.outbound import OutboundPolicy
from flow8.services.audit import AuditEntry
from flow8.services.credentials import (
    PROVIDERS,
    CredentialService,
    InvalidCredential,
    OAuthDenied,
    OAuthProviderError,
    OAuthReauthNeeded,
    OAuthStateInvalid,
)
from flow8.services.credentials._oauth_wire import challenge_of
from flow8.services.credentials._service import utcnow
from flow8.store import Keyring, Store, open_store

ACME = "acme"
ADA = "user-ada"
CLIENT = "flow8-client"
SECRET = "cLiEnT-sEcReT-canary-4Rw9"
REDIRECT = "http://flow8.test/auth/callback"
LOOPBACK = OutboundPolicy(allowed_cidrs=["127.0.0.1/32"])


@attrs.define
class Env:
    server: OAuthServer
    store: Store
    creds: CredentialService
    audit: list[AuditEntry]
    db: Path | None  # the sqlite file (None on mongomock)
    open_other: Callable[[], AbstractAsyncContextManager[Store]]  # a second instance's store


@pytest.fixture(params=["sqlite", "mongomock"])
async def env(
    request: pytest.FixtureRequest, nursery: trio.Nursery, tmp_path: Path
) -> AsyncIterator[Env]:
    server = OAuthServer(CLIENT, SECRET, expires_in=60)
    await nursery.start(server.serve)
    db: Path | None = None
    if request.param == "sqlite":
        db = tmp_path / "cred.db"

        def open_other() -> AbstractAsyncContextManager[Store]:
            return open_store(f"sqlite:///{db}", data_dir=tmp_path, durability="normal")

    else:
        client: Any = mongomock.MongoClient(tz_aware=True)
        keys = Keyring.generate()

        def open_other() -> AbstractAsyncContextManager[Store]:
            return open_store("mongodb://mock/flow8test", mongo_client=client, encryption=keys)

    async with open_other() as store:
        audit: list[AuditEntry] = []
        creds = CredentialService(store)
        creds.oauth.network, creds.oauth.audit = LOOPBACK, audit.append
        yield Env(server, store, creds, audit, db, open_other)


def _data(server: OAuthServer, **extra: Any) -> dict[str, Any]:
    return {
        "clientId": CLIENT,
        "clientSecret": SECRET,
        "authorizeUrl": server.url("/authorize"),
        "tokenUrl": server.url("/token"),
        "scopes": ["read"],
        **extra,
    }


async def _browse(url: str) -> dict[str, str]:
    """What the person's browser brings back to the callback: the redirect's query."""
    async with httpx.AsyncClient() as browser:
        r = await browser.get(url)
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    assert location.startswith(REDIRECT)
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


async def _connect(env: Env, credential_id: str) -> None:
    started = await env.creds.oauth2_authorize(ACME, credential_id, ADA, REDIRECT)
    back = await _browse(started.url)
    await env.creds.oauth2_complete(ACME, ADA, back["state"], code=back["code"], error=None)


def _later(service: CredentialService, seconds: float) -> None:
    """Move `service`'s refresh clock on: a 60 s token is due once under 30 s remain (half
    its life, as it is shorter than the margin)."""
    service.oauth.clock = lambda: utcnow() + timedelta(seconds=seconds)


def _stored_text(db: Path) -> str:
    with sqlite3.connect(db) as raw:
        tables = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            str(row) for t in tables for row in raw.execute(f'SELECT * FROM "{t}"').fetchall()
        )


async def test_the_code_flow_with_pkce_stores_the_tokens_encrypted(env: Env) -> None:
    made = await env.creds.create(ACME, "crm", "oauth2", _data(env.server))
    assert made.oauth is not None
    assert made.oauth.status == "not_connected"
    started = await env.creds.oauth2_authorize(ACME, made.id, ADA, REDIRECT)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(started.url).query))
    assert query["state"] == started.state
    assert query["code_challenge_method"] == "S256"
    assert (query["client_id"], query["redirect_uri"], query["scope"]) == (CLIENT, REDIRECT, "read")
    assert SECRET not in started.url
    back = await _browse(started.url)
    assert back["state"] == started.state
    done = await env.creds.oauth2_complete(ACME, ADA, back["state"], code=back["code"], error=None)
    assert done.oauth is not None
    assert done.oauth.status == "connected"
    assert done.oauth.expires_at is not None
    assert done.oauth.connected_at is not None
    assert set(done.fields) >= {"accessToken", "refreshToken"}
    # The verifier sent with the code is the one whose challenge the provider checked.
    sent = dict(urllib.parse.parse_qsl(env.server.token_bodies[-1].decode()))
    assert sent["grant_type"] == "authorization_code"
    assert challenge_of(sent["code_verifier"]) == query["code_challenge"]
    # Encrypted at rest: neither token, nor the verifier, nor the state is in the file.
    issued = env.server.tokens[-1]
    stored = _stored_text(env.db) if env.db is not None else ""
    for secret in (issued.access_token, issued.refresh_token, sent["code_verifier"], SECRET):
        assert secret
        assert secret not in stored
    assert started.state not in stored
    assert hashlib.sha256(started.state.encode()).hexdigest() not in stored  # used up
    # A step gets the access token and nothing that mints new ones.
    type_, data = await env.creds.for_step(ACME, made.id)
    assert type_ == "oauth2"
    assert data["accessToken"] == issued.access_token
    assert set(data) == {"accessToken"}  # not the client secret or the refresh token


async def test_a_wrong_used_expired_or_foreign_state_is_refused(env: Env) -> None:
    made = await env.creds.create(ACME, "crm", "oauth2", _data(env.server))
    started = await env.creds.oauth2_authorize(ACME, made.id, ADA, REDIRECT)
    back = await _browse(started.url)
    for state, user, company in (
        ("not-the-state", ADA, ACME),
        (back["state"], "user-eve", ACME),  # started by someone else
        (back["state"], ADA, "globex"),  # another company's
    ):
        with pytest.raises(OAuthStateInvalid):
            await env.creds.oauth2_complete(company, user, state, code=back["code"], error=None)
    assert env.server.token_requests == []  # nothing was exchanged
    await env.creds.oauth2_complete(ACME, ADA, back["state"], code=back["code"], error=None)
    with pytest.raises(OAuthStateInvalid):  # single use
        await env.creds.oauth2_complete(ACME, ADA, back["state"], code=back["code"], error=None)
    # An authorization not completed in time expires.
    env.creds.oauth.state_seconds = 0.05
    late = await env.creds.oauth2_authorize(ACME, made.id, ADA, REDIRECT)
    await trio.sleep(0.1)
    with pytest.raises(OAuthStateInvalid):
        await env.creds.oauth2_complete(ACME, ADA, late.state, code="x", error=None)
    # The person said no at the provider.
    denied = await env.creds.oauth2_authorize(ACME, made.id, ADA, REDIRECT)
    with pytest.raises(OAuthDenied, match="access_denied"):
        await env.creds.oauth2_complete(ACME, ADA, denied.state, code=None, error="access_denied")


async def test_the_token_endpoint_goes_through_the_outbound_guard(env: Env) -> None:
    made = await env.creds.create(ACME, "crm", "oauth2", _data(env.server))
    started = await env.creds.oauth2_authorize(ACME, made.id, ADA, REDIRECT)
    back = await _browse(started.url)
    env.creds.oauth.network = OutboundPolicy()  # the default: loopback refused
    with pytest.raises(OAuthProviderError, match="OUTBOUND_REFUSED"):
        await env.creds.oauth2_complete(ACME, ADA, back["state"], code=back["code"], error=None)
    assert env.server.token_requests == []


async def test_a_preset_or_urls_are_required(env: Env) -> None:
    made = await env.creds.create(ACME, "bare", "oauth2", {"clientId": "c", "clientSecret": "s"})
    with pytest.raises(InvalidCredential) as refused:
        await env.creds.oauth2_authorize(ACME, made.id, ADA, REDIRECT)
    assert {p.field for p in refused.value.problems} == {"data.tokenUrl", "data.authorizeUrl"}
    google = await env.creds.create(
        ACME, "g", "oauth2", {"clientId": "c", "clientSecret": "s", "provider": "google"}
    )
    started = await env.creds.oauth2_authorize(ACME, google.id, ADA, REDIRECT)
    assert started.url.startswith(PROVIDERS["google"].authorize_url + "?")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(started.url).query))
    assert query["access_type"] == "offline"
    assert query["scope"] == " ".join(PROVIDERS["google"].scopes)
    slack = await env.creds.create(
        ACME, "s", "oauth2", {"clientId": "c", "clientSecret": "s", "provider": "slack"}
    )
    started = await env.creds.oauth2_authorize(ACME, slack.id, ADA, REDIRECT)
    assert "scope=chat%3Awrite%2Cfiles%3Awrite" in started.url


async def test_two_instances_racing_refresh_once_before_expiry(env: Env) -> None:
    made = await env.creds.create(ACME, "crm", "oauth2", _data(env.server))
    await _connect(env, made.id)
    first = env.server.tokens[-1]
    await env.creds.for_step(ACME, made.id)  # not due yet: 60 s left of a 60 s token
    assert env.server.token_requests == ["authorization_code"]
    _later(env.creds, 45)
    env.server.expires_in = 3600
    env.server.hold_refresh = 0.5  # every racer arrives while the refresh is in flight
    # A second instance: its own store client over the same database, its own lease owner.
    async with env.open_other() as other_store:
        other = CredentialService(other_store)
        other.oauth.network = LOOPBACK
        _later(other, 45)
        assert other.oauth.owner != env.creds.oauth.owner
        seen: list[str] = []

        async def step(service: CredentialService) -> None:
            _, data = await service.for_step(ACME, made.id)
            seen.append(data["accessToken"])

        async with trio.open_nursery() as racers:
            for service in (env.creds, other) * 4:
                racers.start_soon(step, service)
    assert env.server.token_requests.count("refresh_token") == 1
    fresh = env.server.tokens[-1]
    assert seen == [fresh.access_token] * 8
    assert fresh.access_token != first.access_token
    got = await env.creds.get(ACME, made.id)
    assert got.oauth is not None
    assert got.oauth.refreshed_at is not None
    assert got.oauth.expires_at is not None
    assert got.oauth.expires_at - got.oauth.refreshed_at == timedelta(seconds=3600)
    # Not due any more: the next step uses it without asking.
    await env.creds.for_step(ACME, made.id)
    assert env.server.token_requests.count("refresh_token") == 1


async def test_a_refused_refresh_needs_reauth_and_fails_steps_clearly(env: Env) -> None:
    made = await env.creds.create(ACME, "crm", "oauth2", _data(env.server))
    await _connect(env, made.id)
    env.server.revoke_refresh_tokens()
    _later(env.creds, 45)
    with pytest.raises(OAuthReauthNeeded) as refused:
        await env.creds.for_step(ACME, made.id)
    message = str(refused.value)
    assert "'crm' must be connected again" in message
    assert "invalid_grant" in message
    got = await env.creds.get(ACME, made.id)
    assert got.oauth is not None
    assert got.oauth.status == "needs_reauth"
    assert got.oauth.problem is not None
    assert "invalid_grant" in got.oauth.problem
    assert [e.action for e in env.audit] == ["credential_needs_reauth"]
    # Later steps fail the same way without asking the provider again.
    asked = len(env.server.token_requests)
    with pytest.raises(OAuthReauthNeeded):
        await env.creds.for_step(ACME, made.id)
    assert len(env.server.token_requests) == asked
    # Connecting again clears it.
    await _connect(env, made.id)
    got = await env.creds.get(ACME, made.id)
    assert got.oauth is not None
    assert (got.oauth.status, got.oauth.problem) == ("connected", None)
    # Neither the client secret nor any refresh token is in an error, the audit or the list.
    texts = [message, repr(env.audit), repr(await env.creds.list(ACME))]
    for secret in [SECRET, *env.server.issued_refresh_tokens()]:
        assert all(secret not in t for t in texts)


async def test_the_client_credentials_grant(env: Env) -> None:
    made = await env.creds.create(
        ACME, "m2m", "oauth2", _data(env.server, grant="clientCredentials")
    )
    with pytest.raises(InvalidCredential):  # nobody authorizes it in a browser
        await env.creds.oauth2_authorize(ACME, made.id, ADA, REDIRECT)
    env.server.expires_in = 3600
    _, data = await env.creds.for_step(ACME, made.id)  # fetched when first needed
    assert data["accessToken"] == env.server.tokens[-1].access_token
    assert env.server.token_requests == ["client_credentials"]
    await env.creds.for_step(ACME, made.id)
    assert env.server.token_requests == ["client_credentials"]
    got = await env.creds.oauth2_token(ACME, made.id)  # a new one on request
    assert got.oauth is not None
    assert got.oauth.status == "connected"
    assert env.server.token_requests == ["client_credentials"] * 2
    # A wrong secret is a refusal of the client: it needs a person.
    await env.creds.update(ACME, made.id, data={"clientSecret": "wrong-secret"})
    with pytest.raises(OAuthReauthNeeded, match="invalid_client"):
        await env.creds.oauth2_token(ACME, made.id)
    refused = await env.creds.get(ACME, made.id)
    assert refused.oauth is not None
    assert refused.oauth.status == "needs_reauth"
    with pytest.raises(OAuthReauthNeeded):  # steps fail without asking again
        await env.creds.for_step(ACME, made.id)
    # A new secret clears it: the next step (or a person) tries again.
    change = await env.creds.update(ACME, made.id, data={"clientSecret": SECRET})
    assert change.after.oauth is not None
    assert (change.after.oauth.status, change.after.oauth.problem) == ("connected", None)
    _, data = await env.creds.for_step(ACME, made.id)
    assert data["accessToken"] == env.server.tokens[-1].access_token
    got = await env.creds.oauth2_token(ACME, made.id)
    assert got.oauth is not None
    assert got.oauth.status == "connected"


async def test_the_refresh_job_keeps_unused_tokens_fresh_once_across_instances(env: Env) -> None:
    made = await env.creds.create(ACME, "crm", "oauth2", _data(env.server))
    await _connect(env, made.id)
    due = env.store.cross_tenant.collection("oauth_refresh")
    (entry,) = await due.find({})
    got = await env.creds.get(ACME, made.id)
    assert got.oauth is not None
    assert got.oauth.expires_at is not None
    assert (entry["_id"], entry["company_id"]) == (made.id, ACME)
    assert entry["due_at"] == got.oauth.expires_at - timedelta(seconds=30)  # half of 60 s
    assert await env.creds.oauth.refresh_due() == {"refreshed": 0, "failed": 0}  # not yet

    env.server.expires_in = 3600
    env.server.hold_refresh = 0.3
    _later(env.creds, 45)
    async with env.open_other() as other_store:
        other = CredentialService(other_store)
        other.oauth.network = LOOPBACK
        _later(other, 45)
        job = oauth_refresh_job(env.creds)
        runs: list[Any] = []

        async def run(work: Any) -> None:
            runs.append(await work())

        async with trio.open_nursery() as instances:  # the job on two instances at once
            instances.start_soon(run, job.run_once)
            instances.start_soon(run, other.oauth.refresh_due)
    assert env.server.token_requests.count("refresh_token") == 1
    assert sorted(r["refreshed"] for r in runs) == [1, 1]  # one refreshed, one waited for it
    (entry,) = await due.find({})
    got = await env.creds.get(ACME, made.id)
    assert got.oauth is not None
    assert got.oauth.expires_at is not None
    assert entry["due_at"] == got.oauth.expires_at - timedelta(seconds=300)

    # Refused: no longer due for anything (a person must connect it); deleted: forgotten.
    env.server.revoke_refresh_tokens()
    _later(env.creds, 3600)
    assert await env.creds.oauth.refresh_due() == {"refreshed": 0, "failed": 1}
    assert await due.find({}) == []
    await _connect(env, made.id)
    assert len(await due.find({})) == 1
    await env.creds.delete(ACME, made.id)
    assert await due.find({}) == []
