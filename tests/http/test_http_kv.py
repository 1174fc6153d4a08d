"""KV scopes over the REST API: a scope is named the same way by every route, and a flow uses
only the scopes it has."""

from __future__ import annotations

import pytest
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv

from flow8.domain import no_flow_group


@pytest.mark.parametrize("scope", ["flow", "flow_group"])
async def test_every_route_refuses_a_flow_or_group_scope_without_its_key(
    installed: ApiEnv, scope: str
) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        write = await c.post("/api/kv", json={"key": "k", "value": 1, "scope": scope})
        assert write.status_code == 422, write.text
        refusal = write.json()
        assert refusal["fields"] == [
            {"field": "scopeKey", "message": f"is required for scope {scope}"}
        ]
        # A read used to answer an empty page here, as if the scope existed and held nothing.
        read = await c.get("/api/kv", params={"scope": scope})
        assert (read.status_code, read.json()) == (422, refusal)
        delete = await c.delete("/api/kv/k", params={"scope": scope})
        assert (delete.status_code, delete.json()) == (422, refusal)
        # With its key, the scope is an ordinary one.
        named = await c.get("/api/kv", params={"scope": scope, "scopeKey": "x"})
        assert (named.status_code, named.json()["data"]) == (200, [])


async def test_a_flow_without_group_cannot_use_the_flow_group_scope(installed: ApiEnv) -> None:
    remember = {
        "ref": "remember",
        "appId": "kv-set",
        "args": {"key": "k", "value": "shared", "scope": "flow_group"},
    }
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        r = await c.post("/api/flows", json={"name": "f", "flowlets": [remember]})
        assert r.status_code == 422, r.text
        assert r.json()["fields"] == [
            {"field": "flowlets[0].args.scope", "message": no_flow_group("remember")}
        ]
        # In a flow with a group, the entry goes to the group's scope.
        r = await c.post(
            "/api/flows", json={"name": "g", "group": "billing", "flowlets": [remember]}
        )
        assert r.status_code == 201, r.text
        play = (await c.post(f"/api/flows/{r.json()['id']}/run?wait=10", json={})).json()
        assert play["state"] == "DONE", play
        grouped = await c.get("/api/kv", params={"scope": "flow_group", "scopeKey": "billing"})
        assert [(e["key"], e["value"]) for e in grouped.json()["data"]] == [("k", "shared")]


async def test_a_flow_group_scope_from_an_expression_fails_the_step(installed: ApiEnv) -> None:
    remember = {
        "ref": "remember",
        "appId": "kv-set",
        "args": {"key": "k", "value": "shared", "scope": "{{ $prev.args.scope }}"},
    }
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        r = await c.post("/api/flows", json={"name": "f", "flowlets": [remember]})
        assert r.status_code == 201, r.text
        fid = r.json()["id"]
        play = (await c.post(f"/api/flows/{fid}/run?wait=10", json={"scope": "flow_group"})).json()
        assert play["state"] == "FAIL", play
        layers = (await c.get(f"/api/plays/{play['id']}/layers")).json()["data"]
        [layer] = [la for la in layers if la["ref"] == "remember"]
        assert layer["error"] == no_flow_group("remember")
        # Nor was it stored under the flow's own scope instead.
        own = await c.get("/api/kv", params={"scope": "flow", "scopeKey": fid})
        assert own.json()["data"] == []
