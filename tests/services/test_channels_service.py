"""ChannelService against a real sqlite store: race-safe port claims, the block running out,
ports released and reused, secrets encrypted at rest, on_change on every change, optimistic
route writes, the cross-tenant listener read and the MCP tools read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio

from flow8.config import PortRange
from flow8.domain import Flow
from flow8.modules import default_registry
from flow8.services.channels import (
    ChannelKind,
    ChannelNotFound,
    ChannelService,
    InvalidChannel,
    PortsExhausted,
    RouteTaken,
)
from flow8.services.flows import FlowRepository, FlowService
from flow8.store import Store, open_store

TOKEN = "canary-token-5b2e7c91d4"
HMAC_SECRET = "canary-hmac-8e1f0a"
FLOW = {"name": "hook", "flowlets": [{"ref": "a", "appId": "noop"}]}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'ch.db'}", data_dir=tmp_path) as opened:
        yield opened


def _service(store: Store, first: int = 7701, last: int = 7799, **kw: object) -> ChannelService:
    flows = FlowRepository(store, default_registry())
    return ChannelService(store, flows, PortRange(first, last), **kw)  # type: ignore[arg-type]


async def _flow(service: ChannelService, company: str = "acme") -> Flow:
    return await FlowService(service.flows).create(company, FLOW)


async def test_concurrent_creates_never_share_a_port(store: Store) -> None:
    # Two services over one database stand for two processes: each claims through the store.
    a, b = _service(store), _service(store)
    made: list[int | None] = []

    async def create(service: ChannelService, i: int) -> None:
        channel = await service.create("acme", {"name": f"c{i}", "kind": "http"})
        made.append(channel.port)

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(create, a if i % 2 else b, i)
    assert len(made) == 20
    assert len(set(made)) == 20
    assert sorted(p for p in made if p is not None) == list(range(7701, 7721))


async def test_a_full_block_is_refused_and_a_deleted_channels_port_is_reused(
    store: Store,
) -> None:
    service = _service(store, 9001, 9002)
    one = await service.create("acme", {"name": "one", "kind": "http"})
    two = await service.create("globex", {"name": "two", "kind": "tcp"})
    assert (one.port, two.port) == (9001, 9002)
    mcp = await service.create("acme", {"name": "agents", "kind": "mcp"})
    assert mcp.port is None  # an mcp channel takes no port
    with pytest.raises(PortsExhausted, match="CHANNEL_PORT_RANGE"):
        await service.create("acme", {"name": "three", "kind": "ws"})
    with pytest.raises(ChannelNotFound):  # the failed create left nothing behind
        await service.get("acme", "three")
    assert [c.name for c in await service.list("acme")] == ["agents", "one"]
    await service.delete("acme", one.id)
    again = await service.create("acme", {"name": "three", "kind": "ws"})
    assert again.port == 9001


async def test_a_name_taken_releases_the_claimed_port(store: Store) -> None:
    service = _service(store, 9001, 9002)
    await service.create("acme", {"name": "one", "kind": "http"})
    with pytest.raises(Exception, match="name"):
        await service.create("acme", {"name": "one", "kind": "http"})
    other = await service.create("acme", {"name": "two", "kind": "http"})
    assert other.port == 9002


async def test_secrets_are_encrypted_at_rest_and_loaded_for_listeners(
    store: Store, tmp_path: Path
) -> None:
    service = _service(store)
    await service.create(
        "acme", {"name": "tok", "kind": "http", "authMode": "header_token", "authToken": TOKEN}
    )
    await service.create(
        "acme",
        {
            "name": "gh",
            "kind": "ws",
            "authMode": "hmac",
            "hmac": {"header": "X-Hub-Signature-256", "secret": HMAC_SECRET, "prefix": "sha256="},
        },
    )
    await service.create("globex", {"name": "off", "kind": "tcp", "enabled": False})
    await service.create("globex", {"name": "agents", "kind": "mcp"})
    raw = _database_bytes(tmp_path)
    assert TOKEN.encode() not in raw
    assert HMAC_SECRET.encode() not in raw
    listening = {c.name: c for c in await service.listeners()}
    assert sorted(listening) == ["gh", "tok"]  # not the disabled one, not the mcp one
    assert listening["tok"].auth_token == TOKEN
    hmac = listening["gh"].hmac
    assert hmac is not None
    assert (hmac.secret, hmac.algorithm, hmac.prefix) == (HMAC_SECRET, "sha256", "sha256=")
    assert TOKEN not in repr(listening["tok"])
    assert TOKEN not in str(listening["tok"].summary())


async def test_on_change_is_called_for_every_change(store: Store) -> None:
    calls: list[tuple[str, str]] = []
    service = _service(store, on_change=lambda company, channel: calls.append((company, channel)))
    flow = await _flow(service)
    channel = await service.create("acme", {"name": "hook", "kind": "http"})
    assert calls == [("acme", channel.id)]
    _, route = await service.add_route(
        "acme", channel.id, {"name": "r", "targetFlowIds": [flow.id]}
    )
    await service.update_route("acme", channel.id, route.id, {"path": "/orders/{id}"})
    await service.update("acme", channel.id, {"enabled": False})
    await service.delete_route("acme", channel.id, route.id)
    await service.delete("acme", channel.id)
    assert calls == [("acme", channel.id)] * 6
    # A change that changes nothing is not a change.
    calls.clear()
    again = await service.create("acme", {"name": "hook", "kind": "http"})
    calls.clear()
    before, after = await service.update("acme", again.id, {"enabled": True})
    assert after is before
    assert calls == []


async def test_rev_grows_and_concurrent_route_adds_all_land(store: Store) -> None:
    service = _service(store)
    flow = await _flow(service)
    channel = await service.create("acme", {"name": "hook", "kind": "ws"})
    assert channel.rev == 1

    async def add(i: int) -> None:
        await service.add_route("acme", channel.id, {"name": f"r{i}", "targetFlowIds": [flow.id]})

    async with trio.open_nursery() as nursery:
        for i in range(6):
            nursery.start_soon(add, i)
    stored = await service.get("acme", channel.id)
    assert sorted(r.name for r in stored.routes) == [f"r{i}" for i in range(6)]
    assert stored.rev == 7


async def test_kind_cannot_change_and_auth_must_fit_the_mode(store: Store) -> None:
    service = _service(store)
    channel = await service.create("acme", {"name": "hook", "kind": "http"})
    with pytest.raises(InvalidChannel) as caught:
        await service.update("acme", channel.id, {"kind": "tcp"})
    assert [p.field for p in caught.value.problems] == ["kind"]
    assert "cannot change" in caught.value.problems[0].message
    with pytest.raises(InvalidChannel) as caught:
        await service.update("acme", channel.id, {"authMode": "header_token"})
    assert [p.field for p in caught.value.problems] == ["authToken"]
    _, after = await service.update(
        "acme", channel.id, {"authMode": "header_token", "authToken": TOKEN}
    )
    assert after.auth_token == TOKEN
    assert after.rev == 2
    with pytest.raises(InvalidChannel):  # removing the token of a header_token channel
        await service.update("acme", channel.id, {"authToken": None})
    _, public = await service.update("acme", channel.id, {"authMode": "public"})
    assert public.auth_token is None  # a public channel keeps no token


async def test_tool_names_are_unique_across_the_companys_mcp_channels(store: Store) -> None:
    service = _service(store)
    flow = await _flow(service)
    first = await service.create("acme", {"name": "a", "kind": "mcp"})
    second = await service.create("acme", {"name": "b", "kind": "mcp"})
    off = await service.create("acme", {"name": "c", "kind": "mcp", "enabled": False})
    body = {"name": "r", "targetFlowIds": [flow.id], "toolName": "refund"}
    await service.add_route("acme", first.id, body)
    with pytest.raises(RouteTaken) as caught:
        await service.add_route("acme", second.id, {**body, "name": "other"})
    assert caught.value.field == "toolName"
    await service.add_route("acme", off.id, {**body, "toolName": "hidden"})
    tools = await service.mcp_routes("acme")
    assert [(c.kind, r.tool_name) for c, r in tools] == [(ChannelKind.MCP, "refund")]
    assert await service.mcp_routes("globex") == []


def _database_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.glob("ch.db*"))


async def test_a_claim_left_by_a_dead_process_is_reclaimed_when_the_block_is_full(
    store: Store,
) -> None:
    service = _service(store, 9001, 9002)
    stale = datetime.now(UTC) - timedelta(minutes=5)
    ports = store.system.collection("channel_ports")
    # claimed, but the channel was never stored (the process died in between)
    await ports.insert_one(
        {"_id": "9001", "company_id": "acme", "channel_id": "gone", "claimed_at": stale}
    )
    live = await service.create("acme", {"name": "live", "kind": "http"})
    assert live.port == 9002  # the block is not full yet: the claim is respected
    # a live channel's old claim is never reclaimed
    await ports.update_one({"_id": "9002"}, {"$set": {"claimed_at": stale}})
    again = await service.create("acme", {"name": "again", "kind": "http"})
    assert again.port == 9001
    with pytest.raises(PortsExhausted):
        await service.create("acme", {"name": "more", "kind": "http"})
    assert (await service.get("acme", live.id)).port == 9002
