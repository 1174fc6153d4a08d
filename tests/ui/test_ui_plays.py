"""The plays area in a real browser: the list and its filters, the live play view (steps
turning DONE without a reload, an approval decided from the page), retry from a step, and
what a viewer may not do."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from ui_fixtures import OWNER, Instance, needs_chromium, shoot, sign_in

pytestmark = needs_chromium

_names = itertools.count(1)
LIVE = 20_000  # ms: how long a live change may take to show (a loaded CI machine)


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _flow(instance: Instance, prefix: str, flowlets: list[dict[str, Any]]) -> tuple[str, str]:
    name = f"{prefix}-{next(_names)}"
    flow = instance.post("/api/flows", {"name": name, "flowlets": flowlets})
    return flow["id"], name


def _run(instance: Instance, flow_id: str, body: Any = None, wait: int | None = None) -> Any:
    path = f"/api/flows/{flow_id}/run" + (f"?wait={wait}" if wait else "")
    return instance.post(path, body if body is not None else {})


def _play(instance: Instance, play_id: str) -> Any:
    answer = instance.api.get(f"/api/plays/{play_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def _layer_state(page: Any, ref: str) -> Any:
    return page.locator(f'tr.layer[data-ref="{ref}"] .layer-state')


APPROVAL_FLOW = [
    {"ref": "prepare", "appId": "set", "args": {"value": {"amount": 80}}},
    {
        "ref": "refund",
        "appId": "template",
        "needsApproval": True,
        "args": {"text": "refunded {{ $prev.prepare.amount }} EUR"},
    },
    {"ref": "notify", "appId": "set", "args": {"value": "customer told"}},
]


def test_a_running_play_shows_its_steps_turning_done_without_a_reload(
    instance: Instance, new_page: Any
) -> None:
    expect = _expect()
    flow_id, name = _flow(
        instance,
        "live",
        [
            {"ref": "warmup", "appId": "delay", "args": {"seconds": 3}},
            {"ref": "work", "appId": "delay", "args": {"ms": 1500}},
            {"ref": "finish", "appId": "set", "args": {"value": {"said": "all done"}}},
        ],
    )
    page = new_page(instance.base)
    sign_in(page)
    play = _run(instance, flow_id, {"order": 7})
    page.goto(f"/plays/{play['id']}")
    page.evaluate("window.__sameDocument = 'kept'")  # gone if the page were reloaded
    expect(page.locator("#play-state")).to_have_text("RUN")
    assert page.locator('tr.layer[data-ref="finish"]').count() == 0  # not reached yet
    assert name in page.locator("#play-summary").inner_text()
    assert '"order": 7' in page.locator("#play-input").inner_text()
    # A step that starts while the page is open is shown running, then done, as the
    # events arrive (the warm-up gives the page the time to subscribe first).
    expect(_layer_state(page, "work")).to_have_text("RUN", timeout=LIVE)
    expect(_layer_state(page, "warmup")).to_have_text("DONE")
    expect(_layer_state(page, "work")).to_have_text("DONE", timeout=LIVE)
    expect(_layer_state(page, "finish")).to_have_text("DONE", timeout=LIVE)
    expect(page.locator("#play-state")).to_have_text("DONE", timeout=LIVE)
    expect(page.locator("#play-output")).to_contain_text('"said": "all done"')
    expect(page.locator("tr.layer")).to_have_count(3)  # the running row gave way to the stored one
    assert page.evaluate("window.__sameDocument") == "kept"  # no reload happened
    assert page.locator('tr.layer[data-ref="warmup"] td').nth(0).inner_text() == "delay"
    assert _play(instance, play["id"])["state"] == "DONE"
    page.locator('tr.layer[data-ref="finish"] summary', has_text="Output").click()
    shoot(page, "plays-view")


def test_a_play_waiting_for_approval_is_approved_from_the_page_and_finishes(
    instance: Instance, new_page: Any
) -> None:
    expect = _expect()
    flow_id, _ = _flow(instance, "refund", APPROVAL_FLOW)
    play = _run(instance, flow_id)
    page = new_page(instance.base)
    sign_in(page)
    page.goto(f"/plays/{play['id']}")
    expect(page.locator("#play-state")).to_have_text("WAIT", timeout=LIVE)
    expect(page.locator("#play-summary")).to_contain_text("approval before step refund")
    expect(_layer_state(page, "refund")).to_have_text("WAIT")
    expect(page.get_by_role("button", name="Reject")).to_be_visible()
    shoot(page, "plays-view-waiting")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#play-state")).to_have_text("DONE", timeout=LIVE)
    expect(_layer_state(page, "refund")).to_have_text("DONE")
    expect(_layer_state(page, "notify")).to_have_text("DONE")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.locator("#play-output")).to_contain_text("customer told")
    finished = _play(instance, play["id"])
    assert finished["state"] == "DONE"
    assert finished["out"] == "customer told"
    layers = instance.api.get(f"/api/plays/{play['id']}/layers").json()["data"]
    assert {la["ref"]: la["output"] for la in layers}["refund"] == {"text": "refunded 80 EUR"}
    audit = instance.api.get(
        "/api/audit", params={"action": "play_approved", "targetId": play["id"]}
    )
    assert audit.status_code == 200, audit.text
    (entry,) = audit.json()["data"]  # recorded as the API records it, naming who approved
    assert entry["userEmail"] == OWNER["email"]


def test_a_viewer_sees_no_commands_and_is_refused_a_cancel(
    instance: Instance, new_page: Any
) -> None:
    expect = _expect()
    flow_id, _ = _flow(instance, "guarded", APPROVAL_FLOW)
    play = _run(instance, flow_id)
    email, password = instance.member("viewer")
    page = new_page(instance.base)
    sign_in(page, email, password)
    page.goto(f"/plays/{play['id']}")
    expect(page.locator("#play-state")).to_have_text("WAIT", timeout=LIVE)
    for name in ("Approve", "Reject", "Cancel play", "Retry"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.locator(".play-controls")).to_have_count(0)
    token = json.loads(page.locator("body").get_attribute("hx-headers"))["X-CSRF-Token"]
    assert token
    refused = page.request.post(f"/plays/{play['id']}/cancel", form={"csrf_token": token})
    assert refused.status == 403
    assert "PERMISSION_DENIED" in refused.text()
    refused = page.request.post(
        f"/plays/{play['id']}/approve", headers={"X-CSRF-Token": token, "HX-Request": "true"}
    )
    assert refused.status == 403
    still = _play(instance, play["id"])
    assert still["state"] == "WAIT"
    assert still["waitReason"] == "approval"
    # The same page shows the owner the commands the viewer does not get.
    owner = new_page(instance.base)
    sign_in(owner)
    owner.goto(f"/plays/{play['id']}")
    expect(owner.get_by_role("button", name="Cancel play")).to_be_visible()
    instance.post(f"/api/plays/{play['id']}/cancel", {})


def test_the_list_filters_by_flow_and_state_in_the_address(
    instance: Instance, new_page: Any
) -> None:
    expect = _expect()
    good_id, good = _flow(instance, "good", [{"ref": "ok", "appId": "set", "args": {"value": 1}}])
    bad_id, bad = _flow(
        instance,
        "bad",
        [
            {"ref": "first", "appId": "set", "args": {"value": 1}},
            {"ref": "boom", "appId": "fail", "args": {"message": "broken on purpose"}},
        ],
    )
    done = [_run(instance, good_id, wait=10) for _ in range(2)]
    failed = _run(instance, bad_id, wait=10)
    assert [p["state"] for p in done] == ["DONE", "DONE"]
    assert failed["state"] == "FAIL"
    page = new_page(instance.base)
    sign_in(page)
    page.goto("/plays")
    rows = page.locator("table.plays tbody tr")
    expect(page.locator(f'tr[data-play-id="{failed["id"]}"]')).to_be_visible()
    assert rows.first.get_attribute("data-play-id") == failed["id"]  # newest first
    shoot(page, "plays-list")

    page.get_by_label("Flow").select_option(label=good)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(rf"flow_id={good_id}"))
    expect(rows).to_have_count(2)
    assert sorted(r.get_attribute("data-play-id") for r in rows.all()) == sorted(
        p["id"] for p in done
    )
    assert {r.inner_text() for r in page.locator("td.flow-name").all()} == {f"{good} v1"}

    page.get_by_label("Flow").select_option(label="Any flow")
    page.get_by_label("State").select_option("FAIL")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"state=FAIL"))
    expect(page.locator(f'tr[data-play-id="{failed["id"]}"]')).to_be_visible()
    assert {s.inner_text() for s in page.locator("td.play-state").all()} == {"FAIL"}
    for p in done:
        expect(page.locator(f'tr[data-play-id="{p["id"]}"]')).to_have_count(0)

    # The address is the filter: shared as a link, it shows the same rows.
    page.goto(f"/plays?flow_id={bad_id}&state=DONE")
    expect(page.get_by_text("No plays match these filters.")).to_be_visible()
    assert page.get_by_label("Flow").input_value() == bad_id
    page.goto(f"/plays?flow_id={bad_id}&from=2000-01-01T00:00&until=2999-01-01T00:00")
    expect(rows).to_have_count(1)
    page.goto(f"/plays?flow_id={bad_id}&until=2000-01-01T00:00")
    expect(page.get_by_text("No plays match these filters.")).to_be_visible()
    page.goto("/plays?state=SLEEPY")
    expect(page.locator("#e-state")).to_contain_text("not a play state")
    assert bad  # named in the list by its flow's name
    page.goto(f"/plays?flow_id={bad_id}")
    assert page.locator("td.flow-name").first.inner_text() == f"{bad} v1"

    # The company's home shows the newest plays and flows, each a link to its page.
    page.goto("/")
    recent = page.get_by_role("region", name=re.compile("Recent plays"))
    expect(recent.get_by_role("link", name=failed["id"])).to_be_visible()
    flows = page.get_by_role("region", name=re.compile("Flows"))
    expect(flows.get_by_role("link", name=bad)).to_be_visible()
    shoot(page, "home")

    # A flow chosen by its address that the picker does not offer (deleted: its plays
    # remain) is still the chosen filter and names its rows; an unknown id says so.
    deleted = instance.api.delete(f"/api/flows/{bad_id}")
    assert deleted.status_code in (200, 204), deleted.text
    page.goto(f"/plays?flow_id={bad_id}")
    expect(rows).to_have_count(1)
    assert page.locator("td.flow-name").first.inner_text() == f"{bad} v1"
    assert page.get_by_label("Flow").locator("option:checked").inner_text() == bad
    page.goto("/plays?flow_id=01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    expect(page.get_by_label("Flow").locator("option:checked")).to_have_text(
        "01ZZZZZZZZZZZZZZZZZZZZZZZZ (not found)"
    )


def test_retry_from_a_step_starts_a_new_play(instance: Instance, new_page: Any) -> None:
    expect = _expect()
    flow_id, _ = _flow(
        instance,
        "retried",
        [
            {"ref": "first", "appId": "set", "args": {"value": 1}},
            {"ref": "boom", "appId": "fail", "args": {"message": "broken on purpose"}},
        ],
    )
    failed = _run(instance, flow_id, {"try": 1}, wait=10)
    assert failed["state"] == "FAIL"
    page = new_page(instance.base)
    sign_in(page)
    page.goto(f"/plays/{failed['id']}")
    expect(page.locator("#play-error")).to_contain_text("broken on purpose")
    expect(_layer_state(page, "boom")).to_have_text("FAIL")
    page.get_by_label("Retry from step").select_option("boom")
    page.get_by_role("button", name="Retry").click()
    page.wait_for_url(lambda url: "/plays/" in url and failed["id"] not in url)
    new_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#play-summary")).to_contain_text(re.compile(rf"Retry of\s*{failed['id']}"))
    expect(page.locator("#play-state")).to_have_text("FAIL", timeout=LIVE)
    retried = _play(instance, new_id)
    assert retried["retryOf"] == failed["id"]
    assert retried["resumeFrom"] == "boom"
    assert retried["trigger"] == "retry"
