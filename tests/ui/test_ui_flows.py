"""The flows area in a real browser: the editor (build, save, validation beside the field,
read-only for viewers), running from the run dialog, the list's search and group filter,
import/export round trip, versions with a diff and restore."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from playwright.sync_api import expect
from ui_fixtures import Instance, needs_chromium, shoot, sign_in

pytestmark = needs_chromium

T = TypeVar("T")

STEP = {"ref": "a", "appId": "set", "args": {"value": "{{ $prev.args.x }}"}}


def _flow(instance: Instance, name: str, **more: Any) -> dict[str, Any]:
    body = {"name": name, "flowlets": [STEP], **more}
    created: dict[str, Any] = instance.post("/api/flows", body)
    return created


def wait_until(check: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Poll the API until ``check`` answers (a play ends, an audit entry is written)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer is not None:
            return answer
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)  # a poll interval, not a synchronisation


def _add_step(page: Any, app_id: str, ref: str) -> Any:
    page.get_by_label("Find a module").fill(app_id)
    page.get_by_role("button", name="Add step").click()
    step = page.locator("fieldset.step").last
    step.get_by_label("Ref", exact=True).fill(ref)
    step.get_by_label("Ref", exact=True).press("Tab")
    return page.locator("fieldset.step", has=page.locator(f"legend:has-text(': {ref} ·')"))


def _wait_done(instance: Instance, play_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        play: dict[str, Any] = instance.api.get(f"/api/plays/{play_id}").json()
        return play if play["state"] in ("DONE", "FAIL", "CANCEL") else None

    return wait_until(finished)


def test_build_a_three_step_flow_with_an_expression_and_a_filter_save_and_run_it(
    instance: Instance, new_page: Any
) -> None:
    page = new_page(instance.base)
    sign_in(page)
    page.goto("/flows")
    page.get_by_label("New flow name").fill("Order total")
    page.get_by_role("button", name="Create flow").click()
    page.wait_for_url(re.compile(r"/flows/new\?"))
    assert page.get_by_label("Flow name").input_value() == "Order total"

    total = _add_step(page, "set", "total")
    total.get_by_label("value").fill("{{ $prev.args.qty * $prev.args.price }}")
    big = _add_step(page, "template", "big")
    # The earlier step's ref is offered as an expression.
    suggestions = page.locator("datalist#prev-lane-1 option")
    assert "{{ $prev.total }}" in suggestions.evaluate_all("os => os.map(o => o.value)")
    big.get_by_label("text").fill("Big order: {{ $prev.total }}")
    big.get_by_role("button", name="Add filter").click()
    big.get_by_label("Left value").fill("{{ $prev.total }}")
    big.get_by_label("Operator").select_option("gt")
    big.get_by_label("Right value").fill("100")
    result = _add_step(page, "set", "result")
    result.get_by_label("value").fill(
        '{"total": "{{ $prev.total }}", "note": "{{ $prev.big.text }}"}'
    )
    page.get_by_role("heading", name="Steps (3)").scroll_into_view_if_needed()
    shoot(page, "flows-editor")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/flows/[0-9A-Za-z]+$"))
    flow_id = page.url.rsplit("/", 1)[1]
    saved = instance.api.get(f"/api/flows/{flow_id}").json()
    assert [f["ref"] for f in saved["flowlets"]] == ["total", "big", "result"]
    assert saved["flowlets"][1]["filters"][0] == {
        "leftValue": "{{ $prev.total }}",
        "operator": "gt",
        "rightValue": 100,
        "cast": None,
        "mode": "and",
    }

    page.get_by_role("button", name="Run…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Input (JSON)").fill('{"qty": 30, "price": 4}')
    shoot(page, "flows-run-dialog")
    dialog.get_by_role("button", name="Start play").click()
    page.wait_for_url(re.compile(r"/plays/[0-9A-Za-z]+$"))
    # The play's page shows its steps done (live, or already so when it rendered).
    for ref in ("total", "big", "result"):
        expect(page.locator(f'tr.layer[data-ref="{ref}"] .layer-state')).to_have_text(
            "DONE", timeout=20_000
        )
    expect(page.locator("#play-state")).to_have_text("DONE", timeout=20_000)
    play = _wait_done(instance, page.url.rsplit("/", 1)[1])
    assert play["state"] == "DONE", play
    assert play["flowId"] == flow_id
    assert play["out"] == {"total": 120, "note": "Big order: 120"}


def test_the_run_dialog_shows_an_input_that_fails_the_schema_beside_the_field(
    instance: Instance, new_page: Any
) -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    flow = _flow(instance, "Needs x", inputSchema=schema)
    page = new_page(instance.base)
    sign_in(page)
    page.goto("/flows?q=Needs+x")
    page.get_by_role("button", name="Run Needs x").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Input (JSON)").fill('{"y": 1}')
    dialog.get_by_role("button", name="Start play").click()
    expect(dialog.locator("#e-input")).to_contain_text("x")
    expect(dialog.get_by_label("Input (JSON)")).to_have_attribute("aria-invalid", "true")
    dialog.get_by_label("Input (JSON)").fill("{not json")
    dialog.get_by_role("button", name="Start play").click()
    expect(dialog.locator("#e-input")).to_contain_text("not JSON")
    plays = instance.api.get("/api/plays", params={"flowId": flow["id"]}).json()
    assert plays["total"] == 0  # nothing started


def test_a_validation_problem_is_shown_beside_the_field_it_names(
    instance: Instance, new_page: Any
) -> None:
    flow = _flow(instance, "To break")
    page = new_page(instance.base)
    sign_in(page)
    page.goto(f"/flows/{flow['id']}")
    step = page.locator("fieldset.step").first
    step.get_by_label("Ref", exact=True).fill("bad ref!")
    page.get_by_role("button", name="Save").click()
    ref = step.get_by_label("Ref", exact=True)
    expect(ref).to_have_attribute("aria-invalid", "true")
    problem_id = (ref.get_attribute("aria-describedby") or "").split()[0]
    expect(page.locator(f"#{problem_id}")).to_contain_text("letters, digits")
    expect(page.locator("#editor-problems")).to_contain_text("flowlets[0].ref")
    assert instance.api.get(f"/api/flows/{flow['id']}").json()["version"] == 1  # not saved
    ref.fill("good")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#save-status")).to_have_text("Saved as version 2.")
    expect(ref).not_to_have_attribute("aria-invalid", "true")


def test_the_list_searches_by_name_and_filters_by_group(instance: Instance, new_page: Any) -> None:
    for name, group in [("Invoice send", "billing"), ("Invoice chase", None), ("Welcome", "crm")]:
        _flow(instance, name, group=group)
    page = new_page(instance.base)
    sign_in(page)
    page.goto("/flows")
    page.get_by_label("Name starts with").fill("Invoice")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.flows tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Welcome")).to_have_count(0)
    page.get_by_label("Group").fill("billing")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Invoice send")
    assert "group=billing" in page.url
    page.goto("/flows")
    page.get_by_role("link", name="crm").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Welcome")
    page.goto("/flows?q=Nothing+like+this")
    expect(page.get_by_text("No flow matches.")).to_be_visible()
    page.goto("/flows")
    shoot(page, "flows-list")


def test_tags_and_the_enabled_switch_filter_the_list_and_a_disabled_flow_runs_only_on_purpose(
    instance: Instance, new_page: Any
) -> None:
    _flow(instance, "Weekly report", tags=["reports-ui"])
    paused = _flow(instance, "Paused report", tags=["reports-ui", "old"], enabled=False)
    page = new_page(instance.base)
    sign_in(page)
    page.goto("/flows")
    page.get_by_label("Tag").fill("reports-ui")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.flows tbody tr")
    expect(rows).to_have_count(2)
    page.get_by_label("Enabled").select_option("false")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Paused report")
    expect(rows.first.locator(".state-disabled")).to_have_text("disabled")
    assert "enabled=false" in page.url
    rows.first.get_by_role("link", name="old").click()  # a tag links to its flows
    expect(rows).to_have_count(1)
    assert "tag=old" in page.url

    # A person may run a disabled flow, but only by saying so.
    page.goto(f"/flows/{paused['id']}/run")
    page.get_by_role("button", name="Start play").click()
    expect(page.locator("#e-force")).to_contain_text("this flow is disabled")
    page.get_by_label("Run it anyway").check()
    page.get_by_role("button", name="Start play").click()
    page.wait_for_url(re.compile(r"/plays/[0-9A-Za-z]+$"))
    assert _wait_done(instance, page.url.rsplit("/", 1)[1])["state"] == "DONE"

    # The editor switches it back on and edits its tags: a new version.
    page.goto(f"/flows/{paused['id']}")
    enabled = page.get_by_label("Enabled")
    expect(enabled).not_to_be_checked()
    expect(page.get_by_label("Tags")).to_have_value("reports-ui, old")
    enabled.check()
    page.get_by_label("Tags").fill("reports-ui, weekly")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#save-status")).to_have_text("Saved as version 2.")
    saved = instance.api.get(f"/api/flows/{paused['id']}").json()
    assert saved["enabled"] is True
    assert saved["tags"] == ["reports-ui", "weekly"]
    assert saved["version"] == 2


def test_export_then_import_round_trips_a_flow(instance: Instance, new_page: Any) -> None:
    original = _flow(instance, "Round trip", group="io", description="goes and comes back")
    page = new_page(instance.base)
    sign_in(page)
    page.goto(f"/flows/{original['id']}")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export JSON").click()
    download = download_info.value
    assert download.suggested_filename == "Round-trip.json"
    exported = json.loads(download.path().read_text())
    assert exported["name"] == "Round trip"
    assert exported["group"] == "io"

    page.goto("/flows/import")
    page.get_by_label("Definition (JSON)").fill("{broken")
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#e-definition")).to_contain_text("not JSON")
    page.get_by_label("Or a file").set_input_files(download.path())
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(re.compile(r"/flows/[0-9A-Za-z]+$"))
    imported_id = page.url.rsplit("/", 1)[1]
    assert imported_id != original["id"]
    imported = instance.api.get(f"/api/flows/{imported_id}").json()
    for key in ("name", "group", "description", "flowlets"):
        assert imported[key] == original[key]


def test_versions_show_a_diff_and_restore_an_old_one(instance: Instance, new_page: Any) -> None:
    flow = _flow(instance, "Versioned")
    changed = {"name": "Versioned", "flowlets": [{**STEP, "args": {"value": "changed"}}]}
    assert instance.api.put(f"/api/flows/{flow['id']}", json=changed).status_code == 200
    page = new_page(instance.base)
    sign_in(page)
    page.goto(f"/flows/{flow['id']}/versions")
    diff = page.locator("table.diff")
    expect(diff.locator("del")).to_contain_text("{{ $prev.args.x }}")
    expect(diff.locator("ins")).to_contain_text('"changed"')
    shoot(page, "flows-versions")
    page.get_by_label("Compare from v2").check()
    page.get_by_label("Compare to v1").check()
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("heading", name="Changes from v2 to v1")).to_be_visible()
    expect(diff.locator("ins")).to_contain_text("{{ $prev.args.x }}")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Restore v1").click()
    expect(page.get_by_role("heading", name="Changes from v1 to v3")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(r"v3 \(current\)"))).to_be_visible()
    current = instance.api.get(f"/api/flows/{flow['id']}").json()
    assert current["version"] == 3
    assert current["flowlets"][0]["args"] == STEP["args"]

    def restored() -> bool | None:
        entries = instance.api.get(
            "/api/audit", params={"targetId": flow["id"], "size": 50}
        ).json()["data"]
        return any(e["action"] == "flow_restored" for e in entries) or None

    assert wait_until(restored)  # audited as the API's restore


def test_a_viewer_sees_the_flow_read_only_and_cannot_save(
    instance: Instance, new_page: Any
) -> None:
    flow = _flow(instance, "Look only")
    email, password = instance.member("viewer")
    page = new_page(instance.base)
    sign_in(page, email, password)
    page.goto("/flows")
    expect(page.get_by_role("link", name="Look only")).to_be_visible()
    expect(page.get_by_role("button", name="Create flow")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Run"))).to_have_count(0)
    page.goto(f"/flows/{flow['id']}")
    expect(page.get_by_text("Read-only")).to_be_visible()
    expect(page.locator("fieldset.step")).to_have_count(1)
    step = page.locator("fieldset.step").first
    expect(step.get_by_label("Ref", exact=True)).to_have_js_property("readOnly", True)
    for name in ("Save", "Add step", "Remove step", "Add filter", "Run…"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    token = page.evaluate(
        "() => JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']"
    )
    assert token
    refused = page.request.post(
        f"/flows/{flow['id']}/save",
        data=json.dumps({"name": "hijacked", "flowlets": [STEP]}),
        headers={"Content-Type": "application/json", "X-CSRF-Token": token},
    )
    assert refused.status == 403
    assert "PERMISSION_DENIED" in refused.text()
    assert instance.api.get(f"/api/flows/{flow['id']}").json()["version"] == 1
    with httpx.Client(base_url=instance.base) as anon:
        assert anon.get(f"/flows/{flow['id']}", follow_redirects=False).status_code == 302
