"""Schedule routes on the real app: create with the next five fire times, validation naming
the field, run now, RBAC (editors manage, everyone reads), tenant isolation, audit, and the
README's examples posted as written."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv

PASSWORD = "member-password-1"
FLOW = {"name": "nightly", "flowlets": [{"ref": "a", "appId": "set", "args": {"value": 1}}]}
BERLIN_NINE = {
    "cron": "0 9 * * 1-5",
    "timezone": "Europe/Berlin",
    "args": {"report": "sales"},
    "misfire": "run_once",
    "description": "weekday report",
}


async def _company(client: httpx.AsyncClient) -> str:
    company: str = (await client.get("/api/auth/me")).json()["companyId"]
    return company


async def _flow(client: httpx.AsyncClient) -> str:
    r = await client.post("/api/flows", json=FLOW)
    assert r.status_code == 201, r.text
    flow_id: str = r.json()["id"]
    return flow_id


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_crud_answers_the_next_five_fire_times(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        flow_id = await _flow(owner)
        r = await owner.post(f"/api/flows/{flow_id}/schedules", json=BERLIN_NINE)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["flowId"] == flow_id
        assert (made["cron"], made["timezone"], made["misfire"]) == (
            "0 9 * * 1-5",
            "Europe/Berlin",
            "run_once",
        )
        assert made["args"] == {"report": "sales"}
        assert made["enabled"] is True
        fires = [_instant(t) for t in made["nextFires"]]
        assert len(fires) == 5
        assert fires == sorted(fires)
        assert made["nextFireAt"] == made["nextFires"][0]
        for t in fires:  # 09:00 in Berlin: 07:00 or 08:00 UTC, Monday to Friday
            assert (t.hour, t.minute, t.second) in ((7, 0, 0), (8, 0, 0))
            assert t.weekday() < 5
        sid = made["id"]
        assert (await owner.get(f"/api/schedules/{sid}")).json()["nextFires"] == made["nextFires"]
        listed = (await owner.get("/api/schedules")).json()["items"]
        assert [s["id"] for s in listed] == [sid]
        assert listed[0]["nextFireAt"] == made["nextFireAt"]
        assert (await owner.get("/api/schedules", params={"flowId": "other"})).json() == {
            "items": []
        }

        r = await owner.put(f"/api/schedules/{sid}", json={"cron": "@hourly", "enabled": False})
        assert r.status_code == 200, r.text
        changed = r.json()
        assert (changed["cron"], changed["enabled"], changed["nextFireAt"]) == (
            "@hourly",
            False,
            None,
        )
        assert len(changed["nextFires"]) == 5  # what it would do once enabled
        assert changed["args"] == {"report": "sales"}  # not given: kept

        r = await owner.post(f"/api/schedules/{sid}/run")
        assert r.status_code == 201, r.text
        play = r.json()
        assert play["flowId"] == flow_id
        assert play["input"]["report"] == "sales"
        assert {"scheduledAt", "firedAt"} <= set(play["input"])

        assert (await owner.delete(f"/api/schedules/{sid}")).status_code == 204
        assert (await owner.get(f"/api/schedules/{sid}")).status_code == 404
        assert (await owner.post("/api/flows/nope/schedules", json=BERLIN_NINE)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"cron": "* * *"}, "cron", "has 3 fields: give 5"),
        ({"cron": "61 * * * *"}, "cron", "is not a valid cron expression"),
        ({"cron": "@yearly"}, "cron", "is not one of @hourly, @daily, @weekly, @monthly"),
        ({"cron": "0 0 31 2 *"}, "cron", "never fires"),
        ({"cron": "@daily", "timezone": "Mars/Olympus"}, "timezone", "not a known IANA"),
        ({"cron": "@daily", "misfire": "later"}, "misfire", ""),
        ({"cron": "@daily", "args": {"firedAt": 1}}, "args", "set by the scheduler"),
        ({"cron": "@daily", "description": "x" * 501}, "description", "longer than 500"),
    ],
)
async def test_bad_schedules_are_refused_naming_the_field(
    installed: ApiEnv, body: dict[str, Any], field: str, message: str
) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        flow_id = await _flow(owner)
        r = await owner.post(f"/api/flows/{flow_id}/schedules", json=body)
        assert r.status_code == 422, r.text
        problems = {p["field"]: p["message"] for p in r.json()["fields"]}
        assert field in problems, r.text
        assert message in problems[field]
        made = await owner.post(f"/api/flows/{flow_id}/schedules", json={"cron": "@daily"})
        r = await owner.put(f"/api/schedules/{made.json()['id']}", json=body)
        assert r.status_code == 422, r.text
        assert field in {p["field"] for p in r.json()["fields"]}
        assert len((await owner.get("/api/schedules")).json()["items"]) == 1


async def test_every_problem_is_listed_at_once(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        flow_id = await _flow(owner)
        r = await owner.post(
            f"/api/flows/{flow_id}/schedules",
            json={"cron": "nope", "timezone": "Nowhere/Land"},
        )
        assert r.status_code == 422, r.text
        assert {p["field"] for p in r.json()["fields"]} == {"cron", "timezone"}
        assert "cron: " in r.json()["message"]


@pytest.mark.parametrize("role", ["viewer", "operator", "editor", "admin"])
async def test_editors_manage_everyone_reads(installed: ApiEnv, role: str) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company = await _company(owner)
        await installed.invite_and_accept(owner, company, f"{role}@example.com", role, PASSWORD)
        flow_id = await _flow(owner)
        sid = (await owner.post(f"/api/flows/{flow_id}/schedules", json=BERLIN_NINE)).json()["id"]
    writes = [
        ("POST", f"/api/flows/{flow_id}/schedules", BERLIN_NINE),
        ("PUT", f"/api/schedules/{sid}", {"description": "changed"}),
        ("POST", f"/api/schedules/{sid}/run", None),
        ("DELETE", f"/api/schedules/{sid}", None),
    ]
    async with installed.session(f"{role}@example.com", PASSWORD) as member:
        assert len((await member.get("/api/schedules")).json()["items"]) == 1
        assert (await member.get(f"/api/schedules/{sid}")).status_code == 200
        for method, url, body in writes:
            r = await member.request(method, url, json=body)
            if role in ("editor", "admin"):
                assert r.status_code in (200, 201, 204), f"{method} {url}: {r.text}"
            else:
                assert r.status_code == 403, f"{role} {method} {url}: {r.text}"
                assert r.json()["error"] == "PERMISSION_DENIED"


async def test_another_companys_schedule_is_not_found_and_unchanged(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        company_a = await _company(owner)
        flow_id = await _flow(owner)
        sid = (await owner.post(f"/api/flows/{flow_id}/schedules", json=BERLIN_NINE)).json()["id"]
        company_b = (await owner.post("/api/companies", json={"name": "Beta"})).json()["id"]
        assert (await owner.post("/api/auth/company", json={"companyId": company_b})).is_success
        for method, url, body in (
            ("GET", f"/api/schedules/{sid}", None),
            ("PUT", f"/api/schedules/{sid}", {"cron": "* * * * * *"}),
            ("POST", f"/api/schedules/{sid}/run", None),
            ("DELETE", f"/api/schedules/{sid}", None),
            ("POST", f"/api/flows/{flow_id}/schedules", BERLIN_NINE),
        ):
            r = await owner.request(method, url, json=body)
            assert r.status_code == 404, f"{method} {url}: {r.text}"
        assert (await owner.get("/api/schedules")).json()["items"] == []
        assert (await owner.post("/api/auth/company", json={"companyId": company_a})).is_success
        kept = (await owner.get(f"/api/schedules/{sid}")).json()
        assert kept["cron"] == "0 9 * * 1-5"
        plays = (await owner.get("/api/plays")).json()
        assert plays["total"] == 0


async def test_audit_records_each_change(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        flow_id = await _flow(owner)
        sid = (await owner.post(f"/api/flows/{flow_id}/schedules", json=BERLIN_NINE)).json()["id"]
        await owner.put(f"/api/schedules/{sid}", json={"cron": "@daily"})
        await owner.post(f"/api/schedules/{sid}/run")
        await owner.delete(f"/api/schedules/{sid}")
        await installed.audit.wait_idle()
        r = await owner.get("/api/audit", params={"targetType": "schedule", "size": 100})
        entries = {e["action"]: e for e in r.json()["data"]}
    assert sorted(entries) == [
        "schedule_created",
        "schedule_deleted",
        "schedule_run",
        "schedule_updated",
    ]
    assert {e["targetId"] for e in entries.values()} == {sid}
    updated = entries["schedule_updated"]
    assert updated["before"]["cron"] == "0 9 * * 1-5"
    assert updated["after"]["cron"] == "@daily"


async def test_deleting_a_flow_deletes_its_schedules_and_audits_them(installed: ApiEnv) -> None:
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        doomed, kept = await _flow(owner), await _flow(owner)
        gone = [
            (await owner.post(f"/api/flows/{doomed}/schedules", json=body)).json()["id"]
            for body in (BERLIN_NINE, {"cron": "@hourly"})
        ]
        stays = (await owner.post(f"/api/flows/{kept}/schedules", json=BERLIN_NINE)).json()["id"]
        assert (await owner.delete(f"/api/flows/{doomed}")).status_code == 204
        listed = (await owner.get("/api/schedules")).json()["items"]
        assert [s["id"] for s in listed] == [stays]
        for sid in gone:
            assert (await owner.get(f"/api/schedules/{sid}")).status_code == 404
        await installed.audit.wait_idle()
        r = await owner.get("/api/audit", params={"action": "schedule_deleted", "size": 100})
    assert sorted(e["targetId"] for e in r.json()["data"]) == sorted(gone)


async def test_the_readme_examples_create_what_they_say(installed: ApiEnv) -> None:
    text = (Path(__file__).parents[2] / "README.md").read_text()
    section = text[text.index("## Schedules") :]
    section = section[: section.index("\n## ", 3)]
    bodies = [json.loads(b) for b in re.findall(r"-d '(\{.*?\})'", section, re.S)]
    assert len(bodies) >= 2
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        flow_id = await _flow(owner)
        made = await owner.post(f"/api/flows/{flow_id}/schedules", json=bodies[0])
        assert made.status_code == 201, made.text
        assert len(made.json()["nextFires"]) == 5
        for body in bodies[1:]:
            r = await owner.put(f"/api/schedules/{made.json()['id']}", json=body)
            assert r.status_code == 200, r.text
