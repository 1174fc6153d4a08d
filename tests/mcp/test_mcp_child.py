"""The MCP server as the ``mcp`` child of a supervision tree: started = listening, serving
agents, and stopped politely (open sessions closed) when the tree stops."""

from __future__ import annotations

import socket

import pytest
import trio
from mcp_fixtures import McpEnv, _free_port

import actors
from flow8.mcp import McpApp, McpSettings, mcp_child

pytestmark = pytest.mark.wall_clock


async def test_the_mcp_child_serves_until_the_tree_stops(env: McpEnv) -> None:
    assert env.deps is not None
    port = _free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    app = McpApp(McpSettings.of(port=port, public_url=url), env.identity, env.deps)
    root = actors.SupervisorSpec([mcp_child(app, "127.0.0.1", port, graceful_timeout=1.0)])
    with trio.fail_after(20):
        async with actors.open_runtime(root) as runtime:
            assert runtime.tree()["children"][0]["name"] == "mcp"
            # An open session (its GET stream too) does not hold the stop up.
            async with env.session(env.owner_key, url=url) as s:
                assert {t.name for t in (await s.list_tools()).tools} >= {"run_flow"}
                started = trio.current_time()
                await runtime.stop()
            assert trio.current_time() - started < 3.0
    # The port is closed once the tree has stopped.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
