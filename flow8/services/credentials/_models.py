"""Credentials as the rest of flow8 sees them: never holding the secret data itself."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs


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
