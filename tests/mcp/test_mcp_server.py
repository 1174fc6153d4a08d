"""The MCP server driven by the official Python SDK client over Streamable HTTP, against
Hypercorn on a loopback port: tools per caller, flow tools, plays, approvals, progress and
the audit trail."""

from __future__ import annotations

import json

import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_fixtures import (
    McpEnv,
    route,
    structured,
    text_of,
    wait_for_state,
)

from flow8.domain import PlayTrace
from flow8.services.channels._models import ResponseMode

pytestmark = pytest.mark.wall_clock

BUILT_INS = {
    "list_flows",
    "get_flow",
    "run_flow",
    "get_play",
    "list_plays",
    "list_modules",
    "approve_play",
    "reject_play",
}
READ_TOOLS = {"list_flows", "get_flow", "get_play", "list_plays", "list_modules"}


async def _names(env: McpEnv, token: str) -> set[str]:
    async with env.session(token) as s:
        return {t.name for t in (await s.list_tools()).tools}


async def test_lists_the_built_ins_and_the_company_route_tools(env: McpEnv) -> None:
    double = env.flows["double"]
    env.routes.add(env.acme, route("double", "double_it", double.id, description="Doubles n"))
    env.routes.add(env.acme, route("off", "disabled_tool", double.id), enabled=False)
    async with env.session(env.owner_key) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
    assert set(tools) == BUILT_INS | {"double_it"}
    assert tools["double_it"].description == "Doubles n"
    # The tool's input schema is its target flow's inputSchema.
    assert tools["double_it"].input_schema["properties"] == {"n": {"type": "number"}}
    assert tools["double_it"].input_schema["required"] == ["n"]


async def test_a_flow_tool_answers_the_last_step_output_structured_and_as_text(
    env: McpEnv,
) -> None:
    env.routes.add(env.acme, route("double", "double_it", env.flows["double"].id))
    async with env.session(env.owner_key) as s:
        result = await s.call_tool("double_it", {"n": 21})
    assert not result.is_error
    assert structured(result) == {"doubled": 42}
    assert json.loads(text_of(result)) == {"doubled": 42}
    plays, _ = await env.plays.list(env.acme, flow_id=env.flows["double"].id)
    assert [p.trigger.kind.value for p in plays] == ["mcp"]


async def test_an_input_that_does_not_match_the_schema_is_a_tool_error(env: McpEnv) -> None:
    env.routes.add(env.acme, route("double", "double_it", env.flows["double"].id))
    async with env.session(env.owner_key) as s:
        result = await s.call_tool("double_it", {"n": "many"})
    assert result.is_error
    assert "inputSchema" in text_of(result)


async def test_run_flow_then_get_play(env: McpEnv) -> None:
    flow = env.flows["double"]
    async with env.session(env.owner_key) as s:
        ran = await s.call_tool("run_flow", {"flowId": flow.id, "input": {"n": 5}})
        assert not ran.is_error
        assert structured(ran) == {"doubled": 10}
        listed = await s.call_tool("list_plays", {"flowId": flow.id})
        play_id = structured(listed)["plays"][0]["playId"]
        got = await s.call_tool("get_play", {"playId": play_id})
    play = structured(got)
    assert play["state"] == "DONE"
    assert play["output"] == {"doubled": 10}
    assert play["trigger"] == "mcp"


async def test_a_play_still_running_answers_its_id_and_state(env: McpEnv) -> None:
    async with env.session(env.owner_key) as s:
        ran = await s.call_tool(
            "run_flow", {"flowId": env.flows["slow"].id, "input": {}, "waitSeconds": 0}
        )
        body = structured(ran)
        assert set(body) == {"playId", "state"}
        assert body["state"] in ("NEW", "RUN")
        await wait_for_state(env, env.acme, body["playId"], "DONE")
        done = await s.call_tool("get_play", {"playId": body["playId"]})
    assert structured(done)["output"] == {"steps": 3}


async def test_a_failed_play_is_a_tool_error_with_the_play_error(env: McpEnv) -> None:
    async with env.session(env.owner_key) as s:
        result = await s.call_tool("run_flow", {"flowId": env.flows["failing"].id})
    assert result.is_error
    assert "it broke" in text_of(result)
    assert structured(result)["state"] == "FAIL"


async def test_long_plays_report_progress_as_steps_finish(env: McpEnv) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with env.session(env.owner_key) as s:
        result = await s.call_tool(
            "run_flow", {"flowId": env.flows["slow"].id}, progress_callback=on_progress
        )
    assert structured(result) == {"steps": 3}
    assert [p for p, _, _ in seen] == [1.0, 2.0, 3.0]
    assert {t for _, t, _ in seen} == {3.0}
    assert seen[-1][2] == "step three done"


async def test_an_approval_route_waits_then_approve_play_runs_it(env: McpEnv) -> None:
    double = env.flows["double"]
    env.routes.add(
        env.acme, route("pay", "pay_out", double.id, require_approval=True, description="Pays")
    )
    async with env.session(env.owner_key) as s:
        started = await s.call_tool("pay_out", {"n": 4})
        body = structured(started)
        assert body["state"] == "WAIT"
        play_id = body["playId"]
        polled = await s.call_tool("get_play", {"playId": play_id})
        assert structured(polled)["state"] == "WAIT"
        assert structured(polled)["waitReason"] == "approval"
        assert structured(polled)["output"] is None  # nothing ran
        approved = await s.call_tool("approve_play", {"playId": play_id})
        assert not approved.is_error
        await wait_for_state(env, env.acme, play_id, "DONE")
        done = await s.call_tool("get_play", {"playId": play_id})
    assert structured(done)["output"] == {"doubled": 8}


async def test_reject_play_fails_the_waiting_play(env: McpEnv) -> None:
    env.routes.add(env.acme, route("pay", "pay_out", env.flows["double"].id, require_approval=True))
    async with env.session(env.owner_key) as s:
        play_id = structured(await s.call_tool("pay_out", {"n": 1}))["playId"]
        rejected = await s.call_tool("reject_play", {"playId": play_id})
    assert structured(rejected)["state"] == "FAIL"
    assert "rejected by owner@example.com" in structured(rejected)["error"]


async def test_another_company_tools_are_neither_listed_nor_callable(env: McpEnv) -> None:
    env.routes.add(env.globex, route("g", "globex_secret", env.flows["globex"].id))
    assert "globex_secret" not in await _names(env, env.owner_key)
    assert "globex_secret" in await _names(env, env.globex_key)
    async with env.session(env.owner_key) as s:
        called = await s.call_tool("globex_secret", {"n": 1})
        assert called.is_error
        assert "unknown tool" in text_of(called)
        # Nor are the other company's flows reachable through the built-ins.
        ran = await s.call_tool("run_flow", {"flowId": env.flows["globex"].id, "input": {"n": 1}})
        assert ran.is_error
        got = await s.call_tool("get_flow", {"flowId": env.flows["globex"].id})
        assert got.is_error
    _plays, total = await env.plays.list(env.globex)
    assert total == 0


async def test_a_viewer_sees_only_read_tools_and_cannot_call_run_tools(env: McpEnv) -> None:
    double = env.flows["double"]
    env.routes.add(env.acme, route("double", "double_it", double.id))
    assert await _names(env, env.viewer_key) == READ_TOOLS
    async with env.session(env.viewer_key) as s:
        for tool, args in (
            ("run_flow", {"flowId": double.id, "input": {"n": 1}}),
            ("double_it", {"n": 1}),
            ("approve_play", {"playId": "x"}),
        ):
            result = await s.call_tool(tool, args)
            assert result.is_error, tool
            assert "unknown tool" in text_of(result)
        listed = await s.call_tool("list_flows", {})
        assert {f["name"] for f in structured(listed)["flows"]} == {"double", "slow", "failing"}
    _, total = await env.plays.list(env.acme)
    assert total == 0


async def test_a_jwt_for_a_member_works_and_carries_the_membership_role(env: McpEnv) -> None:
    assert await _names(env, env.token()) >= BUILT_INS
    viewer = env.token(sub=env.viewer_id)
    assert await _names(env, viewer) == READ_TOOLS


async def test_a_session_is_bound_to_the_credential_that_opened_it(env: McpEnv) -> None:
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": "2025-11-25",
    }
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "probe", "version": "1"},
        },
    }
    tools_list = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    async with env.http(env.owner_key) as owner:
        opened = await owner.post(env.url, headers=headers, json=initialize)
        assert opened.status_code == 200, opened.text
        session = {**headers, "mcp-session-id": opened.headers["mcp-session-id"]}
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await owner.post(env.url, headers=session, json=initialized)).status_code == 202
        # Another company's key, and another key of the same user, are refused that session
        # (as if it did not exist); a JWT of the same user too.
        for other in (env.globex_key, env.viewer_key, env.token()):
            async with env.http(other) as intruder:
                r = await intruder.post(env.url, headers=session, json=tools_list)
            assert r.status_code == 404, r.text
        # Its owner still uses it.
        r = await owner.post(env.url, headers=session, json=tools_list)
        assert r.status_code == 200
        assert '"run_flow"' in r.text


async def test_the_bare_url_serves_the_same_endpoint(env: McpEnv) -> None:
    bare = env.url.removesuffix("/mcp") + "/"
    async with env.session(env.owner_key, url=bare) as s:
        assert {t.name for t in (await s.list_tools()).tools} >= BUILT_INS


async def test_every_tool_call_is_audited_with_no_secret(env: McpEnv) -> None:
    env.routes.add(env.acme, route("double", "double_it", env.flows["double"].id))
    secret_value = "s3cr3t-canary-value"
    async with env.session(env.owner_key) as s:
        await s.call_tool("double_it", {"n": 2, "apiToken": secret_value})
        await s.call_tool("list_modules", {})
    async with env.session(env.viewer_key) as s:
        await s.call_tool("run_flow", {"flowId": env.flows["double"].id, "input": {"n": 1}})
    jwt_token = env.token()
    async with env.session(jwt_token) as s:
        await s.call_tool("list_flows", {"page": 0, "note": jwt_token})
    entries = await env.audit_entries()
    by_tool = {e["details"]["tool"]: e for e in entries}
    assert set(by_tool) == {"double_it", "list_modules", "run_flow", "list_flows"}
    called = by_tool["double_it"]
    assert called["user_id"] == env.owner_id
    assert called["details"]["keyId"]
    assert called["details"]["outcome"] == "ok"
    assert called["details"]["playId"]
    assert called["target_id"] == called["details"]["playId"]
    assert called["details"]["arguments"] == {"n": 2, "apiToken": "***"}
    assert by_tool["run_flow"]["details"]["outcome"] == "refused"
    assert by_tool["run_flow"]["user_id"] == env.viewer_id
    assert by_tool["list_flows"]["details"]["via"] == "jwt"
    text = json.dumps(entries, default=str)
    for secret in (secret_value, env.owner_key, env.viewer_key, jwt_token):
        assert secret not in text


async def test_a_tool_error_does_not_end_the_session(env: McpEnv) -> None:
    async with env.session(env.owner_key) as s:
        missing = await s.call_tool("get_play", {"playId": "nope"})
        assert missing.is_error
        bad = await s.call_tool("get_flow", {})
        assert bad.is_error
        assert "flowId" in text_of(bad)
        with pytest.raises(MCPError):
            await s.list_prompts()  # a method the server does not serve is an MCP error
        assert (await s.list_tools()).tools


async def test_an_async_route_answers_the_play_id_at_once(env: McpEnv) -> None:
    env.routes.add(
        env.acme,
        route("later", "slow_later", env.flows["slow"].id, response_mode=ResponseMode.ASYNC),
    )
    async with env.session(env.owner_key) as s:
        body = structured(await s.call_tool("slow_later", {}))
        assert set(body) == {"playId", "state"}
        assert body["state"] != "DONE"
        await wait_for_state(env, env.acme, body["playId"], "DONE")


async def test_a_route_with_several_targets_answers_each_result(env: McpEnv) -> None:
    env.routes.add(env.acme, route("both", "both", env.flows["double"].id, env.flows["failing"].id))
    async with env.session(env.owner_key) as s:
        result = await s.call_tool("both", {"n": 3})
    assert result.is_error  # one of them failed
    results = structured(result)["results"]
    assert [r["flowId"] for r in results] == [env.flows["double"].id, env.flows["failing"].id]
    assert results[0]["doubled"] == 6
    assert results[1]["state"] == "FAIL"


async def test_a_tool_calls_plays_keep_the_request_id_and_traceparent_it_came_with(
    env: McpEnv,
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"X-Request-Id": "mcp-call-1", "traceparent": f"00-{trace_id}-{'c' * 16}-01"}
    async with (
        env.http(env.owner_key, **headers) as client,
        streamable_http_client(env.url, http_client=client) as (read, write),
        ClientSession(read, write) as s,
    ):
        await s.initialize()
        ran = await s.call_tool("run_flow", {"flowId": env.flows["double"].id, "input": {"n": 1}})
        assert not ran.is_error
    async with env.session(env.owner_key) as s:  # without: a fresh id, no trace
        again = {"flowId": env.flows["double"].id, "input": {"n": 2}}
        assert not (await s.call_tool("run_flow", again)).is_error
    plays, _ = await env.plays.list(env.acme, flow_id=env.flows["double"].id)
    second, first = plays  # newest first
    assert first.trace == PlayTrace("mcp-call-1", trace_id, "01")
    assert second.trace is not None
    assert second.trace.correlation_id not in (None, "mcp-call-1")
    assert second.trace.trace_id is None
