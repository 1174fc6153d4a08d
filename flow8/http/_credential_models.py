"""API bodies of the credential routes. Answers name the data fields a credential holds and
never their values; the data schemas come from the service's rule table, so what the
document promises is what the service accepts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

import attrs

from flow8.domain import field
from flow8.services.credentials import (
    DESCRIPTION_MAX,
    NAME_MAX,
    TYPES,
    Authorization,
    Credential,
    CredentialType,
    OAuthStatus,
    data_schema,
    patch_schema,
)


@attrs.frozen
class CredentialCreate:
    type: CredentialType
    # apiKey {key, header?}; basic {username, password}; bearer {token}; oauth2 {clientId,
    # clientSecret, accessToken?, refreshToken?, tokenUrl?, scopes?, provider?, authorizeUrl?,
    # grant?}; generic: string fields.
    data: dict[str, Any]
    name: str = field(min_length=1, max_length=NAME_MAX, not_blank=True)
    description: str | None = field(default=None, max_length=DESCRIPTION_MAX)

    __json_schema_extra__: ClassVar[dict[str, Any]] = {
        "oneOf": [
            {"properties": {"type": {"const": t}, "data": data_schema(t)}, "required": ["type"]}
            for t in TYPES
        ]
    }


@attrs.frozen
class CredentialUpdate:
    """Every field optional. In `data` a value replaces that field, null removes it and an
    absent field keeps its stored value; the type never changes."""

    name: str | None = field(default=None, min_length=1, max_length=NAME_MAX, not_blank=True)
    description: str | None = field(default=None, max_length=DESCRIPTION_MAX)
    data: dict[str, Any] | None = None

    __json_schema_extra__: ClassVar[dict[str, Any]] = {
        "allOf": [{"properties": {"data": {"anyOf": [patch_schema(), {"type": "null"}]}}}]
    }


@attrs.frozen
class CredentialQuery:
    page: int = field(default=0, minimum=0, maximum=1_000_000)
    size: int = field(default=25, minimum=1, maximum=100)
    type: CredentialType | None = None


@attrs.frozen
class OAuthOut:
    """Where an oauth2 credential's connection stands; never a token."""

    # connected; needs_reauth: the provider refused its refresh token or client, connect it
    # again (problem says how); not_connected: no access token yet
    status: Literal["connected", "needs_reauth", "not_connected"]
    expires_at: datetime | None = None  # of the access token
    connected_at: datetime | None = None
    refreshed_at: datetime | None = None
    problem: str | None = None

    @classmethod
    def of(cls, s: OAuthStatus) -> OAuthOut:
        return cls(s.status, s.expires_at, s.connected_at, s.refreshed_at, s.problem)  # type: ignore[arg-type]


@attrs.frozen
class OAuthAuthorizeOut:
    """Send the person to `url`; the provider sends them back to `redirectUri`
    (`GET /auth/callback`) with `state`, which works once, for them, until `expiresAt`."""

    url: str
    state: str
    expires_at: datetime
    redirect_uri: str

    @classmethod
    def of(cls, a: Authorization, redirect_uri: str) -> OAuthAuthorizeOut:
        return cls(a.url, a.state, a.expires_at, redirect_uri)


@attrs.frozen
class OAuthCallbackQuery:
    """What the provider appends to the redirect URI (other parameters are ignored)."""

    state: str = field(min_length=1, max_length=512)
    code: str | None = field(default=None, max_length=4096)
    error: str | None = field(default=None, max_length=256)


@attrs.frozen
class CredentialOut:
    id: str
    name: str
    type: CredentialType
    description: str | None
    fields: list[str]  # names of the data fields held; their values are never shown
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    updated_by: str | None
    oauth: OAuthOut | None = None  # oauth2 credentials only

    @classmethod
    def of(cls, c: Credential) -> CredentialOut:
        return cls(
            id=c.id,
            name=c.name,
            type=c.type,  # type: ignore[arg-type]
            description=c.description,
            fields=list(c.fields),
            created_at=c.created_at,
            updated_at=c.updated_at,
            created_by=c.created_by,
            updated_by=c.updated_by,
            oauth=OAuthOut.of(c.oauth) if c.oauth is not None else None,
        )
