"""OAuth2 connections of `oauth2` credentials: the authorization code flow with PKCE, the
client credentials grant, and tokens refreshed before they expire.

Where things live:

* the tokens (`accessToken`, `refreshToken`) in the credential's `data`, which the store
  encrypts like every credential's data;
* the connection's state in the credential document's plain `oauth` sub-document: `status`
  (`connected` or `needs_reauth`), `expires_at`, `lifetime` (seconds), `connected_at`,
  `refreshed_at`, `problem` (the provider's refusal, in words without secrets), `version`
  (one more per token write) and the refresh lease (`lease_owner`, `lease_until`);
* when the token is due for refresh in `oauth_refresh` (`_id` = the credential id, `due_at`):
  ids and times only, reachable across companies, so that the `oauth-refresh` job refreshes
  a token nobody uses before it expires too (a provider may expire an idle refresh token);
* a started authorization in `oauth_states` (tenant-scoped): found by the SHA-256 of its
  `state` (never the state itself), holding the credential, the user who started it, the
  redirect URI and the PKCE verifier (a secret field, encrypted); it expires after
  `state_seconds` and is deleted by the callback that uses it, so it works once.

One refresher across all instances: a step (or a person) that finds the access token
expiring within `refresh_margin` takes the credential's lease with one conditional update
(no lease, or a lapsed one, and the `version` it read); whoever gets it asks the provider,
writes the new tokens and drops the lease in one update. Everyone else polls the document
until the version moves (then uses the new token) or the lease lapses (then tries to take
it). So a token is refreshed once however many steps, on however many instances, find it
expiring; and it is refreshed before it expires, never after a 401.

A refusal of the refresh token (or of the client) marks the credential `needs_reauth`: steps
that use it fail saying so, the API and the UI show it, and a new authorization (Connect)
clears it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs
import trio

from flow8.logs import get_logger
from flow8.outbound import OutboundPolicy
from flow8.services.audit import AuditEntry
from flow8.store import Collection, ReturnDocument, Store, new_id

from ._oauth_providers import Endpoints, endpoints_of
from ._oauth_wire import (
    Tokens,
    authorize_url,
    new_state,
    new_verifier,
    request_token,
    safe_code,
)
from .exceptions import (
    CredentialError,
    CredentialNotFound,
    InvalidCredential,
    OAuthDenied,
    OAuthError,
    OAuthProviderError,
    OAuthReauthNeeded,
    OAuthStateInvalid,
    Problem,
)

log = get_logger("flow8.credentials")

LINKS = "links"
STATES = "oauth_states"
DUE = "oauth_refresh"
CONNECTED = "connected"
NEEDS_REAUTH = "needs_reauth"
NOT_CONNECTED = "not_connected"
CLIENT_CREDENTIALS = "clientCredentials"
# What a step gets of an oauth2 credential: the access token it applies. Not what mints new
# ones (the client secret, the refresh token), and not the plain settings either: the play
# masks every text of what a step gets in its records, and "google" or a scope "read"
# masked everywhere would garble them while hiding nothing.
STEP_FIELDS = frozenset({"accessToken"})
_WRITE_ATTEMPTS = 5


def _state_key(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


@attrs.frozen
class Authorization:
    """A started authorization: send the person to `url`; `state` comes back with them."""

    url: str
    state: str
    expires_at: datetime


@attrs.define
class OAuthConnections:
    """The OAuth2 side of the credential service (`CredentialService.oauth`).

    `network` is the outbound policy token requests leave under (the server's, like the
    request components'); `owner` names this instance in refresh leases; `audit` receives
    the connection's failures that no request is there to record (a refresh a step started).
    """

    store: Store
    clock: Callable[[], datetime]
    network: OutboundPolicy = attrs.field(factory=OutboundPolicy)
    owner: str = attrs.field(factory=new_id)
    audit: Callable[[AuditEntry], None] | None = None
    refresh_margin: float = 300.0  # refresh a token that expires within this many seconds
    lease_seconds: float = 30.0  # longer than a token request may take (20 s)
    state_seconds: float = 600.0  # how long a person has to come back from the provider
    poll_seconds: float = 0.1  # how often a waiting step looks again

    def _links(self, company_id: str) -> Collection:
        return self.store.tenant(company_id).collection(LINKS)

    def _states(self, company_id: str) -> Collection:
        return self.store.tenant(company_id).collection(STATES)

    # -- authorization code with PKCE ----------------------------------------------------

    async def authorize(
        self, company_id: str, credential_id: str, user_id: str, redirect_uri: str
    ) -> Authorization:
        doc = await self.oauth2_doc(company_id, credential_id)
        data: dict[str, Any] = doc.get("data") or {}
        if data.get("grant") == CLIENT_CREDENTIALS:
            raise InvalidCredential(
                [
                    Problem(
                        "data.grant", "a clientCredentials credential is not authorized by a person"
                    )
                ]
            )
        endpoints = endpoints_of(data, authorize=True)
        state, verifier = new_state(), new_verifier()
        expires = self.clock() + timedelta(seconds=self.state_seconds)
        await self._states(company_id).insert_one(
            {
                "_id": _state_key(state),
                "credential_id": credential_id,
                "user_id": user_id,
                "redirect_uri": redirect_uri,
                "verifier": verifier,
                "expires_at": expires,
            }
        )
        url = authorize_url(endpoints, data["clientId"], redirect_uri, state, verifier)
        return Authorization(url, state, expires)

    async def complete(
        self,
        company_id: str,
        user_id: str,
        state: str,
        *,
        code: str | None,
        error: str | None = None,
    ) -> str:
        """Finish the authorization `state` started: exchange `code` (with its verifier) and
        store the tokens. The state is used up whatever happens next. Returns the credential
        id."""
        states = self._states(company_id)
        key = _state_key(state)
        pending = await states.find_one({"_id": key})
        # Someone else's state is not used up by this request: it was not theirs to spend.
        if pending is None or pending.get("user_id") != user_id:
            raise OAuthStateInvalid("unknown or expired state: start the connection again")
        if await states.delete_one({"_id": key}) != 1:  # a second callback lost the race
            raise OAuthStateInvalid("unknown or expired state: start the connection again")
        if pending["expires_at"] <= self.clock():
            raise OAuthStateInvalid("the authorization expired: start the connection again")
        credential_id: str = pending["credential_id"]
        try:
            if error or not code:
                raise OAuthDenied(
                    "the provider did not authorize the connection "
                    f"({safe_code(error or 'no_code')})"
                )
            doc = await self.oauth2_doc(company_id, credential_id)
            data = doc.get("data") or {}
            tokens = await request_token(
                self.network,
                endpoints_of(data),
                data,
                {
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": pending["redirect_uri"],
                    "code_verifier": pending["verifier"],
                },
            )
        except OAuthError as failed:
            failed.credential_id = credential_id
            raise
        with trio.CancelScope(shield=True):  # the code is spent: keep what it bought
            await self._write_tokens(company_id, doc, tokens, connected=True)
        return credential_id

    # -- tokens for steps ----------------------------------------------------------------

    async def fresh(self, company_id: str, doc: Mapping[str, Any], *, force: bool = False) -> Any:
        """`doc` (a credential read with its data and `oauth`) with an access token that does
        not expire within `refresh_margin`: refreshed here under the lease, or by whoever
        holds it while this waits. `force`: refresh now even if it is not due (once: a
        refresh by someone else since the call began counts)."""
        links = self._links(company_id)
        started = (doc.get("oauth") or {}).get("version")
        deadline = trio.current_time() + 2 * self.lease_seconds
        current: Any = doc
        while True:
            state = current.get("oauth") or {}
            if state.get("status") == NEEDS_REAUTH and not (
                force and _grant(current) == CLIENT_CREDENTIALS
            ):
                raise OAuthReauthNeeded(_reauth_message(current))
            wanted = force and state.get("version") == started
            if not (wanted or self._due(current)):
                return current
            claimed = await self._claim(links, current)
            if claimed is not None:
                return await self._renew(company_id, claimed, force=force)
            if trio.current_time() > deadline:
                if self._valid(current):
                    return current
                raise OAuthProviderError(
                    "the token of this credential is being refreshed elsewhere and did not "
                    "arrive in time; try again"
                )
            await trio.sleep(self.poll_seconds)
            current = await links.find_one({"_id": current["_id"]})
            if current is None:
                raise CredentialNotFound("credential not found")

    def _due(self, doc: Mapping[str, Any]) -> bool:
        data = doc.get("data") or {}
        if not data.get("accessToken"):
            # A client credentials token is fetched when first needed; an authorization
            # code one needs a person (the step then fails saying it is not connected).
            return _grant(doc) == CLIENT_CREDENTIALS
        due = self._due_at(doc)
        return due is not None and due <= self.clock()

    def _due_at(self, doc: Mapping[str, Any]) -> datetime | None:
        """When the access token is due for refresh: `refresh_margin` before it expires, or
        half its life before, if it lives less than twice the margin (else every step would
        refresh it). None: it does not expire."""
        state = doc.get("oauth") or {}
        expires: datetime | None = state.get("expires_at")
        if expires is None:
            return None
        margin = min(self.refresh_margin, float(state.get("lifetime") or 1e9) / 2)
        return expires - timedelta(seconds=margin)

    # -- the oauth-refresh job -----------------------------------------------------------

    async def refresh_due(self, limit: int = 100) -> dict[str, int]:
        """Refresh the tokens due now in every company, each under its lease like a step's
        refresh (a step or another instance doing it meanwhile is simply waited for). One
        run of the `oauth-refresh` job: counts of `refreshed` and `failed`."""
        due = await self.store.cross_tenant.collection(DUE).find(
            {"due_at": {"$lte": self.clock()}}, sort=[("due_at", 1)], limit=limit
        )
        counts = {"refreshed": 0, "failed": 0}
        for entry in due:
            company_id, credential_id = entry["company_id"], entry["_id"]
            doc = await self._links(company_id).find_one({"_id": credential_id})
            if doc is None or doc.get("type") != "oauth2":
                await self._due_entries(company_id).delete_one({"_id": credential_id})
                continue
            try:
                fresh = await self.fresh(company_id, doc)
            except OAuthReauthNeeded:  # logged and audited where it happened
                counts["failed"] += 1
                await self._due_entries(company_id).delete_one({"_id": credential_id})
                continue
            except CredentialError:  # the same; tried again next run
                counts["failed"] += 1
                continue
            # A refresh that failed while the token still works leaves it due: tried again
            # next run. One that worked (here or elsewhere) moved `due_at` on already; an
            # entry that was stale is put right.
            if self._due(fresh):
                counts["failed"] += 1
                continue
            before = (doc.get("oauth") or {}).get("version")
            if (fresh.get("oauth") or {}).get("version") != before:
                counts["refreshed"] += 1
            await self._schedule(company_id, fresh)
        return counts

    def _due_entries(self, company_id: str) -> Collection:
        return self.store.tenant(company_id).collection(DUE)

    async def forget(self, company_id: str, credential_id: str) -> None:
        """A deleted credential is due for nothing."""
        await self._due_entries(company_id).delete_one({"_id": credential_id})

    async def _schedule(self, company_id: str, doc: Mapping[str, Any]) -> None:
        """Record when `doc`'s token is due (or forget it: it never expires, or needs a
        person now)."""
        due = self._due_at(doc)
        status = (doc.get("oauth") or {}).get("status")
        entries = self._due_entries(company_id)
        if due is None or status == NEEDS_REAUTH:
            await entries.delete_one({"_id": doc["_id"]})
        else:
            await entries.update_one({"_id": doc["_id"]}, {"$set": {"due_at": due}}, upsert=True)

    def _valid(self, doc: Mapping[str, Any]) -> bool:
        if not (doc.get("data") or {}).get("accessToken"):
            return False
        expires = (doc.get("oauth") or {}).get("expires_at")
        return expires is None or expires > self.clock()

    async def _claim(self, links: Collection, doc: Mapping[str, Any]) -> Any:
        """Take the refresh lease, if nobody holds it and nobody wrote tokens since `doc` was
        read: one atomic conditional update, so one claimant wins across instances."""
        now = self.clock()
        version = (doc.get("oauth") or {}).get("version")
        return await links.find_one_and_update(
            {
                "_id": doc["_id"],
                "oauth.version": version,  # None also matches a missing one
                "$or": [{"oauth.lease_until": None}, {"oauth.lease_until": {"$lt": now}}],
            },
            {
                "$set": {
                    "oauth.lease_owner": self.owner,
                    "oauth.lease_until": now + timedelta(seconds=self.lease_seconds),
                }
            },
            return_document=ReturnDocument.AFTER,
        )

    async def _renew(self, company_id: str, doc: Mapping[str, Any], *, force: bool) -> Any:
        """Holding the lease: a new token from the provider, stored; the lease dropped."""
        data = doc.get("data") or {}
        try:
            endpoints = endpoints_of(data)
            form = _renewal_form(doc, endpoints)
            tokens = await request_token(self.network, endpoints, data, form)
        except OAuthReauthNeeded as refused:
            await self._mark_reauth(company_id, doc, str(refused))
            message = _reauth_message({**doc, "oauth": {"problem": str(refused)}})
            raise OAuthReauthNeeded(message) from None
        except (OAuthProviderError, InvalidCredential) as failed:
            await self._release(company_id, doc)
            self._record(company_id, doc, "credential_refresh_failed", str(failed))
            if self._valid(doc) and not force:
                return doc  # the token still works; the next step that finds it due tries again
            raise
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._release(company_id, doc)
            raise
        # Shielded: a provider that rotates refresh tokens has already spent the old one, so
        # the new one must be stored even if the step is cancelled now.
        with trio.CancelScope(shield=True):
            return await self._write_tokens(company_id, doc, tokens, connected=False)

    async def _write_tokens(
        self, company_id: str, doc: Mapping[str, Any], tokens: Tokens, *, connected: bool
    ) -> Any:
        """Store `tokens` in the credential and mark it connected, dropping any lease. A
        write the credential's own update raced (its `rev` moved) is redone over what that
        update wrote, so a rotated refresh token is never lost; a refresh that finds newer
        tokens written meanwhile (a new connection) leaves them."""
        links = self._links(company_id)
        current: Any = doc
        version = (doc.get("oauth") or {}).get("version")
        for attempt in range(_WRITE_ATTEMPTS):
            if attempt and not connected and (current.get("oauth") or {}).get("version") != version:
                # Tokens were written since this refresh began (a person connected the
                # credential again): theirs are newer than these.
                return current
            now = self.clock()
            data = dict(current.get("data") or {})
            data["accessToken"] = tokens.access_token
            if tokens.refresh_token:
                data["refreshToken"] = tokens.refresh_token
            elif connected:
                data.pop("refreshToken", None)  # it belonged to the grant this one replaces
            before = current.get("oauth") or {}
            state: dict[str, Any] = {
                "status": CONNECTED,
                "expires_at": (
                    now + timedelta(seconds=tokens.expires_in) if tokens.expires_in else None
                ),
                "lifetime": tokens.expires_in,
                "connected_at": now if connected else before.get("connected_at"),
                "refreshed_at": now,
                "problem": None,
                "version": int(before.get("version") or 0) + 1,
                "lease_owner": None,
                "lease_until": None,
            }
            result = await links.update_one(
                {"_id": current["_id"], "rev": current.get("rev")},
                {
                    "$set": {"data": data, "fields": sorted(data), "oauth": state},
                    "$inc": {"rev": 1},
                },
            )
            if result.matched_count == 1:
                written = {
                    **current,
                    "data": data,
                    "oauth": state,
                    "rev": current.get("rev", 0) + 1,
                }
                await self._schedule(company_id, written)
                return written
            current = await links.find_one({"_id": current["_id"]})
            if current is None:
                raise CredentialNotFound("credential not found")
        raise OAuthProviderError("the credential kept changing while its tokens were stored")

    async def _release(self, company_id: str, doc: Mapping[str, Any]) -> None:
        await self._links(company_id).update_one(
            {"_id": doc["_id"], "oauth.lease_owner": self.owner},
            {"$set": {"oauth.lease_owner": None, "oauth.lease_until": None}},
        )

    async def _mark_reauth(self, company_id: str, doc: Mapping[str, Any], problem: str) -> None:
        await self._links(company_id).update_one(
            {"_id": doc["_id"], "oauth.lease_owner": self.owner},
            {
                "$set": {
                    "oauth.status": NEEDS_REAUTH,
                    "oauth.problem": problem,
                    "oauth.lease_owner": None,
                    "oauth.lease_until": None,
                },
                "$inc": {"oauth.version": 1},
            },
        )
        await self._due_entries(company_id).delete_one({"_id": doc["_id"]})
        self._record(company_id, doc, "credential_needs_reauth", problem)

    def _record(self, company_id: str, doc: Mapping[str, Any], action: str, problem: str) -> None:
        log.warning(action, company_id=company_id, credential_id=doc["_id"], problem=problem)
        if self.audit is not None:
            self.audit(
                AuditEntry(
                    action,
                    company_id=company_id,
                    target_type="credential",
                    target_id=doc["_id"],
                    details={"problem": problem},
                )
            )

    async def oauth2_doc(self, company_id: str, credential_id: str) -> Any:
        doc = await self._links(company_id).find_one({"_id": credential_id})
        if doc is None:
            raise CredentialNotFound("credential not found")
        if doc.get("type") != "oauth2":
            raise InvalidCredential([Problem("type", "only an oauth2 credential connects")])
        return doc


def _grant(doc: Mapping[str, Any]) -> str:
    return str((doc.get("data") or {}).get("grant") or "authorizationCode")


def _renewal_form(doc: Mapping[str, Any], endpoints: Endpoints) -> dict[str, str]:
    data = doc.get("data") or {}
    if _grant(doc) == CLIENT_CREDENTIALS:
        form = {"grant_type": "client_credentials"}
        if endpoints.scopes:
            form["scope"] = " ".join(endpoints.scopes)
        return form
    refresh = data.get("refreshToken")
    if not refresh:
        raise OAuthReauthNeeded("the access token expires and there is no refresh token")
    return {"grant_type": "refresh_token", "refresh_token": refresh}


def _reauth_message(doc: Mapping[str, Any]) -> str:
    problem = (doc.get("oauth") or {}).get("problem") or "the provider refused it"
    name = doc.get("name")
    which = f"the oauth2 credential {name!r}" if name else "the oauth2 credential"
    return f"{which} must be connected again: {problem}"


def step_view(data: Mapping[str, Any]) -> dict[str, Any]:
    """What a step gets of an oauth2 credential's data (`STEP_FIELDS`)."""
    return {k: v for k, v in data.items() if k in STEP_FIELDS}
