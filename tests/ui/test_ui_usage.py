"""The usage page in a real browser: budgets set and removed through its form (checked
through the API and the audit trail), problems shown beside their fields, and a viewer who
sees the page without its controls."""

from __future__ import annotations

import re
import time
from typing import Any

from ui_fixtures import Instance, needs_chromium, shoot, sign_in

pytestmark = needs_chromium


def _budgets(instance: Instance) -> list[tuple[str | None, str, float]]:
    items = instance.api.get("/api/budgets").json()["items"]
    return sorted(
        ((b["flowId"], b["period"], b["maxCost"]) for b in items), key=lambda b: b[0] or ""
    )


def _audited(instance: Instance, *actions: str) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        params = {"targetType": "budget", "size": 100}
        entries = instance.api.get("/api/audit", params=params).json()["data"]
        found = sorted(e["action"] for e in entries)
        if set(found) >= set(actions) or time.monotonic() > deadline:
            return found


def test_budgets_are_set_shown_and_removed(instance: Instance, new_page: Any) -> None:
    flow = instance.post(
        "/api/flows",
        {"name": "ai digest", "flowlets": [{"ref": "a", "appId": "set", "args": {"value": 1}}]},
    )
    instance.api.delete("/api/budgets/company")  # one another test may have set
    page = new_page(instance.base)
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page)
    page.goto("/usage")
    assert page.get_by_role("heading", name="What AI steps spent").is_visible()
    assert page.get_by_text("No budgets: AI steps run unbounded.").is_visible()
    audited_before = _audited(instance)

    page.get_by_label("Budget (cost)").fill("-3")
    page.get_by_role("button", name="Set budget").click()
    assert page.locator("#e-maxCost").inner_text() == "must be a number, 0 or more"
    assert _budgets(instance) == []

    page.get_by_label("Period").select_option("day")
    page.get_by_label("Budget (cost)").fill("12.5")
    page.get_by_role("button", name="Set budget").click()
    page.wait_for_url(re.compile(r"/usage$"))
    page.get_by_label("Applies to").select_option(label="ai digest")
    page.get_by_label("Budget (cost)").fill("2")
    page.get_by_role("button", name="Set budget").click()
    page.wait_for_url(re.compile(r"/usage$"))
    assert _budgets(instance) == [(None, "day", 12.5), (flow["id"], "month", 2)]
    rows = page.locator("#budget-rows tbody tr")
    assert rows.count() == 2
    assert "ai digest" in page.locator("#budget-rows").inner_text()
    shoot(page, "platform-usage")

    page.get_by_role("button", name="Remove the budget of the company").click()
    page.wait_for_url(re.compile(r"/usage$"))
    assert _budgets(instance) == [(flow["id"], "month", 2)]
    audited = _audited(instance, "budget_deleted")
    for action in audited_before:
        audited.remove(action)
    assert audited == ["budget_created", "budget_created", "budget_deleted"]


def test_a_viewer_sees_usage_without_controls(instance: Instance, new_page: Any) -> None:
    instance.api.put("/api/budgets/company", json={"period": "month", "maxCost": 40})
    email, password = instance.member("viewer")
    page = new_page(instance.base)
    sign_in(page, email, password)
    page.goto("/usage?groupBy=model&from=2026-01-01")
    assert page.get_by_label("Group by").input_value() == "model"
    assert page.locator("#budget-rows").is_visible()
    assert page.get_by_role("button", name="Set budget").count() == 0
    assert page.get_by_role("button", name=re.compile("Remove")).count() == 0
    page.goto("/usage?from=yesterday")
    assert "must be a day" in page.locator("#e-from").inner_text()
