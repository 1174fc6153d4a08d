"""Usage and budgets over HTTP: plays and layers carry what their AI steps spent,
GET /api/usage reports it, budgets are set by admins only, checked before each AI step and
audited."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv

from flow8.domain import AiUsage
from flow8.modules import ModuleContext, ModuleSpec

PASSWORD = "member-password-1"


def _metered(calls: list[str]) -> ModuleSpec:
    """A twin of an AI step: one "provider call" per run, recorded as the AI modules do."""

    async def ask(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        calls.append(ctx.ref)
        ctx.record_usage(AiUsage("openai", "gpt-4o-mini", 1000, 100, args["cost"]))
        return {"response": "ok"}

    return ModuleSpec("ask", "ai", "metered", {"type": "object"}, {}, False, ask, metered=True)


async def _company(client: httpx.AsyncClient) -> str:
    company: str = (await client.get("/api/auth/me")).json()["companyId"]
    return company


async def _flow(client: httpx.AsyncClient, name: str, costs: list[float]) -> str:
    flowlets = [{"ref": f"s{i}", "appId": "ask", "args": {"cost": c}} for i, c in enumerate(costs)]
    r = await client.post("/api/flows", json={"name": name, "flowlets": flowlets})
    assert r.status_code == 201, r.text
    flow_id: str = r.json()["id"]
    return flow_id


async def test_plays_report_and_budgets(installed: ApiEnv) -> None:
    calls: list[str] = []
    assert installed.app.deps.modules is not None
    installed.app.deps.modules.registry.register(_metered(calls))
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        flow = await _flow(owner, "summaries", [0.25, 0.5])
        r = await owner.post(f"/api/flows/{flow}/run?wait=10", json={})
        assert r.status_code == 200, r.text
        play = r.json()
        assert play["state"] == "DONE"
        assert play["usage"] == {"calls": 2, "inputTokens": 2000, "outputTokens": 200,
                                 "cost": 0.75}  # fmt: skip
        layers = (await owner.get(f"/api/plays/{play['id']}/layers")).json()["data"]
        assert [la["usage"] for la in layers] == [
            [
                {
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "inputTokens": 1000,
                    "outputTokens": 100,
                    "cost": cost,
                }
            ]
            for cost in (0.25, 0.5)
        ]
        r = await owner.get("/api/usage", params={"groupBy": "model"})
        assert r.status_code == 200, r.text
        report = r.json()
        assert [(row["key"], row["calls"], row["cost"]) for row in report["rows"]] == [
            ("openai/gpt-4o-mini", 2, 0.75)
        ]
        assert report["total"]["cost"] == 0.75
        by_flow = (await owner.get("/api/usage", params={"groupBy": "flow"})).json()
        assert [row["key"] for row in by_flow["rows"]] == [flow]
        old = await owner.get("/api/usage", params={"from": "2020-01-01", "to": "2020-01-31"})
        assert old.json()["rows"] == []

        for params, field in (({"from": "yesterday"}, "from"),
                              ({"from": "2026-02-30"}, "from"),
                              ({"from": "2026-03-01", "to": "2026-02-01"}, "to"),
                              ({"groupBy": "week"}, "groupBy")):  # fmt: skip
            r = await owner.get("/api/usage", params=params)
            assert r.status_code == 422, (params, r.text)
            assert [f["field"] for f in r.json()["fields"]] == [field], r.text

        # A budget the next play runs past: its second step is refused before its call.
        r = await owner.put("/api/budgets/company", json={"period": "month", "maxCost": 1.0})
        assert r.status_code == 200, r.text
        assert (r.json()["spent"], r.json()["maxCost"], r.json()["flowId"]) == (0.75, 1.0, None)
        r = await owner.post(f"/api/flows/{flow}/run?wait=10", json={})
        failed = r.json()
        assert failed["state"] == "FAIL"
        assert failed["error"].startswith("step 's1': BUDGET_EXCEEDED: the company's monthly")
        assert calls == ["s0", "s1", "s0"]
        assert failed["usage"]["calls"] == 1

        for body in ({"period": "week", "maxCost": 1}, {"period": "day", "maxCost": -1}):
            r = await owner.put("/api/budgets/company", json=body)
            assert r.status_code == 422, r.text
        r = await owner.put("/api/budgets/flows/no-such-flow", json={"period": "day", "maxCost": 1})
        assert r.status_code == 404
        r = await owner.put(f"/api/budgets/flows/{flow}", json={"period": "day", "maxCost": 5})
        assert r.status_code == 200, r.text
        budgets = (await owner.get("/api/budgets")).json()["items"]
        assert sorted((b["flowId"] or "", b["period"]) for b in budgets) == [
            ("", "month"),
            (flow, "day"),
        ]
        assert (await owner.delete("/api/budgets/company")).status_code == 204
        assert (await owner.delete("/api/budgets/company")).status_code == 404

        await installed.audit.wait_idle()
        r = await owner.get("/api/audit", params={"action": "budget_exceeded"})
        [refusal] = r.json()["data"]
        assert (refusal["targetId"], refusal["details"]["ref"]) == (failed["id"], "s1")
        r = await owner.get("/api/audit", params={"targetType": "budget"})
        assert sorted(e["action"] for e in r.json()["data"]) == [
            "budget_created", "budget_created", "budget_deleted"]  # fmt: skip


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
async def test_only_admins_and_owners_set_budgets(installed: ApiEnv, role: str) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company = await _company(owner)
        await installed.invite_and_accept(owner, company, f"{role}@example.com", role, PASSWORD)
    async with installed.session(f"{role}@example.com", PASSWORD) as member:
        assert (await member.get("/api/budgets")).status_code == 200
        assert (await member.get("/api/usage")).status_code == 200
        r = await member.put("/api/budgets/company", json={"period": "day", "maxCost": 3})
        assert r.status_code == (200 if role == "admin" else 403), r.text


async def test_a_company_sees_only_its_own_usage(installed: ApiEnv) -> None:
    calls: list[str] = []
    assert installed.app.deps.modules is not None
    installed.app.deps.modules.registry.register(_metered(calls))
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        flow = await _flow(owner, "one", [2.0])
        assert (await owner.post(f"/api/flows/{flow}/run?wait=10", json={})).status_code == 200
        r = await owner.post("/api/companies", json={"name": "Other Co"})
        assert r.status_code == 201, r.text
        other = r.json()["id"]
        r = await owner.post("/api/auth/company", json={"companyId": other})
        assert r.status_code == 200, r.text
        r = await owner.get("/api/usage")
        assert r.status_code == 200, r.text
        assert r.json()["rows"] == []
        r = await owner.put(f"/api/budgets/flows/{flow}", json={"period": "day", "maxCost": 1})
        assert r.status_code == 404  # another company's flow is not found
