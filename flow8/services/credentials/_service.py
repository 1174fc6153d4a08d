"""The credential service: a company's credentials in the `links` collection.

The data of a credential is the collection's secret field: the store encrypts it (AES-256-GCM,
bound to company, collection, document and field) before it reaches the database. Everything
else (name, type, description, the names of the data fields) is plain, so listings never
decrypt anything. Only `reveal` hands the data out, to modules and components; no interface
route calls it.

OAuth2 connections (authorize, callback, client credentials, refresh before expiry) are
`oauth` (`_oauth.py`); `for_step` asks it for a token that will not expire during the step.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from flow8.store import Collection, DuplicateKey, Store

from ._models import Credential, CredentialChange
from ._oauth import LINKS, NEEDS_REAUTH, Authorization, OAuthConnections, step_view
from ._types import check_data, check_description, check_name, check_type, merge_data
from .exceptions import CredentialConflict, CredentialNameTaken, CredentialNotFound

COLLECTION = LINKS
_UPDATE_ATTEMPTS = 5
_WITHOUT_DATA = {"data": 0}


class Keep(enum.Enum):
    """`update(description=KEEP)`: leave the description as it is (None clears it)."""

    KEEP = "keep"


KEEP = Keep.KEEP


def utcnow() -> datetime:
    # The store keeps milliseconds; trimming here makes what create returns equal what a
    # later read returns.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@attrs.define
class CredentialService:
    """Every method is scoped to `company_id`: another company's credential is not found.

    Errors (see `exceptions`): `CredentialNotFound`, `CredentialNameTaken`,
    `CredentialConflict`, `InvalidCredential` (every problem, naming fields, never values);
    store errors propagate unchanged.
    """

    store: Store
    clock: Callable[[], datetime] = utcnow
    # Built over `store` and `clock` when not given; the server passes one with its outbound
    # policy and audit log.
    oauth: OAuthConnections = attrs.field(
        default=attrs.Factory(lambda s: OAuthConnections(s.store, s.clock), takes_self=True)
    )

    def _links(self, company_id: str) -> Collection:
        return self.store.tenant(company_id).collection(COLLECTION)

    async def create(
        self,
        company_id: str,
        name: str,
        type: str,
        data: Any,
        *,
        description: str | None = None,
        created_by: str | None = None,
    ) -> Credential:
        doc_name = check_name(name)
        doc_type = check_type(type)
        clean = check_data(doc_type, data)
        now = self.clock()
        doc = {
            "name": doc_name,
            "type": doc_type,
            "description": check_description(description),
            "data": clean,
            "fields": sorted(clean),
            "rev": 1,
            "created_at": now,
            "updated_at": now,
            "created_by": created_by,
            "updated_by": created_by,
        }
        try:
            doc["_id"] = await self._links(company_id).insert_one(doc)
        except DuplicateKey as e:
            raise CredentialNameTaken(f"a credential named {doc_name!r} exists") from e
        return Credential.from_doc(doc)

    async def get(self, company_id: str, credential_id: str) -> Credential:
        doc = await self._links(company_id).find_one(
            {"_id": credential_id}, projection=_WITHOUT_DATA
        )
        if doc is None:
            raise CredentialNotFound("credential not found")
        return Credential.from_doc(doc)

    async def list(
        self, company_id: str, *, page: int = 0, size: int = 25, type: str | None = None
    ) -> tuple[builtins.list[Credential], int]:
        """One page ordered by name, and the total count; `type` narrows to one type."""
        size = max(1, min(size, 100))
        page = max(0, page)
        query: dict[str, Any] = {} if type is None else {"type": check_type(type)}
        links = self._links(company_id)
        total = await links.count(query)
        docs = await links.find(
            query,
            sort=[("name", 1), ("_id", 1)],
            skip=page * size,
            limit=size,
            projection=_WITHOUT_DATA,
        )
        return [Credential.from_doc(d) for d in docs], total

    async def update(
        self,
        company_id: str,
        credential_id: str,
        *,
        name: str | None = None,
        description: str | Keep | None = KEEP,
        data: Mapping[str, Any] | None = None,
        updated_by: str | None = None,
    ) -> CredentialChange:
        """Rename, redescribe and patch the data: in `data` a value replaces the field, null
        removes it and an absent field keeps its stored value, so a client never resends a
        secret it does not change. The type never changes. Nothing is written when nothing
        changes."""
        new_name = check_name(name) if name is not None else None
        new_description = check_description(description) if description is not KEEP else KEEP
        links = self._links(company_id)
        for _ in range(_UPDATE_ATTEMPTS):
            doc = await links.find_one({"_id": credential_id})
            if doc is None:
                raise CredentialNotFound("credential not found")
            before = Credential.from_doc(doc)
            stored: dict[str, Any] = doc.get("data") or {}
            merged = stored if data is None else merge_data(before.type, stored, data)
            changed = sorted(
                k for k in stored.keys() | merged.keys() if stored.get(k) != merged.get(k)
            )
            sets: dict[str, Any] = {}
            if new_name is not None and new_name != before.name:
                sets["name"] = new_name
            if new_description is not KEEP and new_description != before.description:
                sets["description"] = new_description
            if changed:
                sets["data"] = merged
                sets["fields"] = sorted(merged)
            if not sets:
                return CredentialChange(before, before, ())
            sets["updated_at"] = self.clock()
            sets["updated_by"] = updated_by
            after_doc = {**doc, **sets}
            state = doc.get("oauth") or {}
            if changed and state.get("status") == NEEDS_REAUTH:
                # What the provider refused changed (a new secret, a pasted token): the next
                # step tries it. Dotted, so a refresh lease taken meanwhile is kept.
                sets["oauth.status"] = sets["oauth.problem"] = None
                after_doc["oauth"] = {**state, "status": None, "problem": None}
            # Optimistic concurrency: a data patch is a read-modify-write, so a concurrent
            # update in between must not be overwritten with the stale data read here.
            try:
                result = await links.update_one(
                    {"_id": credential_id, "rev": doc.get("rev")},
                    {"$set": sets, "$inc": {"rev": 1}},
                )
            except DuplicateKey as e:
                raise CredentialNameTaken(f"a credential named {new_name!r} exists") from e
            if result.matched_count == 1:
                after = Credential.from_doc(after_doc)
                return CredentialChange(before, after, tuple(changed))
        raise CredentialConflict("the credential kept changing concurrently; retry")

    async def delete(self, company_id: str, credential_id: str) -> Credential:
        """Delete and return what was deleted (without its data)."""
        links = self._links(company_id)
        doc = await links.find_one({"_id": credential_id}, projection=_WITHOUT_DATA)
        if doc is None or await links.delete_one({"_id": credential_id}) == 0:
            raise CredentialNotFound("credential not found")
        if doc["type"] == "oauth2":
            await self.oauth.forget(company_id, credential_id)
        return Credential.from_doc(doc)

    async def exists(self, company_id: str, credential_id: str) -> bool:
        doc = await self._links(company_id).find_one({"_id": credential_id}, projection={"_id": 1})
        return doc is not None

    async def for_step(self, company_id: str, credential_id: str) -> tuple[str, dict[str, Any]]:
        """(type, decrypted data), for the engine's steps (its ``CredentialSource``). An oauth2
        credential's access token is refreshed first if it expires soon (or waited for, when
        another step or instance is refreshing it), and the step gets the access token
        alone: never the client secret or refresh token (`_oauth.STEP_FIELDS`)."""
        doc = await self._links(company_id).find_one({"_id": credential_id})
        if doc is None:
            raise CredentialNotFound(f"no credential {credential_id!r} in this company")
        if doc["type"] == "oauth2":
            doc = await self.oauth.fresh(company_id, doc)
            return doc["type"], step_view(doc.get("data") or {})
        data: dict[str, Any] = doc.get("data") or {}
        return doc["type"], {k: list(v) if isinstance(v, list) else v for k, v in data.items()}

    async def oauth2_authorize(
        self, company_id: str, credential_id: str, user_id: str, redirect_uri: str
    ) -> Authorization:
        """Start the authorization code flow (PKCE): the provider URL to send the person to,
        with a `state` that only `oauth2_complete` for the same user and company accepts."""
        return await self.oauth.authorize(company_id, credential_id, user_id, redirect_uri)

    async def oauth2_complete(
        self, company_id: str, user_id: str, state: str, *, code: str | None, error: str | None
    ) -> Credential:
        """The callback: check `state`, exchange `code`, store the tokens (encrypted)."""
        credential_id = await self.oauth.complete(
            company_id, user_id, state, code=code, error=error
        )
        return await self.get(company_id, credential_id)

    async def oauth2_token(self, company_id: str, credential_id: str) -> Credential:
        """Get a new access token now: the client credentials grant, or a refresh. Clears
        `needs_reauth` for a client credentials credential whose new token arrives."""
        doc = await self.oauth.oauth2_doc(company_id, credential_id)
        await self.oauth.fresh(company_id, doc, force=True)
        return await self.get(company_id, credential_id)

    async def reveal(self, company_id: str, credential_id: str) -> dict[str, Any]:
        """The decrypted data, for modules and components acting for `company_id`. Never
        answer it over an interface."""
        doc = await self._links(company_id).find_one({"_id": credential_id}, projection={"data": 1})
        if doc is None:
            raise CredentialNotFound("credential not found")
        data: dict[str, Any] = doc.get("data") or {}
        return {k: list(v) if isinstance(v, list) else v for k, v in data.items()}
