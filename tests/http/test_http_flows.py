"""Flows, layers, versions, plays and their commands, KV and modules over the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import trio
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv
from support.waits import wait_for_play

from flow8.domain import PlayState

STEP = {"ref": "a", "appId": "set", "args": {"value": "{{ $prev.args.x }}"}}


async def test_layers_versions_and_restore(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        r = await c.post("/api/flows", json={"name": "f", "flowlets": [STEP]})
        assert r.status_code == 201
        flow = r.json()
        fid = flow["id"]
        assert flow["flowlets"][0]["appId"] == "set"
        r = await c.post(f"/api/flows/{fid}/layers", json={"ref": "b", "appId": "noop"})
        assert r.status_code == 201
        assert [f["ref"] for f in r.json()["flowlets"]] == ["a", "b"]
        assert r.json()["version"] == 2
        r = await c.put(
            f"/api/flows/{fid}/layers/b", json={"ref": "b", "appId": "noop", "name": "Bee"}
        )
        assert r.json()["flowlets"][1]["name"] == "Bee"
        r = await c.delete(f"/api/flows/{fid}/layers/a")
        assert [f["ref"] for f in r.json()["flowlets"]] == ["b"]
        assert (await c.delete(f"/api/flows/{fid}/layers/zzz")).json()["error"] == (
            "LAYER_NOT_FOUND"
        )
        versions = (await c.get(f"/api/flows/{fid}/versions")).json()
        assert [v["version"] for v in versions["data"]] == [4, 3, 2, 1]
        r = await c.post(f"/api/flows/{fid}/versions/1/restore")
        assert r.status_code == 200
        assert r.json()["version"] == 5
        assert [f["ref"] for f in r.json()["flowlets"]] == ["a"]
        assert (await c.post(f"/api/flows/{fid}/versions/99/restore")).status_code == 404
        # Digits beyond ASCII (str.isdigit() accepts them, int() does not): not found, not 500
        for odd in ("%C2%B9", "%D9%A1"):  # superscript one, Arabic-Indic one
            r = await c.post(f"/api/flows/{fid}/versions/{odd}/restore")
            assert r.status_code == 404, r.text
        layers = (await c.get(f"/api/flows/{fid}/layers")).json()
        assert layers["total"] == 1
        listing = (await c.get("/api/flows")).json()
        assert listing["total"] == 1
        assert (await c.delete(f"/api/flows/{fid}")).status_code == 204
        assert (await c.get(f"/api/flows/{fid}")).json()["error"] == "FLOW_NOT_FOUND"
        await installed.audit.wait_idle()
        audit = (await c.get("/api/audit", params={"targetId": fid, "size": 100})).json()
        actions = {e["action"] for e in audit["data"]}
        assert {"flow_created", "flow_updated", "flow_restored", "flow_deleted"} <= actions
        update = next(e for e in audit["data"] if e["action"] == "flow_restored")
        assert update["before"]["flowlets"][0]["ref"] == "b"
        assert update["after"]["flowlets"][0]["ref"] == "a"


async def test_the_flow_list_filters_by_name_prefix_and_group(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        for name, group in [("Billing daily", "finance"), ("Billing weekly", None)]:
            r = await c.post("/api/flows", json={"name": name, "group": group, "flowlets": [STEP]})
            assert r.status_code == 201
        by_name = (await c.get("/api/flows", params={"q": "Billing"})).json()
        assert sorted(f["name"] for f in by_name["data"]) == ["Billing daily", "Billing weekly"]
        both = (await c.get("/api/flows", params={"q": "Billing", "group": "finance"})).json()
        assert [f["name"] for f in both["data"]] == ["Billing daily"]
        assert both["total"] == 1
        assert (await c.get("/api/flows", params={"q": "x" * 201})).status_code == 422


async def test_flows_carry_tags_and_a_disabled_flow_starts_only_when_forced(
    installed: ApiEnv,
) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        made = {}
        for name, tags, enabled in [
            ("nightly sync", ["ops", "nightly"], True),
            ("paused sync", ["ops"], False),
            ("plain", [], None),  # left out: enabled
        ]:
            body: dict[str, Any] = {"name": name, "tags": tags, "flowlets": [STEP]}
            if enabled is not None:
                body["enabled"] = enabled
            r = await c.post("/api/flows", json=body)
            assert r.status_code == 201, r.text
            made[name] = r.json()
        assert made["plain"]["enabled"] is True
        assert made["nightly sync"]["tags"] == ["ops", "nightly"]

        async def names(**params: Any) -> list[str]:
            answer = await c.get("/api/flows", params=params)
            assert answer.status_code == 200, answer.text
            return sorted(f["name"] for f in answer.json()["data"])

        assert await names(tag="ops") == ["nightly sync", "paused sync"]
        assert await names(tag="nightly") == ["nightly sync"]
        assert await names(enabled="false") == ["paused sync"]
        assert await names(enabled="true") == ["nightly sync", "plain"]
        assert await names(tag="ops", enabled="true") == ["nightly sync"]
        assert (await c.get("/api/flows", params={"enabled": "maybe"})).status_code == 422

        paused = made["paused sync"]["id"]
        refused = await c.post(f"/api/flows/{paused}/run", json={"x": 1})
        assert refused.status_code == 409
        assert refused.json()["error"] == "FLOW_DISABLED"
        assert "disabled" in refused.json()["message"]
        assert (await c.get("/api/plays", params={"flowId": paused})).json()["total"] == 0
        forced = await c.post(f"/api/flows/{paused}/run?force=true&wait=10", json={"x": 1})
        assert forced.status_code == 200, forced.text
        assert forced.json()["state"] == "DONE"

        # Bad tags are named, each problem once.
        for tags, words in [
            ([" "], "must not be blank"),
            (["a", "a"], "listed twice"),
            (["x" * 41], "at most 40 characters"),
            ([f"t{n}" for n in range(21)], "at most 20"),
        ]:
            r = await c.post("/api/flows", json={"name": "t", "tags": tags, "flowlets": [STEP]})
            assert r.status_code == 422, r.text
            (problem,) = r.json()["fields"]
            assert problem["field"] == "tags"
            assert words in problem["message"], problem


async def test_invalid_flow_lists_every_problem(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        r = await c.post(
            "/api/flows",
            json={
                "name": "bad",
                "flowlets": [
                    {"ref": "a", "appId": "no-such-module"},
                    {"ref": "a", "appId": "noop"},
                ],
            },
        )
        assert r.status_code == 422
        assert len(r.json()["fields"]) >= 2
        r = await c.post("/api/flows", json={"name": "x", "flowlets": "nope", "extra": 1})
        assert r.status_code == 422
        assert {f["field"] for f in r.json()["fields"]} == {"flowlets", "extra"}
        # A transform's expression is code: one that does not parse is refused on save, not
        # left to fail every play.
        broken = {"ref": "t", "appId": "transform", "args": {"expression": "$sum(items"}}
        r = await c.post("/api/flows", json={"name": "x", "flowlets": [broken]})
        assert r.status_code == 422
        [problem] = r.json()["fields"]
        assert problem["field"] == "flowlets[0].args.expression"
        assert problem["message"].startswith("JSONata does not parse")


async def test_approve_reject_cancel_and_retry(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        company = (await c.get("/api/auth/me")).json()["companyId"]

        async def reached(play_id: str, state: PlayState) -> Any:
            await wait_for_play(installed.plays, company, play_id, state)
            play = (await c.get(f"/api/plays/{play_id}")).json()
            assert play["state"] == state.value  # as the API shows it
            return play

        gated = {"name": "g", "flowlets": [{**STEP, "needsApproval": True}]}
        fid = (await c.post("/api/flows", json=gated)).json()["id"]
        p1 = (await c.post(f"/api/flows/{fid}/run", json={"x": 1})).json()["id"]
        await reached(p1, PlayState.WAIT)
        r = await c.post(f"/api/plays/{p1}/approve")
        assert r.status_code == 200, r.text
        assert (await reached(p1, PlayState.DONE))["out"] == 1
        p2 = (await c.post(f"/api/flows/{fid}/run", json={"x": 2})).json()["id"]
        await reached(p2, PlayState.WAIT)
        assert (await c.post(f"/api/plays/{p2}/reject")).status_code == 200
        await reached(p2, PlayState.FAIL)
        p3 = (await c.post(f"/api/flows/{fid}/run", json={"x": 3})).json()["id"]
        await reached(p3, PlayState.WAIT)
        assert (await c.post(f"/api/plays/{p3}/cancel")).json()["state"] == "CANCEL"
        again = await c.post(f"/api/plays/{p3}/cancel")
        assert again.status_code == 409
        assert again.json()["error"] == "PLAY_STATE_CONFLICT"

        failing = {"name": "r", "flowlets": [STEP, {"ref": "b", "appId": "fail"}]}
        rid = (await c.post("/api/flows", json=failing)).json()["id"]
        r = await c.post(f"/api/flows/{rid}/run?wait=5", json={"x": 9})
        failed = r.json()
        assert failed["state"] == "FAIL"
        fixed = {"name": "r", "flowlets": [STEP, {"ref": "b", "appId": "noop"}]}
        await c.put(f"/api/flows/{rid}", json=fixed)
        r = await c.post(f"/api/plays/{failed['id']}/retry", json={"fromRef": "b"})
        assert r.status_code == 201, r.text
        retried = await reached(r.json()["id"], PlayState.DONE)
        assert retried["retryOf"] == failed["id"]
        states = (await c.get("/api/plays", params={"state": "FAIL"})).json()
        assert {p["id"] for p in states["data"]} == {p2, failed["id"]}


async def test_kv_and_modules(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        r = await c.post("/api/kv", json={"key": "greeting", "value": {"text": "hi"}})
        assert r.status_code == 200
        assert r.json()["value"] == {"text": "hi"}
        r = await c.post(
            "/api/kv", json={"key": "k", "value": 1, "scope": "flow", "scopeKey": "F1"}
        )
        assert r.status_code == 200
        no_key = await c.post("/api/kv", json={"key": "k", "value": 1, "scope": "flow"})
        assert no_key.status_code == 422
        glob = (await c.get("/api/kv")).json()
        assert [e["key"] for e in glob["data"]] == ["greeting"]
        flow_scope = (await c.get("/api/kv", params={"scope": "flow", "scopeKey": "F1"})).json()
        assert [e["key"] for e in flow_scope["data"]] == ["k"]
        assert (await c.delete("/api/kv/greeting")).status_code == 204
        assert (await c.delete("/api/kv/greeting")).status_code == 404
        modules = (await c.get("/api/modules", params={"size": 100})).json()
        assert "template" in {m["appId"] for m in modules["data"]}
        one = (await c.get("/api/modules/template")).json()
        assert one["argsSchema"]["required"] == ["text"]
        assert (await c.get("/api/modules/nope")).json()["error"] == "MODULE_NOT_FOUND"
        await installed.audit.wait_idle()
        audit = (await c.get("/api/audit", params={"action": "kv_set"})).json()
        assert audit["total"] == 2
        assert "hi" not in str(audit)  # KV values are secret at rest: not in the trail


async def test_a_secret_kv_entry_is_never_shown_and_masked_in_plays(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        r = await c.post(
            "/api/kv", json={"key": "api-token", "value": "s3cr3t-v4lue", "secret": True}
        )
        assert r.status_code == 200, r.text
        assert (r.json()["value"], r.json()["secret"]) == ("***", True)
        listed = (await c.get("/api/kv")).json()["data"]
        assert [(e["key"], e["value"], e["secret"]) for e in listed] == [("api-token", "***", True)]
        # Replacing the value without saying keeps the mark; false removes it.
        r = await c.post("/api/kv", json={"key": "api-token", "value": "n3w-s3cr3t"})
        assert (r.json()["value"], r.json()["secret"]) == ("***", True)
        get = {"ref": "t", "appId": "kv-get", "args": {"key": "api-token", "scope": "global"}}
        use = {"ref": "u", "appId": "template", "args": {"text": "Bearer {{ $prev.t.value }}"}}
        fid = (await c.post("/api/flows", json={"name": "s", "flowlets": [get, use]})).json()["id"]
        play = (await c.post(f"/api/flows/{fid}/run?wait=10", json={})).json()
        assert play["state"] == "DONE"
        assert play["out"] == {"text": "Bearer ***"}
        layers = (await c.get(f"/api/plays/{play['id']}/layers")).json()["data"]
        assert "n3w-s3cr3t" not in str(layers)
        r = await c.post("/api/kv", json={"key": "api-token", "value": "open", "secret": False})
        assert (r.json()["value"], r.json()["secret"]) == ("open", False)


async def test_plays_filter_by_creation_time_and_bad_input_is_422(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        flow = {"name": "typed", "inputSchema": {"type": "object", "required": ["x"]},
                "flowlets": [STEP]}  # fmt: skip
        fid = (await c.post("/api/flows", json=flow)).json()["id"]
        refused = await c.post(f"/api/flows/{fid}/run", json={"y": 1})
        assert refused.status_code == 422
        assert refused.json()["error"] == "VALIDATION_FAILED"
        first = (await c.post(f"/api/flows/{fid}/run?wait=10", json={"x": 1})).json()
        await trio.sleep(0.005)  # (virtual time) millisecond timestamps: keep the plays apart
        second = (await c.post(f"/api/flows/{fid}/run?wait=10", json={"x": 2})).json()

        async def ids(**params: str) -> list[str]:
            page = (await c.get("/api/plays", params={"flowId": fid, **params})).json()
            return [play["id"] for play in page["data"]]

        assert await ids() == [second["id"], first["id"]]
        moments = [datetime.fromisoformat(p["createdAt"]) for p in (first, second)]
        between = (moments[0] + (moments[1] - moments[0]) / 2).isoformat()
        assert await ids(since=between) == [second["id"]]
        assert await ids(until=between) == [first["id"]]
        bad = await c.get("/api/plays", params={"since": "yesterday"})
        assert bad.status_code == 422
        assert bad.json()["fields"][0]["field"] == "since"
        # Refused query values are described in the API's words, not Python's type names.
        soon = await c.post(f"/api/flows/{fid}/run", params={"wait": "soon"}, json={"x": 1})
        assert soon.status_code == 422
        assert soon.json()["fields"] == [{"field": "wait", "message": "must be a number"}]
        first_page = await c.get("/api/plays", params={"page": "first"})
        assert first_page.status_code == 422
        assert first_page.json()["fields"] == [{"field": "page", "message": "must be an integer"}]
