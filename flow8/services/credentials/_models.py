"""Credentials as the rest of flow8 sees them: never holding the secret data itself."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs


@attrs.frozen
class OAuthStatus:
    """Where an oauth2 credential's connection stands (never its tokens): `status` is
    `connected`, `needs_reauth` (the provider refused its refresh token or client: connect it
    again; `problem` says how) or `not_connected` (no access token yet)."""

    status: str
    expires_at: datetime | None = None
    connected_at: datetime | None = None
    refreshed_at: datetime | None = None
    problem: str | None = None

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> OAuthStatus:
        state: Mapping[str, Any] = doc.get("oauth") or {}
        status = state.get("status")
        if status is None:
            status = "connected" if "accessToken" in doc.get("fields", ()) else "not_connected"
        return cls(
            status,
            state.get("expires_at"),
            state.get("connected_at"),
            state.get("refreshed_at"),
            state.get("problem"),
        )


@attrs.frozen
class Credential:
    """A stored credential without its data: `fields` names the data keys it holds."""

    id: str
    name: str
    type: str
    description: str | None
    fields: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    updated_by: str | None
    oauth: OAuthStatus | None = None  # oauth2 credentials only

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Credential:
        return cls(
            doc["_id"],
            doc["name"],
            doc["type"],
            doc.get("description"),
            tuple(doc.get("fields", ())),
            doc["created_at"],
            doc["updated_at"],
            doc.get("created_by"),
            doc.get("updated_by"),
            OAuthStatus.from_doc(doc) if doc["type"] == "oauth2" else None,
        )

    def summary(self) -> dict[str, Any]:
        """What the audit trail records of a credential: everything but the data values."""
        return {
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "fields": list(self.fields),
        }


@attrs.frozen
class CredentialChange:
    """The outcome of an update: the credential before and after, and the names of the data
    fields whose values were added, replaced or removed (never the values)."""

    before: Credential
    after: Credential
    changed_fields: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.before != self.after or bool(self.changed_fields)
