"""The MCP server as deployed, for its tests: Hypercorn on a free loopback port serving
flow8's MCP app over a real sqlite store, with the audit writer and the engine running; two
companies, an owner, a viewer, API keys with and without the ``mcp`` scope, and flows.

Channel routes come from ``RoutesTwin``: a small in-memory stand-in for the channels
service's ``mcp_routes`` (the one method the MCP server uses)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx2
import jwt
import trio
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from support.waits import wait_until

from flow8.domain import Flow
from flow8.engine import Engine
from flow8.events import EventBus
from flow8.mcp import McpApp, McpDeps, McpSettings, serve_mcp
from flow8.modules import default_registry
from flow8.services.audit import AuditLog, StoreAuditSink
from flow8.services.channels._models import AuthMode, Channel, ChannelKind, Route
from flow8.services.events import EventService
from flow8.services.flows import FlowRepository, FlowService
from flow8.services.identity import (
    Argon2Params,
    IdentityService,
    Passwords,
    Principal,
    Role,
)
from flow8.services.kv import KvStore
from flow8.services.modules import ModuleCatalog
from flow8.services.plays import PlayService
from flow8.store import Store, open_store

JWT_SECRET = "test-mcp-jwt-secret-0123456789abcdef"
ISSUER = "flow8"
ORIGIN_OK = "https://agents.example.com"

DOUBLE_FLOW = {
    "name": "double",
    "description": "doubles n",
    "inputSchema": {
        "type": "object",
        "properties": {"n": {"type": "number"}},
        "required": ["n"],
    },
    "flowlets": [
        {"ref": "double", "appId": "set", "args": {"value": {"doubled": "{{ $prev.args.n * 2 }}"}}},
    ],
}
SLOW_FLOW = {
    "name": "slow",
    "flowlets": [
        {"ref": "one", "appId": "set", "args": {"value": 1}},
        {"ref": "nap", "appId": "delay", "args": {"ms": 300}},
        {"ref": "three", "appId": "set", "args": {"value": {"steps": 3}}},
    ],
}
FAILING_FLOW = {
    "name": "failing",
    "flowlets": [{"ref": "boom", "appId": "fail", "args": {"message": "it broke"}}],
}


@attrs.define
class RoutesTwin:
    """``ChannelService.mcp_routes`` in memory: the routes of enabled mcp channels."""

    channels: list[Channel] = attrs.field(factory=list)

    def add(self, company_id: str, *routes: Route, enabled: bool = True) -> Channel:
        channel = Channel(
            id=f"ch{len(self.channels) + 1}",
            company_id=company_id,
            name=f"mcp {len(self.channels) + 1}",
            kind=ChannelKind.MCP,
            auth_mode=AuthMode.PUBLIC,
            enabled=enabled,
            port=None,
            routes=routes,
        )
        self.channels.append(channel)
        return channel

    async def mcp_routes(self, company_id: str) -> list[tuple[Channel, Route]]:
        return [
            (c, r)
            for c in self.channels
            if c.company_id == company_id and c.enabled and c.kind is ChannelKind.MCP
            for r in c.routes
        ]


def route(name: str, tool: str, *flow_ids: str, **extra: Any) -> Route:
    return Route(
        id=f"r-{name}",
        name=name,
        http_method="POST",
        path="/",
        target_flow_ids=flow_ids,
        tool_name=tool,
        **extra,
    )


@attrs.define
class McpEnv:
    url: str
    store: Store
    identity: IdentityService
    plays: PlayService
    routes: RoutesTwin
    audit: AuditLog
    acme: str = ""
    globex: str = ""
    owner_key: str = ""  # acme, mcp scope
    api_only_key: str = ""  # acme, api scope only
    viewer_key: str = ""  # acme viewer, mcp scope
    globex_key: str = ""  # globex owner, mcp scope
    owner_id: str = ""
    viewer_id: str = ""
    flows: dict[str, Flow] = attrs.field(factory=dict)
    deps: McpDeps | None = None

    def token(self, **overrides: Any) -> str:
        """A valid JWT for the owner in acme, with ``overrides`` applied (None removes)."""
        claims: dict[str, Any] = {
            "sub": self.owner_id,
            "company_id": self.acme,
            "iss": ISSUER,
            "aud": self.url,
            "exp": int(time.time()) + 300,
            "iat": int(time.time()),
        }
        secret = overrides.pop("secret", JWT_SECRET)
        algorithm = overrides.pop("algorithm", "HS256")
        for k, v in overrides.items():
            if v is None:
                claims.pop(k, None)
            else:
                claims[k] = v
        return jwt.encode(claims, secret, algorithm=algorithm)

    def http(self, token: str | None = None, **headers: str) -> httpx2.AsyncClient:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60))

    @contextlib.asynccontextmanager
    async def session(self, token: str, url: str | None = None) -> AsyncIterator[ClientSession]:
        """An initialized SDK client session over Streamable HTTP with ``token``."""
        async with (
            self.http(token) as client,
            streamable_http_client(url or self.url, http_client=client) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session

    async def audit_entries(self, action: str = "mcp_tool_call") -> list[dict[str, Any]]:
        await self.audit.flush()
        docs: list[dict[str, Any]] = []
        for company in (self.acme, self.globex):
            coll = self.store.tenant(company).collection("audit_logs")
            docs.extend(await coll.find({"action": action}, sort=[("created_at", 1)]))
        return docs


@contextlib.asynccontextmanager
async def mcp_env(tmp_path: Path, **settings: Any) -> AsyncIterator[McpEnv]:
    async with (
        open_store(
            f"sqlite:///{tmp_path / 'flow8.db'}", data_dir=tmp_path, durability="normal"
        ) as store,
        trio.open_nursery() as nursery,
    ):
        audit = AuditLog(StoreAuditSink(store))
        await nursery.start(audit.serve)
        identity = IdentityService(
            store,
            audit=audit.record,
            passwords=Passwords(Argon2Params(memory_kib=1024, iterations=1)),
        )
        bus = EventBus()
        registry = default_registry()
        flows_repo = FlowRepository(store, registry)
        engine = Engine(store, bus, None, registry, flows=flows_repo, kv=KvStore(store))
        await nursery.start(bus.serve)
        await nursery.start(engine.serve)
        plays = PlayService(engine)
        routes = RoutesTwin()
        flows = FlowService(flows_repo)
        deps = McpDeps(
            flows=flows,
            plays=plays,
            modules=ModuleCatalog(registry),
            events=EventService(bus),
            audit=audit.record,
            channels=routes,
        )
        port = _free_port()
        app = McpApp(
            McpSettings.of(
                port=port,
                public_url=settings.pop("public_url", f"http://127.0.0.1:{port}/mcp"),
                allowed_origins=settings.pop("allowed_origins", (ORIGIN_OK,)),
                jwt_secret=settings.pop("jwt_secret", JWT_SECRET),
                jwt_issuer=ISSUER,
            ),
            identity,
            deps,
        )
        await nursery.start(
            lambda task_status: serve_mcp(
                app, "127.0.0.1", port, graceful_timeout=1.0, task_status=task_status
            )
        )
        env = McpEnv(f"http://127.0.0.1:{port}/mcp", store, identity, plays, routes, audit)
        env.deps = deps
        await _populate(env, flows)
        try:
            yield env
        finally:
            nursery.cancel_scope.cancel()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _populate(env: McpEnv, flows: FlowService) -> None:
    identity = env.identity
    owner, acme = await identity.install("Acme", "owner@example.com", "owner-password-1")
    env.owner_id, env.acme = owner.id, acme.id
    at_acme = Principal(owner, acme.id, Role.OWNER, "session")
    globex = await identity.create_company(at_acme, "Globex")
    env.globex = globex.id
    at_globex = Principal(owner, globex.id, Role.OWNER, "session")
    env.owner_key = (await identity.create_api_key(at_acme, "agent", ["mcp"])).key
    env.api_only_key = (await identity.create_api_key(at_acme, "rest", ["api"])).key
    env.globex_key = (await identity.create_api_key(at_globex, "globex agent", ["mcp"])).key
    invited = await identity.invite(at_acme, "viewer@example.com", Role.VIEWER)
    assert invited.token is not None
    joined = await identity.accept_invitation(
        invited.token, "viewer-password-1", ip="127.0.0.1", user_agent="test"
    )
    env.viewer_id = joined.principal.user.id
    viewer = Principal(joined.principal.user, acme.id, Role.VIEWER, "session")
    env.viewer_key = (await identity.create_api_key(viewer, "viewer agent", ["mcp"])).key
    for name, data in (("double", DOUBLE_FLOW), ("slow", SLOW_FLOW), ("failing", FAILING_FLOW)):
        env.flows[name] = await flows.create(acme.id, data)
    env.flows["globex"] = await flows.create(globex.id, {**DOUBLE_FLOW, "name": "secret double"})


def structured(result: Any) -> Mapping[str, Any]:
    value = result.structuredContent if hasattr(result, "structuredContent") else None
    return value if value is not None else result.structured_content


def text_of(result: Any) -> str:
    return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def wait_for_state(env: McpEnv, company: str, play_id: str, state: str) -> None:
    async def reached() -> bool:
        play = await env.plays.get(company, play_id)
        return play.state.value == state

    await wait_until(reached, timeout=10)


def now() -> datetime:
    return datetime.now(UTC)
