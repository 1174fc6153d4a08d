"""A stored component config as the service hands it out: its secret fields named, never
shown."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs


@attrs.frozen
class Component:
    id: str
    name: str
    kind: str
    provider: str
    config: Mapping[str, Any]  # the fields that are not secret
    secret_fields: tuple[str, ...]  # names of the secret fields held; values never shown
    is_default: bool
    created_at: datetime
    updated_at: datetime
    rev: int = 1

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Component:
        return cls(
            id=doc["_id"],
            name=doc["name"],
            kind=doc["kind"],
            provider=doc["provider"],
            config=dict(doc.get("config") or {}),
            secret_fields=tuple(doc.get("secret_names") or ()),
            is_default=bool(doc.get("is_default")),
            created_at=doc["created_at"],
            updated_at=doc.get("updated_at", doc["created_at"]),
            rev=int(doc.get("rev") or 1),
        )

    def summary(self) -> dict[str, Any]:
        """For the audit log: what changed, secret fields by name only."""
        return {
            "name": self.name,
            "kind": self.kind,
            "provider": self.provider,
            "config": dict(self.config),
            "secretFields": list(self.secret_fields),
            "isDefault": self.is_default,
        }
