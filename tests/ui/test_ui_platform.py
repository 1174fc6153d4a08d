"""The platform pages in a real browser: components, channels and their routes, schedules
and retention are created, changed and deleted through the pages (checked through the API);
secrets never come back in a page; a viewer sees no write controls and is refused."""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Any

from ui_fixtures import Instance, needs_chromium, shoot, sign_in

pytestmark = needs_chromium
_names = itertools.count(1)


def _flow(instance: Instance) -> dict[str, Any]:
    name = f"target-{next(_names)}"
    body = {
        "name": name,
        "flowlets": [{"ref": "greet", "appId": "template", "args": {"text": "hi"}}],
    }
    made: dict[str, Any] = instance.post("/api/flows", body)
    return made


def _audited(instance: Instance, target_id: str, *actions: str) -> list[dict[str, Any]]:
    """The audit entries of ``target_id`` once all of ``actions`` are recorded (the audit
    log writes in the background: asked again until they are there, for up to 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        params = {"targetId": target_id, "size": 100}
        entries: list[dict[str, Any]] = instance.api.get("/api/audit", params=params).json()["data"]
        if {e["action"] for e in entries} >= set(actions) or time.monotonic() > deadline:
            return entries


def _accept_confirms(page: Any) -> None:
    page.on("dialog", lambda dialog: dialog.accept())


def _components(instance: Instance) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = instance.api.get("/api/components").json()["items"]
    return items


def test_a_component_is_created_tested_edited_and_deleted(
    instance: Instance, new_page: Any
) -> None:
    page = new_page(instance.base)
    _accept_confirms(page)
    sign_in(page)
    page.goto("/components")
    assert page.get_by_role("heading", name="storage").is_visible()
    page.get_by_role("link", name="New local").click()
    page.get_by_label("Name", exact=True).fill("files")
    page.get_by_label("rootPath").fill("exports")
    page.get_by_label("Default storage component of this company").check()
    shoot(page, "platform-component-form")
    page.get_by_role("button", name="Create component").click()
    page.wait_for_url(re.compile(r"/components#c-"))
    [made] = [c for c in _components(instance) if c["name"] == "files"]
    assert made["config"] == {"rootPath": "exports"}
    assert made["isDefault"] is True
    page.goto("/components")
    row = page.locator(f"#c-{made['id']}")
    row.get_by_role("button", name="Test connection of files").click()
    result = row.locator(".test-result span")
    result.wait_for()
    assert re.match(r"[✓✗] (Connected|Failed): ", result.inner_text())
    shoot(page, "platform-components")
    row.get_by_role("link", name="Edit files").click()
    assert page.get_by_label("rootPath").input_value() == "exports"
    page.get_by_label("rootPath").fill("exports-2")
    page.get_by_label("Name", exact=True).fill("files-2")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/components#c-"))
    [changed] = [c for c in _components(instance) if c["id"] == made["id"]]
    assert changed["name"] == "files-2"
    assert changed["config"] == {"rootPath": "exports-2"}
    page.get_by_role("button", name="Delete files-2").click()
    page.wait_for_url(re.compile(r"/components$"))
    assert all(c["id"] != made["id"] for c in _components(instance))
    actions = ("component_created", "component_tested", "component_updated", "component_deleted")
    assert {e["action"] for e in _audited(instance, made["id"], *actions)} >= set(actions)


def test_a_component_secret_never_comes_back_and_problems_show_beside_fields(
    instance: Instance, new_page: Any
) -> None:
    page = new_page(instance.base)
    sign_in(page)
    page.goto("/components/new?kind=email&provider=smtp")
    page.get_by_label("Name", exact=True).fill("mailer")
    page.get_by_label("password").fill("smtp-secret-value-42")
    page.get_by_label("port (optional)").fill("99999")
    page.get_by_role("button", name="Create component").click()
    assert page.locator("#e-config\\.host").is_visible()  # required, named beside it
    assert page.locator("#e-config\\.port").is_visible()
    assert "smtp-secret-value-42" not in page.content()  # not echoed back in the form
    page.get_by_label("host", exact=True).fill("mail.example.com")
    page.get_by_label("from", exact=True).fill("flows@example.com")
    page.get_by_label("port (optional)").fill("587")
    page.get_by_label("username (optional)").fill("mailer-user")
    page.get_by_label("password").fill("smtp-secret-value-42")
    page.get_by_role("button", name="Create component").click()
    page.wait_for_url(re.compile(r"/components#c-"))
    assert "smtp-secret-value-42" not in page.content()
    [made] = [c for c in _components(instance) if c["name"] == "mailer"]
    assert made["secretFields"] == ["password"]
    assert made["config"]["port"] == 587
    page.goto(f"/components/{made['id']}/edit")
    assert "smtp-secret-value-42" not in page.content()
    assert page.get_by_role("textbox", name=re.compile("^password")).input_value() == ""
    page.get_by_role("button", name="Save").click()  # empty password: the stored one stays
    page.wait_for_url(re.compile(r"/components#c-"))
    [kept] = [c for c in _components(instance) if c["id"] == made["id"]]
    assert kept["secretFields"] == ["password"]


def test_a_channel_and_its_route_are_created_edited_and_deleted(
    instance: Instance, new_page: Any
) -> None:
    flow = _flow(instance)
    other = _flow(instance)
    token = "channel-token-never-shown-1234"
    page = new_page(instance.base)
    _accept_confirms(page)
    sign_in(page)
    page.goto("/channels")
    page.get_by_role("link", name="New channel").click()
    page.get_by_label("Name", exact=True).fill("hooks")
    page.get_by_label("Kind").select_option("http")
    page.get_by_label("Authentication").select_option("header_token")
    page.get_by_label("Bearer token").fill(token)
    page.get_by_role("button", name="Create channel").click()
    page.wait_for_url(re.compile(r"/channels/[^/]+$"))
    assert token not in page.content()
    [made] = [c for c in instance.api.get("/api/channels").json()["items"] if c["name"] == "hooks"]
    assert made["authMode"] == "header_token"
    assert made["secretFields"] == ["authToken"]
    assert f":{made['port']}/" in page.locator("dl.facts").inner_text()  # the address to call
    page.get_by_label("Route name").fill("orders")
    page.get_by_label("Path").fill("/orders/{id}")
    page.get_by_label("Target flows").select_option(flow["id"])
    page.get_by_role("button", name="Add route").click()
    page.wait_for_url(re.compile(r"/channels/[^/]+#r-"))
    routes = instance.api.get(f"/api/channels/{made['id']}/routes").json()["items"]
    assert [(r["name"], r["path"], r["targetFlowIds"]) for r in routes] == [
        ("orders", "/orders/{id}", [flow["id"]])
    ]
    row = page.locator(f"#r-{routes[0]['id']}")
    assert f":{made['port']}/orders/{{id}}" in row.inner_text()
    assert flow["name"] in row.inner_text()
    page.goto(f"/channels/{made['id']}")
    shoot(page, "platform-channel")
    page.locator(f"#r-{routes[0]['id']}").get_by_role("link", name="Edit orders").click()
    page.get_by_label("Target flows").select_option([flow["id"], other["id"]])
    page.get_by_label("Response").select_option("async")
    page.get_by_role("button", name="Save route").click()
    page.wait_for_url(re.compile(r"/channels/[^/]+#r-"))
    [route] = instance.api.get(f"/api/channels/{made['id']}/routes").json()["items"]
    assert set(route["targetFlowIds"]) == {flow["id"], other["id"]}
    assert route["responseMode"] == "async"
    page.get_by_role("button", name="Delete orders").click()
    page.wait_for_url(re.compile(r"/channels/[^/]+$"))
    assert instance.api.get(f"/api/channels/{made['id']}/routes").json()["items"] == []
    page.get_by_role("link", name="Edit hooks").click()
    page.get_by_label("Name", exact=True).fill("hooks-2")
    page.get_by_role("button", name="Save").click()  # token left empty: kept
    page.wait_for_url(re.compile(r"/channels/[^/]+$"))
    changed = instance.api.get(f"/api/channels/{made['id']}").json()
    assert changed["name"] == "hooks-2"
    assert changed["secretFields"] == ["authToken"]
    page.goto("/channels")
    page.get_by_role("button", name="Disable hooks-2").click()
    page.wait_for_url(re.compile(r"/channels$"))
    assert instance.api.get(f"/api/channels/{made['id']}").json()["enabled"] is False
    shoot(page, "platform-channels")
    assert token not in page.content()
    page.get_by_role("button", name="Delete hooks-2").click()
    page.wait_for_url(re.compile(r"/channels$"))
    assert instance.api.get(f"/api/channels/{made['id']}").status_code == 404
    actions = ("channel_created", "channel_route_created", "channel_route_updated")
    actions += ("channel_route_deleted", "channel_updated", "channel_deleted")
    entries = _audited(instance, made["id"], *actions)
    assert {e["action"] for e in entries} >= set(actions)  # as the REST routes record them
    assert token not in str(entries)


def test_a_schedule_shows_its_cron_problem_then_is_created_edited_and_deleted(
    instance: Instance, new_page: Any
) -> None:
    flow = _flow(instance)
    page = new_page(instance.base)
    _accept_confirms(page)
    sign_in(page)
    page.goto("/schedules")
    page.get_by_role("link", name="New schedule").click()
    page.get_by_label("Flow").select_option(flow["id"])
    page.get_by_label("Cron expression").fill("every tuesday")
    page.get_by_role("button", name="Create schedule").click()
    problem = page.locator("#e-cron")
    assert problem.is_visible()
    assert problem.inner_text()
    assert page.get_by_label("Cron expression").get_attribute("aria-describedby") == "e-cron"
    page.get_by_label("Cron expression").fill("*/5 * * * *")
    page.get_by_label("Timezone").fill("Europe/Berlin")
    page.get_by_role("button", name="Create schedule").click()
    page.wait_for_url(re.compile(r"/schedules#s-"))
    items = instance.api.get("/api/schedules", params={"flowId": flow["id"]}).json()["items"]
    [made] = items
    assert (made["cron"], made["timezone"], made["enabled"]) == (
        "*/5 * * * *",
        "Europe/Berlin",
        True,
    )
    row = page.locator(f"#s-{made['id']}")
    assert flow["name"] in row.inner_text()
    assert "UTC" in row.inner_text()
    shoot(page, "platform-schedules")
    row.get_by_role("link", name="Edit").click()
    page.get_by_label("Cron expression").fill("@daily")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/schedules#s-"))
    assert instance.api.get(f"/api/schedules/{made['id']}").json()["cron"] == "@daily"
    page.locator(f"#s-{made['id']}").get_by_role("button", name=re.compile("^Disable")).click()
    page.wait_for_url(re.compile(r"/schedules#s-"))
    assert instance.api.get(f"/api/schedules/{made['id']}").json()["enabled"] is False
    page.locator(f"#s-{made['id']}").get_by_role("button", name=re.compile("^Delete")).click()
    page.wait_for_url(re.compile(r"/schedules$"))
    assert instance.api.get(f"/api/schedules/{made['id']}").status_code == 404
    actions = ("schedule_created", "schedule_updated", "schedule_deleted")
    assert {e["action"] for e in _audited(instance, made["id"], *actions)} >= set(actions)


def test_retention_lists_policies_and_jobs_and_adds_a_policy(
    instance: Instance, new_page: Any
) -> None:
    page = new_page(instance.base)
    _accept_confirms(page)
    sign_in(page)
    page.goto("/retention")
    assert page.get_by_role("heading", name="Jobs").is_visible()
    page.get_by_label("Scope").select_option("audit")
    page.get_by_label("Max age (days)").fill("90")
    page.get_by_label("Enabled").check()
    page.get_by_role("button", name="Add policy").click()
    page.wait_for_url(re.compile(r"/retention$"))
    policies = instance.api.get("/api/retention-policies").json()["items"]
    assert [(p["scope"], p["maxAgeDays"]) for p in policies] == [("audit", 90)]
    shoot(page, "platform-retention")
    page.get_by_role("button", name="Delete audit policy of company").click()
    page.wait_for_url(re.compile(r"/retention$"))
    assert instance.api.get("/api/retention-policies").json()["items"] == []


def test_a_viewer_sees_no_write_controls_and_is_refused(instance: Instance, new_page: Any) -> None:
    flow = _flow(instance)
    channel = instance.post("/api/channels", {"name": f"ro-{next(_names)}", "kind": "http"})
    route = {"name": "in", "path": "/in", "targetFlowIds": [flow["id"]]}
    instance.post(f"/api/channels/{channel['id']}/routes", route)
    instance.post(f"/api/flows/{flow['id']}/schedules", {"cron": "@hourly"})
    instance.post(
        "/api/components",
        {
            "name": f"ro-{next(_names)}",
            "kind": "storage",
            "provider": "local",
            "config": {"rootPath": "ro"},
        },
    )
    email, password = instance.member("viewer")
    page = new_page(instance.base)
    sign_in(page, email, password)
    for path in ("/components", "/channels", f"/channels/{channel['id']}", "/schedules"):
        page.goto(path)
        main = page.locator("main")
        assert main.locator("table").count() >= 1, path  # the data is shown
        assert main.locator("form[method=post]").count() == 0, path  # no write control
        assert main.get_by_role("link", name=re.compile(r"^(New|Edit)")).count() == 0, path
        assert main.get_by_role("button").count() == 0, path
    token = page.locator("header input[name=csrf_token]").first.input_value()
    assert token
    for target, form in (
        ("/channels/new", {"name": "sneaky", "kind": "http"}),
        (f"/channels/{channel['id']}/delete", {}),
        ("/schedules/new", {"flowId": flow["id"], "cron": "@daily"}),
        ("/components/new", {"kind": "storage", "provider": "local", "name": "x"}),
    ):
        refused = page.request.post(target, form={"csrf_token": token, **form})
        assert refused.status == 403, target
        assert "PERMISSION_DENIED" in refused.text()
    assert instance.api.get(f"/api/channels/{channel['id']}").status_code == 200
    page.goto("/retention")
    assert "PERMISSION_DENIED" in page.content()


def test_an_hmac_channel_keeps_its_secret_out_of_the_page_and_an_mcp_route_names_its_tool(
    instance: Instance, new_page: Any
) -> None:
    flow = _flow(instance)
    secret = "hmac-secret-never-shown-99"
    page = new_page(instance.base)
    sign_in(page)
    page.goto("/channels/new")
    page.get_by_label("Name", exact=True).fill("github")
    page.get_by_label("Authentication").select_option("hmac")
    page.get_by_label("Signature header").fill("X-Hub-Signature-256")
    page.get_by_label("Prefix").fill("sha256=")
    page.get_by_label("Shared secret").fill("short")
    page.get_by_role("button", name="Create channel").click()
    assert page.locator("#e-hmac\\.secret").is_visible()  # too short, named beside it
    assert page.get_by_label("Signature header").input_value() == "X-Hub-Signature-256"
    page.get_by_label("Shared secret").fill(secret)
    page.get_by_role("button", name="Create channel").click()
    page.wait_for_url(re.compile(r"/channels/[^/]+$"))
    assert secret not in page.content()
    channel_id = page.url.rsplit("/", 1)[1]
    made = instance.api.get(f"/api/channels/{channel_id}").json()
    assert made["secretFields"] == ["hmac.secret"]
    assert made["hmac"]["prefix"] == "sha256="
    page.goto("/channels/new")
    page.get_by_label("Name", exact=True).fill("agents")
    page.get_by_label("Kind").select_option("mcp")
    page.get_by_role("button", name="Create channel").click()
    page.wait_for_url(re.compile(r"/channels/[^/]+$"))
    page.get_by_label("Route name").fill("lookup")
    page.get_by_label("Tool name").fill("lookup_order")
    page.get_by_label("Target flows").select_option(flow["id"])
    page.get_by_role("button", name="Add route").click()
    page.wait_for_url(re.compile(r"#r-"))
    mcp_id = page.url.split("/channels/", 1)[1].split("#")[0]
    [route] = instance.api.get(f"/api/channels/{mcp_id}/routes").json()["items"]
    assert route["toolName"] == "lookup_order"
    assert "lookup_order" in page.locator(f"#r-{route['id']}").inner_text()


def test_an_ai_component_takes_its_prices_as_json(instance: Instance, new_page: Any) -> None:
    page = new_page(instance.base)
    sign_in(page)
    page.goto("/components/new?kind=ai&provider=openai-compatible")
    page.get_by_label("Name", exact=True).fill("house-llm")
    page.get_by_label("model", exact=True).fill("house-model")
    page.get_by_label("apiKey").fill("sk-ui-canary-1")
    page.get_by_label("baseUrl", exact=True).fill("https://llm.example.com/v1")
    page.get_by_label("prices (optional)").fill("not json")
    page.get_by_role("button", name="Create component").click()
    assert page.locator("#e-config\\.prices").is_visible()  # named beside the field
    page.get_by_label("apiKey").fill("sk-ui-canary-1")
    prices = {"house-model": {"inputPerMillion": 2, "outputPerMillion": 8}}
    page.get_by_label("prices (optional)").fill(json.dumps(prices))
    page.get_by_role("button", name="Create component").click()
    page.wait_for_url(re.compile(r"/components#c-"))
    [made] = [c for c in _components(instance) if c["name"] == "house-llm"]
    assert made["config"]["prices"] == prices
    page.goto(f"/components/{made['id']}/edit")
    assert json.loads(page.get_by_label("prices (optional)").input_value()) == prices
    assert "sk-ui-canary-1" not in page.content()
