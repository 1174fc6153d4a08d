"""API bodies of the component routes. Answers carry a config's plain fields and the names
of its secret fields, never their values."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import attrs

from flow8.domain import JsonData, field
from flow8.services.components import NAME_MAX, Component

Kind = Literal["request", "storage", "db", "email", "console", "ai"]


@attrs.frozen
class ComponentCreate:
    """`config` is checked against the provider's schema (`GET /api/components/providers`)."""

    kind: Kind
    provider: str = field(min_length=1, max_length=64)
    name: str = field(min_length=1, max_length=NAME_MAX, not_blank=True)
    config: dict[str, Any] = attrs.field(factory=dict)
    is_default: bool = False


@attrs.frozen
class ComponentUpdate:
    """Every field optional. In `config` a value replaces that field, null removes it and an
    absent field keeps its stored value (so a password need not be sent again)."""

    name: str | None = field(default=None, min_length=1, max_length=NAME_MAX, not_blank=True)
    config: dict[str, Any] | None = None
    is_default: bool | None = None


@attrs.frozen
class ComponentQuery:
    kind: Kind | None = None


@attrs.frozen
class ComponentOut:
    id: str
    name: str
    kind: str
    provider: str
    config: JsonData  # the fields that are not secret
    secret_fields: list[str]  # names of the secret fields held; values are never shown
    is_default: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: Component) -> ComponentOut:
        return cls(
            id=c.id,
            name=c.name,
            kind=c.kind,
            provider=c.provider,
            config=JsonData(dict(c.config)),
            secret_fields=list(c.secret_fields),
            is_default=c.is_default,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


@attrs.frozen
class ComponentList:
    items: list[ComponentOut]


@attrs.frozen
class ComponentTestOut:
    ok: bool
    message: str
    duration_ms: float


@attrs.frozen
class ProviderOut:
    kind: str
    provider: str
    description: str
    config_schema: JsonData
    secret_fields: list[str]
    extra: str | None
    builtin_default: bool


@attrs.frozen
class ProviderList:
    items: list[ProviderOut]
