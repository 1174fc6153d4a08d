"""The TypeScript MCP SDK's client (pinned in ts_client/package-lock.json; `.ci/run` installs
it with `npm ci`) against the MCP server: connect over Streamable HTTP with a bearer header,
list the tools, call a flow tool, read the result. Skipped, saying why, without node or
without the installed client."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import trio
from mcp_fixtures import mcp_env, route

CLIENT_DIR = Path(__file__).parent / "ts_client"


def _skip_reason() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (CLIENT_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        return "run `npm ci --prefix tests/mcp/ts_client` (.ci/run does) to install the client"
    return None


_WHY_NOT = _skip_reason()
pytestmark = [
    pytest.mark.wall_clock,
    pytest.mark.skipif(_WHY_NOT is not None, reason=f"TypeScript MCP client: {_WHY_NOT}"),
]


async def _run_client(*args: str) -> dict[str, object]:
    node = shutil.which("node")
    assert node is not None
    with trio.fail_after(60):
        done = await trio.run_process(
            [node, str(CLIENT_DIR / "client.mjs"), *args],
            cwd=CLIENT_DIR,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    out: dict[str, object] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return out


async def test_the_typescript_sdk_client_lists_and_calls_a_flow_tool(tmp_path: Path) -> None:
    async with mcp_env(tmp_path) as env:
        env.routes.add(env.acme, route("double", "double_it", env.flows["double"].id))
        out = await _run_client(env.url, env.owner_key, "double_it", json.dumps({"n": 7}))
        assert out["called"] == "double_it"
        assert out["isError"] is False
        assert out["structured"] == {"doubled": 14}
        assert json.loads(str(out["text"])) == {"doubled": 14}
        tools = out["tools"]
        assert isinstance(tools, list)
        assert {"double_it", "run_flow", "list_flows"} <= set(tools)
        # A JWT works the same way.
        out = await _run_client(env.url, env.token(), "double_it", json.dumps({"n": 1}))
        assert out["structured"] == {"doubled": 2}


async def test_the_typescript_sdk_client_is_refused_a_bad_token(tmp_path: Path) -> None:
    async with mcp_env(tmp_path) as env:
        node = shutil.which("node")
        assert node is not None
        with trio.fail_after(60):
            done = await trio.run_process(
                [node, str(CLIENT_DIR / "client.mjs"), env.url, env.token(aud="http://x/mcp")],
                cwd=CLIENT_DIR,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        assert done.returncode != 0
        assert b"401" in done.stderr or b"Unauthorized" in done.stderr
