"""Fixtures of the MCP server tests (real sockets and a sqlite store: the real clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp_fixtures import McpEnv, mcp_env

# The SDK client (httpx2 under Trio) leaves its SSE response streams to the garbage collector
# when a session closes; a client-side leak of the test's own client, not the server's.
_CLIENT_STREAM_GC = (
    "ignore:Exception ignored in. <async_generator object "
    "(HTTP11ConnectionByteStream|Response.aiter_|EventSource|BoundAsyncStream)"
    ":pytest.PytestUnraisableExceptionWarning"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.filterwarnings(_CLIENT_STREAM_GC))


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[McpEnv]:
    async with mcp_env(tmp_path) as e:
        yield e
