"""Channel routes on the real app: ports allocated from the block (a full block is a clear
409, a deleted channel's port is reused), validation naming every field, secrets never in an
answer or audit entry, RBAC (editors manage, everyone reads), tenant isolation, and the
routes of a channel (path parameters, tool names, target flows of the company only)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv

from flow8.config import PortRange
from flow8.services.channels import ChannelService

PASSWORD = "member-password-1"
FLOW = {"name": "hook", "flowlets": [{"ref": "a", "appId": "set", "args": {"value": 1}}]}
TOKEN = "canary-bearer-3f9c1e7a2b"
HMAC_SECRET = "canary-hmac-d41d8cd9"
SUMMARY_KEYS = {
    "id",
    "name",
    "kind",
    "authMode",
    "enabled",
    "port",
    "hmac",
    "maxConnections",
    "ratePerSecond",
    "routes",
    "secretFields",
    "rev",
}


async def _company(client: httpx.AsyncClient) -> str:
    company: str = (await client.get("/api/auth/me")).json()["companyId"]
    return company


async def _flow(client: httpx.AsyncClient) -> str:
    r = await client.post("/api/flows", json=FLOW)
    assert r.status_code == 201, r.text
    flow_id: str = r.json()["id"]
    return flow_id


async def _channel(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await client.post("/api/channels", json={"kind": "http", **body})
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made


def _problems(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 422, r.text
    return {p["field"]: p["message"] for p in r.json()["fields"]}


async def test_create_allocates_distinct_ports_and_mcp_gets_none(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        hook = await _channel(owner, name="hook")
        assert set(hook) >= SUMMARY_KEYS
        assert (hook["kind"], hook["authMode"], hook["enabled"], hook["rev"]) == (
            "http",
            "public",
            True,
            1,
        )
        assert (hook["maxConnections"], hook["ratePerSecond"]) == (100, 50.0)
        ws = await _channel(owner, name="live", kind="ws", maxConnections=5, ratePerSecond=2)
        tcp = await _channel(owner, name="raw", kind="tcp", enabled=False)
        mcp = await _channel(owner, name="agents", kind="mcp")
        assert [c["port"] for c in (hook, ws, tcp)] == [7701, 7702, 7703]
        assert mcp["port"] is None
        assert (ws["maxConnections"], ws["ratePerSecond"]) == (5, 2.0)
        assert tcp["enabled"] is False
        listed = (await owner.get("/api/channels")).json()["items"]
        assert sorted(c["name"] for c in listed) == ["agents", "hook", "live", "raw"]
        got = (await owner.get(f"/api/channels/{ws['id']}")).json()
        assert got == ws
        r = await owner.post("/api/channels", json={"name": "hook", "kind": "ws"})
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "CHANNEL_NAME_TAKEN"
        assert "name" in r.json()["message"]


async def test_a_full_block_is_409_and_delete_frees_the_port(installed: ApiEnv) -> None:
    current = installed.app.deps.channels
    assert current is not None
    installed.app.deps.channels = ChannelService(
        installed.store, current.flows, PortRange(9101, 9102)
    )
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        first = await _channel(owner, name="one")
        second = await _channel(owner, name="two", kind="tcp")
        assert (first["port"], second["port"]) == (9101, 9102)
        r = await owner.post("/api/channels", json={"name": "three", "kind": "ws"})
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "CHANNEL_PORTS_EXHAUSTED"
        assert "CHANNEL_PORT_RANGE" in r.json()["message"]
        assert "9101-9102" in r.json()["message"]
        assert (await _channel(owner, name="agents", kind="mcp"))["port"] is None
        assert (await owner.delete(f"/api/channels/{first['id']}")).status_code == 204
        assert (await owner.get(f"/api/channels/{first['id']}")).status_code == 404
        third = await _channel(owner, name="three", kind="ws")
        assert third["port"] == 9101


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "x", "kind": "smtp"}, "kind", ""),
        ({"name": "", "kind": "http"}, "name", ""),
        ({"name": "x", "kind": "http", "colour": "red"}, "colour", "unknown field"),
        ({"name": "x", "kind": "http", "authMode": "header_token"}, "authToken", "required"),
        (
            {"name": "x", "kind": "http", "authMode": "header_token", "authToken": "short"},
            "authToken",
            "16",
        ),
        ({"name": "x", "kind": "http", "authMode": "hmac"}, "hmac", "required"),
        (
            {"name": "x", "kind": "http", "authMode": "hmac", "hmac": {"header": "X-Sig"}},
            "hmac.secret",
            "required",
        ),
        (
            {"name": "x", "kind": "http", "authMode": "hmac", "hmac": {"bogus": 1}},
            "hmac.bogus",
            "unknown field",
        ),
        ({"name": "x", "kind": "http", "maxConnections": 0}, "maxConnections", ""),
        ({"name": "x", "kind": "http", "ratePerSecond": -1}, "ratePerSecond", ""),
        ({"name": "x", "kind": "http", "authToken": TOKEN}, "authToken", "only used"),
    ],
)
async def test_bad_channels_are_refused_naming_the_field(
    installed: ApiEnv, body: dict[str, Any], field: str, message: str
) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        problems = _problems(await owner.post("/api/channels", json=body))
        assert field in problems, problems
        assert message in problems[field]
        assert TOKEN not in json.dumps(problems)
        assert (await owner.get("/api/channels")).json()["items"] == []


async def test_every_problem_is_listed_at_once(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.post(
            "/api/channels",
            json={"name": "x", "kind": "http", "maxConnections": 0, "ratePerSecond": 0},
        )
        assert set(_problems(r)) == {"maxConnections", "ratePerSecond"}


async def test_update_is_partial_kind_is_fixed_and_secrets_can_be_removed(
    installed: ApiEnv,
) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        made = await _channel(owner, name="hook", authMode="header_token", authToken=TOKEN)
        assert made["secretFields"] == ["authToken"]
        url = f"/api/channels/{made['id']}"
        r = await owner.put(url, json={"kind": "tcp"})
        problems = _problems(r)
        assert "cannot change" in problems["kind"]
        r = await owner.put(url, json={"enabled": False, "name": "renamed"})
        assert r.status_code == 200, r.text
        changed = r.json()
        assert (changed["name"], changed["enabled"], changed["rev"]) == ("renamed", False, 2)
        assert changed["secretFields"] == ["authToken"]  # absent: kept
        assert changed["port"] == made["port"]
        r = await owner.put(url, json={"authToken": None})
        assert "authToken" in _problems(r)  # a header_token channel needs one
        r = await owner.put(
            url,
            json={
                "authMode": "hmac",
                "hmac": {"style": "stripe", "secret": HMAC_SECRET},
            },
        )
        assert r.status_code == 200, r.text
        signed = r.json()
        assert signed["secretFields"] == ["hmac.secret"]  # the token went with its mode
        assert signed["hmac"] == {
            "header": "Stripe-Signature",
            "algorithm": "sha256",
            "prefix": "",
            "style": "stripe",
        }
        r = await owner.put(url, json={"hmac": {"secret": None}})
        assert "hmac.secret" in _problems(r)
        r = await owner.put(url, json={"hmac": {"algorithm": "sha1"}})
        assert r.json()["hmac"]["algorithm"] == "sha1"
        assert r.json()["secretFields"] == ["hmac.secret"]
        assert r.json()["rev"] == 4
        assert (await owner.put("/api/channels/nope", json={"enabled": True})).status_code == 404
        await _channel(owner, name="other", kind="mcp")
        r = await owner.put(url, json={"name": "other"})
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "CHANNEL_NAME_TAKEN"


async def test_secrets_are_never_answered_nor_audited(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        flow_id = await _flow(owner)
        tok = await _channel(owner, name="tok", authMode="header_token", authToken=TOKEN)
        sig = await _channel(
            owner,
            name="sig",
            kind="ws",
            authMode="hmac",
            hmac={"header": "X-Hub-Signature-256", "secret": HMAC_SECRET, "prefix": "sha256="},
        )
        answers = [json.dumps(tok), json.dumps(sig)]
        r = await owner.put(f"/api/channels/{tok['id']}", json={"authToken": TOKEN + "-2"})
        answers.append(r.text)
        route = {"name": "r", "targetFlowIds": [flow_id]}
        answers.append((await owner.post(f"/api/channels/{sig['id']}/routes", json=route)).text)
        answers.append((await owner.get("/api/channels")).text)
        answers.append((await owner.get(f"/api/channels/{tok['id']}")).text)
        answers.append((await owner.get(f"/api/channels/{sig['id']}/routes")).text)
        answers.append((await owner.delete(f"/api/channels/{tok['id']}")).text)
        await installed.audit.wait_idle()
        audit = await owner.get("/api/audit", params={"size": 100})
        assert audit.status_code == 200, audit.text
        entries = audit.json()["data"]
    actions = {e["action"] for e in entries}
    assert {"channel_created", "channel_updated", "channel_route_created"} <= actions
    assert "channel_deleted" in actions
    for text in [*answers, json.dumps(entries)]:
        assert TOKEN not in text
        assert HMAC_SECRET not in text
    created = next(e for e in entries if e["action"] == "channel_created")
    assert created["after"]["name"] in ("tok", "sig")  # the channel is there, without secrets
    assert created["after"]["hmac"] is None or "secret" not in created["after"]["hmac"]


@pytest.mark.parametrize("role", ["viewer", "operator", "editor", "admin"])
async def test_editors_manage_everyone_reads(installed: ApiEnv, role: str) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company = await _company(owner)
        await installed.invite_and_accept(owner, company, f"{role}@example.com", role, PASSWORD)
        flow_id = await _flow(owner)
        cid = (await _channel(owner, name="hook"))["id"]
        rid = (
            await owner.post(
                f"/api/channels/{cid}/routes", json={"name": "r", "targetFlowIds": [flow_id]}
            )
        ).json()["id"]
    writes = [
        ("POST", "/api/channels", {"name": "new", "kind": "mcp"}),
        (
            "POST",
            f"/api/channels/{cid}/routes",
            {"name": "r2", "path": "/r2", "targetFlowIds": [flow_id]},
        ),
        ("PUT", f"/api/channels/{cid}/routes/{rid}", {"path": "/x"}),
        ("DELETE", f"/api/channels/{cid}/routes/{rid}", None),
        ("PUT", f"/api/channels/{cid}", {"enabled": False}),
        ("DELETE", f"/api/channels/{cid}", None),
    ]
    async with installed.session(f"{role}@example.com", PASSWORD) as member:
        assert len((await member.get("/api/channels")).json()["items"]) == 1
        assert (await member.get(f"/api/channels/{cid}")).status_code == 200
        assert len((await member.get(f"/api/channels/{cid}/routes")).json()["items"]) == 1
        for method, url, body in writes:
            r = await member.request(method, url, json=body)
            if role in ("editor", "admin"):
                assert r.status_code in (200, 201, 204), f"{method} {url}: {r.text}"
            else:
                assert r.status_code == 403, f"{role} {method} {url}: {r.text}"
                assert r.json()["error"] == "PERMISSION_DENIED"
        if role in ("viewer", "operator"):
            kept = (await member.get(f"/api/channels/{cid}")).json()
            assert (kept["enabled"], len(kept["routes"])) == (True, 1)


async def test_another_companys_channel_is_not_found_and_unchanged(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company_a = await _company(owner)
        flow_a = await _flow(owner)
        made = await _channel(owner, name="hook")
        cid = made["id"]
        route = {"name": "r", "targetFlowIds": [flow_a]}
        rid = (await owner.post(f"/api/channels/{cid}/routes", json=route)).json()["id"]
        company_b = (await owner.post("/api/companies", json={"name": "Beta"})).json()["id"]
        assert (await owner.post("/api/auth/company", json={"companyId": company_b})).is_success
        for method, url, body in (
            ("GET", f"/api/channels/{cid}", None),
            ("PUT", f"/api/channels/{cid}", {"enabled": False}),
            ("DELETE", f"/api/channels/{cid}", None),
            ("GET", f"/api/channels/{cid}/routes", None),
            ("POST", f"/api/channels/{cid}/routes", {"name": "x", "targetFlowIds": [flow_a]}),
            ("PUT", f"/api/channels/{cid}/routes/{rid}", {"path": "/x"}),
            ("DELETE", f"/api/channels/{cid}/routes/{rid}", None),
        ):
            r = await owner.request(method, url, json=body)
            assert r.status_code == 404, f"{method} {url}: {r.text}"
        assert (await owner.get("/api/channels")).json()["items"] == []
        # B's own channel may not target A's flow
        mine = await _channel(owner, name="hook")  # the same name is free in company B
        assert mine["port"] != made["port"]
        r = await owner.post(f"/api/channels/{mine['id']}/routes", json=route)
        assert "is not a flow of this company" in _problems(r)["targetFlowIds[0]"]
        assert (await owner.post("/api/auth/company", json={"companyId": company_a})).is_success
        kept = (await owner.get(f"/api/channels/{cid}")).json()
    same = made | {"routes": kept["routes"], "rev": 2, "updatedAt": kept["updatedAt"]}
    assert kept == same
    assert [r["id"] for r in kept["routes"]] == [rid]
    assert kept["routes"][0]["path"] == "/"


async def test_http_routes_crud_with_path_params(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        flow_id, other = await _flow(owner), await _flow(owner)
        cid = (await _channel(owner, name="api"))["id"]
        base = f"/api/channels/{cid}/routes"
        r = await owner.post(
            base,
            json={
                "name": "order",
                "httpMethod": "GET",
                "path": "/orders/{id}/lines/{line}",
                "targetFlowIds": [flow_id, other],
                "responseMode": "async",
                "timeoutSeconds": 5,
                "description": "an order line",
            },
        )
        assert r.status_code == 201, r.text
        route = r.json()
        assert route == {
            "id": route["id"],
            "name": "order",
            "httpMethod": "GET",
            "path": "/orders/{id}/lines/{line}",
            "targetFlowIds": [flow_id, other],
            "responseMode": "async",
            "timeoutSeconds": 5.0,
            "toolName": None,
            "description": "an order line",
            "requireApproval": False,
        }
        defaults = (await owner.post(base, json={"name": "in", "targetFlowIds": [flow_id]})).json()
        assert (defaults["httpMethod"], defaults["path"], defaults["responseMode"]) == (
            "POST",
            "/",
            "sync",
        )
        assert defaults["timeoutSeconds"] == 30.0
        # the same requests under other parameter names: taken
        r = await owner.post(
            base,
            json={
                "name": "dup",
                "httpMethod": "GET",
                "path": "/orders/{o}/lines/{l}",
                "targetFlowIds": [flow_id],
            },
        )
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "ROUTE_TAKEN"
        assert r.json()["message"].startswith("path:")
        r = await owner.post(base, json={"name": "order", "path": "/o", "targetFlowIds": [flow_id]})
        assert r.status_code == 409, r.text
        assert r.json()["message"].startswith("name:")
        r = await owner.put(f"{base}/{route['id']}", json={"httpMethod": "PUT"})
        assert r.status_code == 200, r.text
        assert (r.json()["httpMethod"], r.json()["path"]) == ("PUT", "/orders/{id}/lines/{line}")
        listed = (await owner.get(base)).json()["items"]
        assert [x["name"] for x in listed] == ["order", "in"]
        channel = (await owner.get(f"/api/channels/{cid}")).json()
        assert channel["routes"] == listed
        assert (await owner.delete(f"{base}/{route['id']}")).status_code == 204
        assert (await owner.put(f"{base}/{route['id']}", json={"path": "/x"})).status_code == 404
        assert (await owner.delete(f"{base}/{route['id']}")).status_code == 404
        assert [x["name"] for x in (await owner.get(base)).json()["items"]] == ["in"]
        assert (await owner.get("/api/channels/nope/routes")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"path": "orders"}, "path", 'start with "/"'),
        ({"path": "/a//b"}, "path", "empty segment"),
        ({"path": "/a/{id}/{id}"}, "path", "twice"),
        ({"path": "/a/x{id}"}, "path", "whole segment"),
        ({"httpMethod": "TRACE"}, "httpMethod", ""),
        ({"targetFlowIds": []}, "targetFlowIds", ""),
        ({"targetFlowIds": ["nope"]}, "targetFlowIds[0]", "not a flow of this company"),
        ({"targetFlowIds": [f"f{i}" for i in range(11)]}, "targetFlowIds", "at most 10"),
        ({"timeoutSeconds": 0}, "timeoutSeconds", "greater than 0"),
        ({"timeoutSeconds": 301}, "timeoutSeconds", "300"),
        ({"responseMode": "later"}, "responseMode", ""),
        ({"toolName": "refund"}, "toolName", "only for routes of mcp channels"),
        ({"requireApproval": True}, "requireApproval", "only for routes of mcp"),
        ({"description": "x" * 1001}, "description", "1000"),
        ({"extra": 1}, "extra", "unknown field"),
    ],
)
async def test_bad_routes_are_refused_naming_the_field(
    installed: ApiEnv, body: dict[str, Any], field: str, message: str
) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        flow_id = await _flow(owner)
        cid = (await _channel(owner, name="api"))["id"]
        r = await owner.post(
            f"/api/channels/{cid}/routes",
            json={"name": "r", "targetFlowIds": [flow_id], **body},
        )
        problems = _problems(r)
        assert field in problems, problems
        assert message in problems[field]
        assert (await owner.get(f"/api/channels/{cid}/routes")).json()["items"] == []


async def test_mcp_routes_need_a_unique_tool_name_that_is_not_built_in(
    installed: ApiEnv,
) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        flow_id = await _flow(owner)
        first = (await _channel(owner, name="agents", kind="mcp"))["id"]
        second = (await _channel(owner, name="more", kind="mcp"))["id"]
        route = {"name": "refund", "targetFlowIds": [flow_id]}
        r = await owner.post(f"/api/channels/{first}/routes", json=route)
        assert "required for mcp channels" in _problems(r)["toolName"]
        r = await owner.post(
            f"/api/channels/{first}/routes", json={**route, "toolName": "run_flow"}
        )
        assert "built-in" in _problems(r)["toolName"]
        r = await owner.post(
            f"/api/channels/{first}/routes", json={**route, "toolName": "bad name!"}
        )
        assert "toolName" in _problems(r)
        r = await owner.post(
            f"/api/channels/{first}/routes",
            json={**route, "toolName": "refund", "requireApproval": True, "description": "d"},
        )
        assert r.status_code == 201, r.text
        assert (r.json()["toolName"], r.json()["requireApproval"]) == ("refund", True)
        r = await owner.post(f"/api/channels/{second}/routes", json={**route, "toolName": "refund"})
        assert r.status_code == 409, r.text
        assert r.json()["message"].startswith("toolName:")
        assert "agents" in r.json()["message"]
        r = await owner.post(
            f"/api/channels/{second}/routes", json={**route, "toolName": "refund_v2"}
        )
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        r = await owner.put(f"/api/channels/{second}/routes/{rid}", json={"toolName": "refund"})
        assert r.status_code == 409, r.text
        r = await owner.put(f"/api/channels/{second}/routes/{rid}", json={"toolName": None})
        assert "toolName" in _problems(r)


async def test_audit_records_each_change(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        flow_id = await _flow(owner)
        cid = (await _channel(owner, name="hook"))["id"]
        await owner.put(f"/api/channels/{cid}", json={"enabled": False})
        base = f"/api/channels/{cid}/routes"
        rid = (await owner.post(base, json={"name": "r", "targetFlowIds": [flow_id]})).json()["id"]
        await owner.put(f"{base}/{rid}", json={"path": "/orders/{id}"})
        await owner.delete(f"{base}/{rid}")
        await owner.delete(f"/api/channels/{cid}")
        await installed.audit.wait_idle()
        r = await owner.get("/api/audit", params={"targetType": "channel", "size": 100})
        entries = {e["action"]: e for e in r.json()["data"]}
    assert sorted(entries) == [
        "channel_created",
        "channel_deleted",
        "channel_route_created",
        "channel_route_deleted",
        "channel_route_updated",
        "channel_updated",
    ]
    assert {e["targetId"] for e in entries.values()} == {cid}
    assert entries["channel_updated"]["before"]["enabled"] is True
    assert entries["channel_updated"]["after"]["enabled"] is False
    updated = entries["channel_route_updated"]
    assert (updated["before"]["path"], updated["after"]["path"]) == ("/", "/orders/{id}")
    assert updated["details"]["routeId"] == rid


async def test_the_documented_curl_examples_work(installed: ApiEnv) -> None:
    text = (Path(__file__).parents[2] / "docs/api.md").read_text()
    section = text[text.index("## Channels") : text.index("## Audit")]
    channel, route = [json.loads(b) for b in re.findall(r"-d '(\{.*?\})'", section, re.S)]
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        flow_id = await _flow(owner)
        r = await owner.post("/api/channels", json=channel)
        assert r.status_code == 201, r.text
        assert (r.json()["port"], r.json()["secretFields"]) == (7701, ["hmac.secret"])
        route["targetFlowIds"] = [flow_id]
        r = await owner.post(f"/api/channels/{r.json()['id']}/routes", json=route)
        assert r.status_code == 201, r.text
        assert r.json()["path"] == "/orders/{id}"


async def test_deleting_a_flow_takes_it_out_of_routes_and_drops_emptied_routes(
    installed: ApiEnv,
) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        doomed, kept = await _flow(owner), await _flow(owner)
        channel = await _channel(owner, name="hooks", kind="http")
        routes = f"/api/channels/{channel['id']}/routes"
        both = await owner.post(
            routes, json={"name": "both", "path": "/both", "targetFlowIds": [doomed, kept]}
        )
        only = await owner.post(
            routes, json={"name": "only", "path": "/only", "targetFlowIds": [doomed]}
        )
        other = await owner.post(
            routes, json={"name": "other", "path": "/other", "targetFlowIds": [kept]}
        )
        assert {both.status_code, only.status_code, other.status_code} == {201}
        assert (await owner.delete(f"/api/flows/{doomed}")).status_code == 204
        left = {r["name"]: r["targetFlowIds"] for r in (await owner.get(routes)).json()["items"]}
        assert left == {"both": [kept], "other": [kept]}
        await installed.audit.wait_idle()
        r = await owner.get("/api/audit", params={"targetType": "channel", "size": 100})
        actions = {
            (e["action"], e["details"]["routeId"])
            for e in r.json()["data"]
            if e["action"] in ("channel_route_updated", "channel_route_deleted")
        }
    assert actions == {
        ("channel_route_updated", both.json()["id"]),
        ("channel_route_deleted", only.json()["id"]),
    }
