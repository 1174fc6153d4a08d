"""The MCP server over the real channels service: a route added to an enabled mcp channel
through ``ChannelService`` becomes a tool of that company; disabling the channel removes it."""

from __future__ import annotations

import attrs
import pytest
import trio
from mcp_fixtures import McpEnv, _free_port, structured

from flow8.config import PortRange
from flow8.mcp import McpApp, McpSettings, serve_mcp
from flow8.services.channels import ChannelService

pytestmark = pytest.mark.wall_clock


async def test_routes_of_the_real_channel_service_are_tools(env: McpEnv) -> None:
    assert env.deps is not None
    channels = ChannelService(env.store, env.deps.flows.repository, PortRange(7701, 7799))
    port = _free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    app = McpApp(
        McpSettings.of(port=port, public_url=url),
        env.identity,
        attrs.evolve(env.deps, channels=channels),
    )
    channel = await channels.create(
        env.acme, {"name": "agents", "kind": "mcp", "authMode": "public", "enabled": True}
    )
    await channels.add_route(
        env.acme,
        channel.id,
        {
            "name": "double",
            "targetFlowIds": [env.flows["double"].id],
            "toolName": "double_it",
            "description": "Doubles n",
        },
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_mcp, app, "127.0.0.1", port)
        async with env.session(env.owner_key, url=url) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert tools["double_it"].description == "Doubles n"
            assert tools["double_it"].input_schema["required"] == ["n"]
            assert structured(await s.call_tool("double_it", {"n": 9})) == {"doubled": 18}
            await channels.update(env.acme, channel.id, {"enabled": False})
            assert "double_it" not in {t.name for t in (await s.list_tools()).tools}
            assert (await s.call_tool("double_it", {"n": 1})).is_error
        # Another company never sees it.
        async with env.session(env.globex_key, url=url) as s:
            assert "double_it" not in {t.name for t in (await s.list_tools()).tools}
        nursery.cancel_scope.cancel()
