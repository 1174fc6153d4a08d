"""A stored channel and its routes, as the channels service hands them out.

A channel is one way in from outside: an ``http``, ``ws`` or ``tcp`` listener on a port of
its own (allocated from ``CHANNEL_PORT_RANGE``), or an ``mcp`` channel whose routes are tools
of the MCP server (port ``MCP_PORT``; an mcp channel has no port). Routes live inside their
channel's document: a channel and its routes change together, and one read gives a channel
actor everything it serves.

Secrets (the bearer token, the HMAC secret) are held here for the listeners that check
them and are never part of ``summary()``, which is what answers and audit entries show.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs


class ChannelKind(enum.StrEnum):
    HTTP = "http"
    WS = "ws"
    TCP = "tcp"
    MCP = "mcp"

    @property
    def listens(self) -> bool:
        """Whether the channel owns a listening socket (an mcp channel is served on MCP_PORT)."""
        return self is not ChannelKind.MCP


class AuthMode(enum.StrEnum):
    PUBLIC = "public"
    HEADER_TOKEN = "header_token"  # Authorization: Bearer <authToken>, compared in constant time
    HMAC = "hmac"  # a signature over the raw body (see HmacSettings)


class HmacStyle(enum.StrEnum):
    """How a sender signs. ``plain``: ``<prefix><hex digest of the body>`` in ``header``
    (GitHub: ``X-Hub-Signature-256``, prefix ``sha256=``). ``stripe``: ``Stripe-Signature:
    t=<unix>,v1=<hex of "<t>.<body>">``. ``slack``: ``X-Slack-Signature: v0=<hex of
    "v0:<X-Slack-Request-Timestamp>:<body>">``. Timestamped styles refuse a signature more
    than 5 minutes old (replays)."""

    PLAIN = "plain"
    STRIPE = "stripe"
    SLACK = "slack"


class ResponseMode(enum.StrEnum):
    SYNC = "sync"  # answer the play's result (or 202 with its id past timeoutSeconds)
    ASYNC = "async"  # answer 202 {playId, status: "queued"} at once


@attrs.frozen
class HmacSettings:
    header: str
    algorithm: str  # sha256 | sha1
    prefix: str = ""
    style: HmacStyle = HmacStyle.PLAIN
    secret: str = attrs.field(default="", repr=False)

    def summary(self) -> dict[str, Any]:
        return {
            "header": self.header,
            "algorithm": self.algorithm,
            "prefix": self.prefix,
            "style": self.style.value,
        }


@attrs.frozen
class Route:
    """One route: a request (http: method + path; ws/tcp: the message's ``route`` = name;
    mcp: the tool ``tool_name``) starts a play of each target flow."""

    id: str
    name: str
    http_method: str  # GET POST PUT PATCH DELETE (http channels; "POST" elsewhere)
    path: str  # "/orders/{id}": {name} segments become params (http channels)
    target_flow_ids: tuple[str, ...]
    response_mode: ResponseMode = ResponseMode.SYNC
    timeout_seconds: float = 30.0
    tool_name: str | None = None  # mcp channels: the tool's name
    description: str = ""
    require_approval: bool = False  # mcp: the play waits for a human before its first step

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Route:
        return cls(
            id=doc["id"],
            name=doc["name"],
            http_method=doc.get("http_method") or "POST",
            path=doc.get("path") or "/",
            target_flow_ids=tuple(doc.get("target_flow_ids") or ()),
            response_mode=ResponseMode(doc.get("response_mode") or "sync"),
            timeout_seconds=float(doc.get("timeout_seconds") or 30.0),
            tool_name=doc.get("tool_name"),
            description=doc.get("description") or "",
            require_approval=bool(doc.get("require_approval", False)),
        )

    def to_doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "http_method": self.http_method,
            "path": self.path,
            "target_flow_ids": list(self.target_flow_ids),
            "response_mode": self.response_mode.value,
            "timeout_seconds": self.timeout_seconds,
            "tool_name": self.tool_name,
            "description": self.description,
            "require_approval": self.require_approval,
        }

    def summary(self) -> dict[str, Any]:
        """The API's (camelCase) rendering, for answers and the audit log."""
        return {
            "id": self.id,
            "name": self.name,
            "httpMethod": self.http_method,
            "path": self.path,
            "targetFlowIds": list(self.target_flow_ids),
            "responseMode": self.response_mode.value,
            "timeoutSeconds": self.timeout_seconds,
            "toolName": self.tool_name,
            "description": self.description,
            "requireApproval": self.require_approval,
        }


@attrs.frozen
class Channel:
    """``rev`` grows with every change (the channels supervisor restarts a channel's actor
    when its rev moves). ``port`` is None for mcp channels."""

    id: str
    company_id: str
    name: str
    kind: ChannelKind
    auth_mode: AuthMode
    enabled: bool
    port: int | None
    routes: tuple[Route, ...] = ()
    hmac: HmacSettings | None = None
    auth_token: str | None = attrs.field(default=None, repr=False)
    # Per-channel limits (the service fills the configured defaults).
    max_connections: int = 100
    rate_per_second: float = 50.0  # per client address; bursts of rate_per_second * 2
    created_at: datetime | None = None
    updated_at: datetime | None = None
    rev: int = 1

    def route_named(self, name: str) -> Route | None:
        return next((r for r in self.routes if r.name == name), None)

    def summary(self) -> dict[str, Any]:
        """The API's rendering without any secret: the secrets are named, never shown."""
        secret_fields = []
        if self.auth_token:
            secret_fields.append("authToken")
        if self.hmac is not None and self.hmac.secret:
            secret_fields.append("hmac.secret")
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind.value,
            "authMode": self.auth_mode.value,
            "enabled": self.enabled,
            "port": self.port,
            "hmac": self.hmac.summary() if self.hmac is not None else None,
            "maxConnections": self.max_connections,
            "ratePerSecond": self.rate_per_second,
            "routes": [r.summary() for r in self.routes],
            "secretFields": secret_fields,
            "rev": self.rev,
        }
