"""API bodies of the credential routes. Answers name the data fields a credential holds and
never their values; the data schemas come from the service's rule table, so what the
document promises is what the service accepts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import attrs

from flow8.domain import field
from flow8.services.credentials import (
    DESCRIPTION_MAX,
    NAME_MAX,
    TYPES,
    Credential,
    CredentialType,
    data_schema,
    patch_schema,
)


@attrs.frozen
class CredentialCreate:
    type: CredentialType
    # apiKey {key, header?}; basic {username, password}; bearer {token}; oauth2 {clientId,
    # clientSecret, accessToken?, refreshToken?, tokenUrl?, scopes?}; generic: string fields.
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
        )
