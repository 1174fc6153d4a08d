"""Retention policies over HTTP (RBAC, tenant isolation, validation, audit), the jobs'
statistics at GET /api/jobs and in the actor tree, and GET /api/audit/filters."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv

import actors
from flow8.jobs import CleanupJobs, cleanup_jobs, jobs_child
from flow8.services.audit import AuditFilterCache
from flow8.services.retention import RetentionPolicies
from flow8.store import new_id

PASSWORD = "member-password-1"
PLAYS = {"scope": "plays", "target": "company", "maxAgeDays": 60, "minEntries": 5}


def wire(api: ApiEnv) -> CleanupJobs:
    """The retention service, audit filter cache and jobs, as flow8.app wires them."""
    policies = RetentionPolicies(api.store)
    filters = AuditFilterCache(api.store)
    cleanup = cleanup_jobs(api.store, policies, api.audit.record, filters)
    deps = api.app.deps
    deps.retention, deps.audit_filters, deps.jobs = policies, filters, cleanup.stats
    return cleanup


async def _company(client: httpx.AsyncClient) -> str:
    company: str = (await client.get("/api/auth/me")).json()["companyId"]
    return company


async def test_policies_are_created_listed_changed_and_deleted(installed: ApiEnv) -> None:
    wire(installed)
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.get("/api/retention-policies")
        assert r.status_code == 200, r.text
        assert r.json()["items"] == []
        defaults = {d["scope"]: d for d in r.json()["defaults"]}
        assert (defaults["audit"]["maxAgeDays"], defaults["audit"]["minEntries"],
                defaults["audit"]["enforcedMinimumDays"]) == (30, 10, 14)  # fmt: skip
        assert (defaults["plays"]["maxAgeDays"], defaults["plays"]["minEntries"]) == (90, 100)
        assert defaults["plays.filtered"]["enforcedMinimumDays"] == 3
        r = await owner.post("/api/retention-policies", json=PLAYS)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["targetId"] is None
        assert made["enabled"] is True
        assert made["enforcedMinimumDays"] == 1  # the configured floor, when not given
        pid = made["id"]
        r = await owner.put(f"/api/retention-policies/{pid}", json={"maxAgeDays": 20})
        assert r.status_code == 200, r.text
        assert (r.json()["maxAgeDays"], r.json()["minEntries"]) == (20, 5)
        flow = {"scope": "plays", "target": "flow", "targetId": "f1", "maxAgeDays": 7}
        assert (await owner.post("/api/retention-policies", json=flow)).status_code == 201
        assert len((await owner.get("/api/retention-policies")).json()["items"]) == 2
        r = await owner.post("/api/retention-policies", json=PLAYS)
        assert r.status_code == 409
        assert r.json()["error"] == "RETENTION_POLICY_EXISTS"
        assert (await owner.delete(f"/api/retention-policies/{pid}")).status_code == 204
        r = await owner.delete(f"/api/retention-policies/{pid}")
        assert r.status_code == 404
        assert r.json()["error"] == "RETENTION_POLICY_NOT_FOUND"
        await installed.audit.wait_idle()
        r = await owner.get("/api/audit", params={"targetType": "retention_policy"})
        actions = sorted(e["action"] for e in r.json()["data"])
        assert actions == ["retention_policy_created", "retention_policy_created",
                           "retention_policy_deleted", "retention_policy_updated"]  # fmt: skip
        updated = next(e for e in r.json()["data"] if e["action"] == "retention_policy_updated")
        assert (updated["before"]["maxAgeDays"], updated["after"]["maxAgeDays"]) == (60, 20)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({**PLAYS, "maxAgeDays": 2, "enforcedMinimumDays": 5}, "maxAgeDays",
         "below enforcedMinimumDays"),
        ({"scope": "audit", "maxAgeDays": 30, "enforcedMinimumDays": 7}, "enforcedMinimumDays",
         "may not be under 14 days"),
        ({**PLAYS, "scope": "logs"}, "scope", 'must be one of: "audit", "plays", "plays.filtered"'),
        ({**PLAYS, "target": "flow"}, "targetId", "required for target flow"),
        ({**PLAYS, "targetId": "x"}, "targetId", "absent for target company"),
        ({"scope": "audit", "target": "group", "targetId": "g", "maxAgeDays": 30}, "target",
         "whole company"),
        ({"scope": "plays"}, "maxAgeDays", "required"),
        ({**PLAYS, "minEntries": -1}, "minEntries", "whole number"),
        ({**PLAYS, "enabled": "yes"}, "enabled", "must be a boolean"),
        ({**PLAYS, "color": "red"}, "color", "unknown field"),
    ],
)  # fmt: skip
async def test_bad_policies_are_refused_naming_the_field(
    installed: ApiEnv, body: dict[str, Any], field: str, words: str
) -> None:
    wire(installed)
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        r = await owner.post("/api/retention-policies", json=body)
        assert r.status_code == 422, r.text
        fields = {f["field"]: f["message"] for f in r.json()["fields"]}
        assert words in fields[field], fields
        pid = (await owner.post("/api/retention-policies", json=PLAYS)).json()["id"]
        r = await owner.put(
            f"/api/retention-policies/{pid}", json={"maxAgeDays": 0.5, "enforcedMinimumDays": 2}
        )
        assert r.status_code == 422, r.text
        assert (await owner.get("/api/retention-policies")).json()["items"][0]["maxAgeDays"] == 60


@pytest.mark.parametrize("role", ["viewer", "operator", "editor", "admin"])
async def test_only_admins_and_owners_manage_policies_and_see_jobs(
    installed: ApiEnv, role: str
) -> None:
    wire(installed)
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company = await _company(owner)
        await installed.invite_and_accept(owner, company, f"{role}@example.com", role, PASSWORD)
        pid = (await owner.post("/api/retention-policies", json=PLAYS)).json()["id"]
    calls = [
        ("GET", "/api/retention-policies", None),
        ("GET", "/api/jobs", None),
        ("POST", "/api/retention-policies", {**PLAYS, "target": "group", "targetId": "g"}),
        ("PUT", f"/api/retention-policies/{pid}", {"maxAgeDays": 61}),
        ("DELETE", f"/api/retention-policies/{pid}", None),
    ]
    async with installed.session(f"{role}@example.com", PASSWORD) as member:
        for method, url, body in calls:
            r = await member.request(method, url, json=body)
            if role == "admin":
                assert r.status_code in (200, 201, 204), f"{method} {url}: {r.text}"
            else:
                assert r.status_code == 403, f"{role} {method} {url}: {r.text}"


async def test_another_companys_policy_is_not_found_and_unchanged(installed: ApiEnv) -> None:
    wire(installed)
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company_a = await _company(owner)
        pid = (await owner.post("/api/retention-policies", json=PLAYS)).json()["id"]
        company_b = (await owner.post("/api/companies", json={"name": "Beta"})).json()["id"]
        assert (await owner.post("/api/auth/company", json={"companyId": company_b})).is_success
        assert (await owner.get("/api/retention-policies")).json()["items"] == []
        for method, body in (("PUT", {"maxAgeDays": 1000}), ("DELETE", None)):
            r = await owner.request(method, f"/api/retention-policies/{pid}", json=body)
            assert r.status_code == 404, f"{method}: {r.text}"
        # the same scope and target is B's own to create
        assert (await owner.post("/api/retention-policies", json=PLAYS)).status_code == 201
        assert (await owner.post("/api/auth/company", json={"companyId": company_a})).is_success
        [mine] = (await owner.get("/api/retention-policies")).json()["items"]
        assert (mine["id"], mine["maxAgeDays"]) == (pid, 60)


async def test_the_readme_examples_create_what_they_say(installed: ApiEnv) -> None:
    wire(installed)
    text = (Path(__file__).parents[2] / "README.md").read_text()
    start = text.index("## Retention")
    section = text[start : text.index("\n## ", start)]
    bodies = [json.loads(b) for b in re.findall(r"-d '(\{.*?\})'", section)]
    assert [b.get("scope") for b in bodies] == ["plays", "plays", "audit", None]
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        ids = []
        for body in bodies[:3]:
            r = await owner.post("/api/retention-policies", json=body)
            assert r.status_code == 201, (body, r.text)
            ids.append(r.json()["id"])
        r = await owner.put(f"/api/retention-policies/{ids[0]}", json=bodies[3])
        assert r.status_code == 200
        assert r.json()["enabled"] is False
        assert (await owner.get("/api/jobs")).status_code == 200


async def test_jobs_show_their_last_run_in_the_api_and_the_actor_tree(installed: ApiEnv) -> None:
    cleanup = wire(installed)
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company = await _company(owner)
        r = await owner.get("/api/jobs")
        assert r.status_code == 200, r.text
        jobs = {j["name"]: j for j in r.json()["items"]}
        assert set(jobs) == {"retention", "audit-cache", "ttl-cache"}
        assert jobs["retention"]["intervalSeconds"] == 120
        assert jobs["audit-cache"]["intervalSeconds"] == 180
        assert jobs["ttl-cache"]["intervalSeconds"] == 60
        assert jobs["retention"]["runs"] == 0
        assert jobs["retention"]["lastRunAt"] is None
        # 12 finished plays of 200 days ago: the company policy keeps 5 of them
        t = installed.store.tenant(company)
        old = time.time() - 200 * 86_400
        await t.collection("flows").insert_one({"_id": "f1", "name": "f1", "definition": {}})
        ids = [new_id() for _ in range(12)]
        await t.collection("plays").insert_many(
            [{"_id": p, "flow_id": "f1", "flow_version": 1, "status": "DONE", "created_at": old + i}
             for i, p in enumerate(ids)]
        )  # fmt: skip
        await t.collection("play_layers").insert_many(
            [{"_id": f"{p}:a", "play_id": p, "layer_id": "a", "seq": 0} for p in ids]
        )
        assert (await owner.post("/api/retention-policies", json=PLAYS)).status_code == 201
        async with actors.open_runtime(
            actors.SupervisorSpec([jobs_child(*cleanup.children())])
        ) as runtime:
            await cleanup.job("retention").run_once()
            tree = runtime.tree()
        [jobs_node] = tree["children"]
        nodes = {n["name"]: n for n in jobs_node["children"]}
        assert nodes["retention"]["info"]["lastRemoved"]["plays"] == 7
        assert nodes["retention"]["info"]["nextRunAt"] is not None
        assert nodes["audit-cache"]["info"]["runs"] == 1  # runs once at start
        r = await owner.get("/api/jobs")
        retention = next(j for j in r.json()["items"] if j["name"] == "retention")
        assert retention["runs"] == 1
        assert retention["lastRunAt"] is not None
        assert retention["lastRemoved"]["plays"] == 7
        assert retention["lastRemoved"]["layers"] == 7
        assert retention["lastDurationMs"] >= 0
        r = await owner.get(f"/api/plays/{ids[-1]}")
        assert r.status_code == 200, r.text
        assert (await owner.get(f"/api/plays/{ids[0]}")).status_code == 404
        await installed.audit.wait_idle()
        r = await owner.get("/api/audit", params={"action": "retention_run"})
        [entry] = r.json()["data"]
        assert entry["details"]["plays"] == 7
        # another company sees when the jobs ran, never what they removed of this one
        other = (await owner.post("/api/companies", json={"name": "Beta"})).json()["id"]
        assert (await owner.post("/api/auth/company", json={"companyId": other})).is_success
        r = await owner.get("/api/jobs")
        retention = next(j for j in r.json()["items"] if j["name"] == "retention")
        assert retention["runs"] == 1
        assert retention["lastRemoved"] == {}
        assert retention["totalRemoved"] == {}


async def test_audit_filters_answer_the_values_in_the_trail(installed: ApiEnv) -> None:
    cleanup = wire(installed)
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        assert (await owner.post("/api/retention-policies", json=PLAYS)).status_code == 201
        await installed.audit.wait_idle()
        await cleanup.job("audit-cache").run_once()
        r = await owner.get("/api/audit/filters")
        assert r.status_code == 200, r.text
        values = r.json()
        assert "retention_policy_created" in values["actions"]
        assert "retention_policy" in values["targetTypes"]
        assert OWNER_EMAIL in [u["email"] for u in values["users"]]
        assert values["refreshedAt"]
        # what happened since is seen after the next refresh, not before
        pid = (await owner.get("/api/retention-policies")).json()["items"][0]["id"]
        await owner.delete(f"/api/retention-policies/{pid}")
        await installed.audit.wait_idle()
        before = (await owner.get("/api/audit/filters")).json()["actions"]
        assert "retention_policy_deleted" not in before
        await cleanup.job("audit-cache").run_once()
        after = (await owner.get("/api/audit/filters")).json()["actions"]
        assert "retention_policy_deleted" in after
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company = await _company(owner)
        await installed.invite_and_accept(owner, company, "viewer@example.com", "viewer", PASSWORD)
    async with installed.session("viewer@example.com", PASSWORD) as viewer:
        assert (await viewer.get("/api/audit/filters")).status_code == 403
