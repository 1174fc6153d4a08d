"""A client on the 2026-07-28 protocol (the SDK's ``Client`` in its default ``auto`` mode:
``server/discover`` and the per-request envelope, no session) gets the same tools, results and
refusals as a handshake-era one."""

from __future__ import annotations

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_fixtures import McpEnv, route, structured
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

pytestmark = pytest.mark.wall_clock


async def test_a_modern_client_lists_and_calls_per_caller(env: McpEnv) -> None:
    env.routes.add(env.acme, route("double", "double_it", env.flows["double"].id))
    async with (
        env.http(env.owner_key) as http,
        Client(streamable_http_client(env.url, http_client=http)) as client,
    ):
        assert client.protocol_version in MODERN_PROTOCOL_VERSIONS
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"double_it", "run_flow", "approve_play"} <= names
        result = await client.call_tool("double_it", {"n": 4})
        assert structured(result) == {"doubled": 8}
    async with (
        env.http(env.viewer_key) as http,
        Client(streamable_http_client(env.url, http_client=http)) as client,
    ):
        names = {t.name for t in (await client.list_tools()).tools}
        assert "double_it" not in names
        assert "run_flow" not in names
        refused = await client.call_tool("double_it", {"n": 4})
        assert refused.is_error
