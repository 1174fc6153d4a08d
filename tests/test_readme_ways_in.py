"""The README's channel and MCP examples run as written against a real `flow8 serve`: the
webhook script in bash (curl, openssl, python3), the WebSocket client in Python, and the MCP
client configuration read by the official MCP SDK client."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.serving import flow8_serve

README = Path(__file__).parents[1] / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.index("\n## ", start + 4)
    return text[start:end]


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A running `flow8 serve` with an owner; answers its base URL, an API key with the api
    and mcp scopes, and the MCP port."""
    with flow8_serve(tmp_path) as server:
        base = server["base"]
        owner = {"company": "Acme", "email": "ops@example.com", "password": "a-long-password"}
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.post("/api/install", json=owner).status_code in (200, 201)
            login = client.post(
                "/api/auth/login", json={k: owner[k] for k in ("email", "password")}
            )
            csrf = {"X-CSRF-Token": login.json()["csrfToken"]}
            made = client.post(
                "/api/auth/api-keys", json={"name": "readme", "scopes": ["api", "mcp"]},
                headers=csrf,
            )  # fmt: skip
            assert made.status_code == 201, made.text
        yield {"base": base, "key": made.json()["key"], "mcp_port": server["mcp_port"]}


@pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "curl", "openssl", "python3")),
    reason="the README's webhook script needs bash, curl, openssl and python3",
)
def test_the_readme_webhook_script_runs_as_written(served: dict[str, str]) -> None:
    (script,) = _blocks(_section("Channels"), "bash")
    assert script.startswith("FLOW8=http://localhost:4454\n")
    script = script.replace("FLOW8=http://localhost:4454", f"FLOW8={served['base']}", 1)
    run = subprocess.run(
        ["bash", "-c", script], env={**os.environ, "KEY": served["key"]},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    expected = [line[2:] for line in script.splitlines() if line.startswith("# {")]
    assert run.stdout.splitlines() == expected


def test_the_readme_websocket_client_runs_as_written(served: dict[str, str]) -> None:
    (client,) = _blocks(_section("Channels"), "python")
    auth = {"Authorization": f"Bearer {served['key']}"}
    with httpx.Client(base_url=served["base"], headers=auth, timeout=10) as api:
        flow = {"name": "hello", "flowlets": [
            {"ref": "greet", "appId": "template", "args": {"text": "Hello {{ $prev.args.name }}!"}}
        ]}  # fmt: skip
        flow_id = api.post("/api/flows", json=flow).json()["id"]
        channel = api.post("/api/channels", json={"name": "live", "kind": "ws"}).json()
        route = {"name": "hello", "targetFlowIds": [flow_id]}
        assert api.post(f"/api/channels/{channel['id']}/routes", json=route).status_code == 201
    assert "trio.run(main, 7702)" in client
    program = client.replace("trio.run(main, 7702)", f"trio.run(main, {channel['port']})")
    deadline = time.monotonic() + 5  # the listener starts within a second of the change
    while True:
        run = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, timeout=30
        )
        if run.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "event play:started"
    assert "'result': {'text': 'Hello Ada!'}" in lines[-1]


MCP_CLIENT = """
import json, sys, trio, httpx
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

server = json.loads(sys.argv[1])["mcpServers"]["flow8"]

async def main():
    async with (
        httpx.AsyncClient(headers=server["headers"]) as http,
        streamable_http_client(server["url"], http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        print(json.dumps(sorted(t.name for t in tools.tools)))
        flows = await session.call_tool("list_flows", {})
        print(json.dumps(flows.structured_content))

trio.run(main)
"""


def test_the_readme_mcp_client_config_connects_as_written(served: dict[str, str]) -> None:
    (block,) = _blocks(_section("MCP"), "json")
    assert "http://localhost:4445/mcp" in block
    assert "Bearer f8k_..." in block
    config = block.replace("localhost:4445", f"localhost:{served['mcp_port']}").replace(
        "f8k_...", served["key"]
    )
    run = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", MCP_CLIENT, config],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    tools, flows = (json.loads(line) for line in run.stdout.splitlines()[-2:])
    assert {"list_flows", "run_flow", "get_play", "approve_play"} <= set(tools)
    assert isinstance(flows, dict)
