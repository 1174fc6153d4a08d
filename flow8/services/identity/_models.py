"""Identity records as the rest of flow8 sees them (immutable snapshots of stored documents)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

from ._rbac import Action, Role, allowed

Scope = Literal["api", "mcp"]
SCOPES: frozenset[str] = frozenset({"api", "mcp"})


@attrs.frozen
class User:
    id: str
    email: str
    name: str
    created_at: datetime

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> User:
        return cls(doc["_id"], doc["email"], doc.get("name", ""), doc["created_at"])


@attrs.frozen
class Company:
    id: str
    name: str
    slug: str
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Company:
        return cls(
            doc["_id"],
            doc["name"],
            doc["slug"],
            doc["created_by"],
            doc["created_at"],
            doc["updated_at"],
        )


@attrs.frozen
class Membership:
    company_id: str
    user_id: str
    role: Role
    created_at: datetime


@attrs.frozen
class Member:
    """A membership joined with its user, as the members API lists it."""

    user: User
    role: Role
    joined_at: datetime


@attrs.frozen
class ApiKey:
    """Never holds the key itself, only what identifies it (prefix) and what it may do."""

    id: str
    company_id: str
    user_id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> ApiKey:
        return cls(
            doc["_id"],
            doc["company_id"],
            doc["user_id"],
            doc["name"],
            doc["prefix"],
            tuple(doc.get("scopes", ())),
            doc["created_at"],
            doc.get("last_used_at"),
        )


@attrs.frozen
class Principal:
    """Who is asking, in which company, with which role, through which credential.

    `company_id`/`role` are None for a signed-in user with no company yet. `session_id` is
    the stored session's id (never the cookie value); `api_key_id` is set for key callers.
    """

    user: User
    company_id: str | None
    role: Role | None
    via: Literal["session", "api_key"]
    session_id: str | None = None
    csrf_token: str | None = None
    api_key_id: str | None = None
    scopes: frozenset[str] = frozenset()

    def may(self, action: Action) -> bool:
        if action in (Action.PUBLIC, Action.SIGNED_IN):
            return True
        return self.role is not None and allowed(self.role, action)


@attrs.frozen
class LoginResult:
    """`token` is the session cookie value; it is shown here once and stored only hashed."""

    token: str
    csrf_token: str
    expires_at: datetime
    principal: Principal


@attrs.frozen
class CreatedApiKey:
    key: str
    api_key: ApiKey


@attrs.frozen
class Invitation:
    """A pending invitation to join a company; never holds its token, only who is invited
    (`email`), to which role, by whom, and until when the token is valid."""

    id: str
    company_id: str
    email: str
    role: Role
    invited_by: str
    created_at: datetime
    expires_at: datetime

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Invitation:
        return cls(
            doc["_id"],
            doc["company_id"],
            doc["email"],
            Role(doc["role"]),
            doc["invited_by"],
            doc["created_at"],
            doc["expires_at"],
        )


@attrs.frozen
class CreatedInvitation:
    """`token` is shown this once, to the admin who invited, to hand to the person invited;
    None when an `InvitationSender` delivered it instead."""

    invitation: Invitation
    token: str | None
