"""API bodies of the channel routes. These shapes say what may be sent; the service checks
the values (token length, path syntax, tool names, target flows, ...) and names the field at
fault. Answers are the service's ``summary()``: secrets are named in ``secretFields``, never
shown."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import attrs

from flow8.domain import field, rules
from flow8.services.channels import (
    DESCRIPTION_MAX,
    MAX_CONNECTIONS_MAX,
    NAME_MAX,
    RATE_MAX,
    TARGETS_MAX,
    TIMEOUT_MAX,
    Channel,
    Route,
)

Kind = Literal["http", "ws", "tcp", "mcp"]
AuthModeName = Literal["public", "header_token", "hmac"]
Algorithm = Literal["sha256", "sha1"]
Style = Literal["plain", "stripe", "slack"]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Mode = Literal["sync", "async"]
TOOL_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"


@attrs.frozen
class HmacIn:
    """`header`: where the signature comes (e.g. `X-Hub-Signature-256`; the stripe and slack
    styles default to their own header); `secret`: the shared secret (8+ characters; null
    removes it on update); `prefix`: text before the hex digest (e.g. `sha256=`)."""

    header: str | None = None
    secret: str | None = None
    algorithm: Algorithm | None = None
    prefix: str | None = None
    style: Style | None = None


@attrs.frozen
class ChannelCreate:
    """`authToken` (header_token: 16+ characters, sent as `Authorization: Bearer`) and
    `hmac.secret` are stored encrypted and never shown again. An http, ws or tcp channel is
    answered with the port allocated to it; an mcp channel has none."""

    kind: Kind
    name: str = field(min_length=1, max_length=NAME_MAX, not_blank=True)
    auth_mode: AuthModeName = "public"
    auth_token: str | None = None
    hmac: HmacIn | None = None
    enabled: bool = True
    max_connections: int | None = field(default=None, minimum=1, maximum=MAX_CONNECTIONS_MAX)
    rate_per_second: float | None = field(default=None, exclusive_minimum=0, maximum=RATE_MAX)


@attrs.frozen
class ChannelUpdate:
    """Every field optional: an absent field keeps its value; `authToken: null` or
    `hmac.secret: null` removes the secret. `kind` cannot change."""

    name: str | None = field(default=None, min_length=1, max_length=NAME_MAX, not_blank=True)
    kind: Kind | None = None
    auth_mode: AuthModeName | None = None
    auth_token: str | None = None
    hmac: HmacIn | None = None
    enabled: bool | None = None
    max_connections: int | None = field(default=None, minimum=1, maximum=MAX_CONNECTIONS_MAX)
    rate_per_second: float | None = field(default=None, exclusive_minimum=0, maximum=RATE_MAX)


@attrs.frozen
class RouteCreate:
    """`path` starts with `/`; a whole segment `{name}` is a path parameter. `toolName` is
    required for (and only for) mcp channels. `targetFlowIds`: 1 to 10 flows of the company."""

    target_flow_ids: list[str] = attrs.field(metadata=rules(min_items=1, max_items=TARGETS_MAX))
    name: str = field(min_length=1, max_length=NAME_MAX, not_blank=True)
    http_method: Method = "POST"
    path: str = "/"
    response_mode: Mode = "sync"
    timeout_seconds: float = field(default=30.0, exclusive_minimum=0, maximum=TIMEOUT_MAX)
    tool_name: str | None = field(default=None, pattern=TOOL_PATTERN)
    description: str = field(default="", max_length=DESCRIPTION_MAX)
    require_approval: bool = False


@attrs.frozen
class RouteUpdate:
    """Every field optional: an absent field keeps its value."""

    name: str | None = field(default=None, min_length=1, max_length=NAME_MAX, not_blank=True)
    http_method: Method | None = None
    path: str | None = None
    target_flow_ids: list[str] | None = attrs.field(
        default=None, metadata=rules(min_items=1, max_items=TARGETS_MAX)
    )
    response_mode: Mode | None = None
    timeout_seconds: float | None = field(default=None, exclusive_minimum=0, maximum=TIMEOUT_MAX)
    tool_name: str | None = field(default=None, pattern=TOOL_PATTERN)
    description: str | None = field(default=None, max_length=DESCRIPTION_MAX)
    require_approval: bool | None = None


@attrs.frozen
class HmacOut:
    header: str
    algorithm: str
    prefix: str
    style: str


@attrs.frozen
class RouteOut:
    id: str
    name: str
    http_method: str
    path: str
    target_flow_ids: list[str]
    response_mode: str
    timeout_seconds: float
    tool_name: str | None
    description: str
    require_approval: bool

    @classmethod
    def of(cls, r: Route) -> RouteOut:
        return cls(
            id=r.id,
            name=r.name,
            http_method=r.http_method,
            path=r.path,
            target_flow_ids=list(r.target_flow_ids),
            response_mode=r.response_mode.value,
            timeout_seconds=r.timeout_seconds,
            tool_name=r.tool_name,
            description=r.description,
            require_approval=r.require_approval,
        )


@attrs.frozen
class RouteList:
    items: list[RouteOut]


@attrs.frozen
class ChannelOut:
    id: str
    name: str
    kind: str
    auth_mode: str
    enabled: bool
    port: int | None  # the listening port (http, ws, tcp); null for mcp channels
    hmac: HmacOut | None
    max_connections: int
    rate_per_second: float
    routes: list[RouteOut]
    secret_fields: list[str]  # the secrets held (authToken, hmac.secret), never their values
    rev: int
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, c: Channel) -> ChannelOut:
        s = c.summary()
        hmac = s["hmac"]
        return cls(
            id=s["id"],
            name=s["name"],
            kind=s["kind"],
            auth_mode=s["authMode"],
            enabled=s["enabled"],
            port=s["port"],
            hmac=HmacOut(**hmac) if hmac is not None else None,
            max_connections=s["maxConnections"],
            rate_per_second=s["ratePerSecond"],
            routes=[RouteOut.of(r) for r in c.routes],
            secret_fields=list(s["secretFields"]),
            rev=s["rev"],
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


@attrs.frozen
class ChannelList:
    items: list[ChannelOut]
