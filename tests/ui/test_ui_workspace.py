"""The workspace pages in a real browser: KV, credentials, members and invitations, API keys,
the audit trail, the actor tree and the account's password, each driven as a person would and
checked through the page and the API; a viewer sees no write controls and is refused."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import expect
from ui_fixtures import OWNER, Instance, needs_chromium, shoot, sign_in

pytestmark = needs_chromium


def _notice(page: Any) -> Any:
    """The page's own status message (not the shared, usually empty, alert area)."""
    return page.locator("main [role=status]")


def _accept_dialogs(page: Any) -> None:
    page.on("dialog", lambda dialog: dialog.accept())


def test_kv_entry_is_set_viewed_and_deleted(instance: Instance, new_page: Any) -> None:
    page = new_page(instance.base)
    _accept_dialogs(page)
    sign_in(page)
    page.goto("/kv")
    page.get_by_label("Key", exact=True).fill("settings.limits")
    page.get_by_label("Value (JSON)").fill("{not json")
    page.get_by_role("button", name="Set entry").click()
    assert "is not valid JSON" in page.locator("#e-value").inner_text()  # beside the field
    assert page.get_by_label("Key", exact=True).input_value() == "settings.limits"

    page.get_by_label("Value (JSON)").fill('{"max": 5, "names": ["a", "b"]}')
    page.get_by_role("button", name="Set entry").click()
    page.wait_for_url(re.compile(r"/kv/entry\?"))
    shown = page.locator("pre.kv-value").inner_text()
    assert '"max": 5' in shown
    assert '"names": [' in shown
    stored = instance.api.get("/api/kv").json()["data"]
    assert {"key": "settings.limits", "value": {"max": 5, "names": ["a", "b"]}}.items() <= next(
        e for e in stored if e["key"] == "settings.limits"
    ).items()

    page.goto("/kv?prefix=settings.")
    row = page.get_by_role("row", name=re.compile("settings.limits"))
    expect(row).to_contain_text('{"max": 5')
    shoot(page, "workspace-kv")
    row.get_by_role("button", name="Delete settings.limits").click()
    page.wait_for_url(re.compile(r"deleted=settings.limits"))
    expect(page.get_by_role("row", name=re.compile("settings.limits"))).to_have_count(0)
    keys = [e["key"] for e in instance.api.get("/api/kv").json()["data"]]
    assert "settings.limits" not in keys


def test_a_credential_is_created_and_its_secret_never_shown(
    instance: Instance, new_page: Any
) -> None:
    secret = "pw-Zq81-never-shown-again"
    page = new_page(instance.base)
    sign_in(page)
    page.goto("/credentials")
    page.get_by_role("link", name="basic", exact=True).click()
    page.get_by_label("Name", exact=True).fill("billing-api")
    page.get_by_label("username").fill("billing-bot")
    password = page.get_by_label("password", exact=True)
    assert password.get_attribute("type") == "password"
    password.fill(secret)
    page.get_by_role("button", name="Create credential").click()
    page.wait_for_url(re.compile(r"/credentials\?created="))
    expect(_notice(page)).to_contain_text("never shown again")
    row = page.get_by_role("row", name=re.compile("billing-api"))
    expect(row).to_contain_text("password, username")  # field names, not values
    shoot(page, "workspace-credentials")
    assert secret not in page.content()
    listed = page.request.get("/credentials")
    assert listed.ok
    assert "billing-api" in listed.text()
    assert secret not in listed.text()
    api = instance.api.get("/api/credentials").json()["data"]
    made = next(c for c in api if c["name"] == "billing-api")
    assert made["type"] == "basic"
    assert made["fields"] == ["password", "username"]

    # Each type's form comes from the service's rule table: secrets are password inputs.
    for type_, secret_field, plain_field in (
        ("apiKey", "key", "header (optional)"),
        ("oauth2", "clientSecret", "clientId"),
        ("bearer", "token", None),
    ):
        page.goto(f"/credentials?new={type_}")
        assert page.get_by_label(secret_field, exact=True).get_attribute("type") == "password"
        if plain_field:
            assert page.get_by_label(plain_field, exact=True).get_attribute("type") == "text"
    page.goto("/credentials?new=generic")
    assert page.get_by_label("Field 1 value").get_attribute("type") == "password"

    # A form with a problem comes back without the secret typed into it.
    page.goto("/credentials?new=bearer")
    page.get_by_label("Name", exact=True).fill("billing-api")
    page.get_by_label("token").fill("tok-" + secret)
    page.get_by_role("button", name="Create credential").click()
    expect(page.locator("#e-name")).to_contain_text("exists")  # beside the field it names
    assert page.get_by_label("token").input_value() == ""
    assert secret not in page.content()


def test_an_invited_person_joins_and_their_role_is_changed(
    instance: Instance, new_page: Any
) -> None:
    page = new_page(instance.base)
    _accept_dialogs(page)
    sign_in(page)
    page.goto("/members")
    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Invite").click()
    link = page.get_by_label("Invitation link").input_value()
    assert link.startswith(f"{instance.base}/invitations/accept?token=")
    row = page.get_by_role("row", name=re.compile("newcomer@example.com"))
    expect(row).to_contain_text("viewer")  # listed as pending
    shoot(page, "workspace-members")
    page.goto("/members")
    assert link not in page.content()  # the link is shown once only

    guest = new_page(instance.base)
    guest.goto(link)
    expect(guest.get_by_role("heading", name="Join a company on flow8")).to_be_visible()
    guest.get_by_label("Password").fill("short")
    guest.get_by_role("button", name="Accept and sign in").click()
    expect(guest.locator("#e-password")).to_contain_text("at least 10 characters")
    shoot(guest, "workspace-invitation")
    guest.get_by_label("Password").fill("newcomer-password-1")
    guest.get_by_role("button", name="Accept and sign in").click()
    guest.wait_for_url(re.compile(r"/$"))
    expect(guest.locator("header")).to_contain_text("newcomer@example.com · viewer")

    page.goto("/members")
    member = page.get_by_role("row", name=re.compile("newcomer@example.com"))
    member.get_by_label("Role of newcomer@example.com", exact=True).select_option("editor")
    member.get_by_role("button", name="Save the role of newcomer@example.com").click()
    expect(_notice(page)).to_contain_text("newcomer@example.com is now editor")
    members = instance.api.get(f"/api/companies/{instance.company_id}/members").json()["data"]
    roles = {m["email"]: m["role"] for m in members}
    assert roles["newcomer@example.com"] == "editor"
    expect(page.get_by_text("No pending invitations.")).to_be_visible()  # used up


def test_an_invitation_is_revoked_and_a_member_removed(instance: Instance, new_page: Any) -> None:
    email, password = instance.member("operator")
    page = new_page(instance.base)
    _accept_dialogs(page)
    sign_in(page)
    page.goto("/members")
    page.get_by_label("Email").fill("changed-mind@example.com")
    page.get_by_role("button", name="Invite").click()
    link = page.get_by_label("Invitation link").input_value()
    page.get_by_role("button", name="Revoke the invitation of changed-mind@example.com").click()
    expect(_notice(page)).to_contain_text("Invitation revoked")
    pending = instance.api.get(f"/api/companies/{instance.company_id}/invitations").json()
    assert "changed-mind@example.com" not in [i["email"] for i in pending["data"]]
    guest = new_page(instance.base)
    guest.goto(link)
    guest.get_by_label("Password").fill("a-good-long-password")
    guest.get_by_role("button", name="Accept and sign in").click()
    expect(guest.get_by_role("alert")).to_contain_text("not valid")  # the token stopped working

    page.get_by_role("button", name=f"Remove {email}").click()
    expect(_notice(page)).to_contain_text("Member removed")
    members = instance.api.get(f"/api/companies/{instance.company_id}/members").json()["data"]
    assert email not in [m["email"] for m in members]
    removed = new_page(instance.base)
    sign_in(removed, email, password)
    expect(removed.get_by_role("heading", name="You are not in a company yet")).to_be_visible()
    # The owner's own row offers no role change or removal (the service refuses both).
    me = page.get_by_role("row", name=re.compile("owner@example.com"))
    expect(me.get_by_role("button")).to_have_count(0)


def test_an_api_key_is_shown_once_and_works_as_a_bearer_token(
    instance: Instance, new_page: Any
) -> None:
    page = new_page(instance.base)
    _accept_dialogs(page)
    sign_in(page)
    page.goto("/api-keys")
    page.get_by_label("Name").fill("ci-deploys")
    page.get_by_label("mcp").check()
    page.get_by_role("button", name="Create key").click()
    expect(_notice(page)).to_contain_text("Copy it now")
    key = page.get_by_label("API key").input_value()
    assert len(key) > 20
    shoot(page, "workspace-api-key-created")

    page.goto("/api-keys")
    row = page.get_by_role("row", name=re.compile("ci-deploys"))
    expect(row).to_contain_text("api, mcp")
    assert key not in page.content()
    shoot(page, "workspace-api-keys")
    with httpx.Client(base_url=instance.base) as program:
        me = program.get("/api/auth/me", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200, me.text
        assert me.json()["user"]["email"] == "owner@example.com"
        row.get_by_role("button", name="Revoke ci-deploys").click()
        expect(_notice(page)).to_contain_text("API key revoked")
        gone = program.get("/api/auth/me", headers={"Authorization": f"Bearer {key}"})
        assert gone.status_code == 401


def test_the_audit_trail_lists_changes_and_filters_narrow_it(
    instance: Instance, new_page: Any
) -> None:
    page = new_page(instance.base)
    sign_in(page)
    for key in ("audited.one", "audited.two"):
        page.goto("/kv")
        page.get_by_label("Key", exact=True).fill(key)
        page.get_by_label("Value (JSON)").fill("1")
        page.get_by_role("button", name="Set entry").click()
        page.wait_for_url(re.compile(r"/kv/entry\?"))
    page.goto("/audit")
    rows = page.locator("table.audit tbody tr")
    assert rows.count() > 2  # requests, sign-ins, changes
    shoot(page, "workspace-audit")
    page.get_by_label("Action").fill("kv_set")
    page.get_by_label("Target id").fill("audited.two")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"action=kv_set"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("kv_set")
    expect(rows.first).to_contain_text("owner@example.com")
    expect(rows.first).to_contain_text("audited.two")
    page.get_by_label("Target id").fill("")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(lambda url: "audited.two" not in url)
    texts = rows.all_inner_texts()
    assert all("kv_set" in t for t in texts)
    assert any("audited.one" in t for t in texts)
    assert any("audited.two" in t for t in texts)


def test_a_viewer_sees_no_write_controls_and_is_refused(instance: Instance, new_page: Any) -> None:
    instance.post("/api/kv", {"key": "viewer.sees", "value": 1})
    email, password = instance.member("viewer")
    page = new_page(instance.base)
    sign_in(page, email, password)
    page.goto("/kv")
    expect(page.get_by_role("link", name="viewer.sees")).to_be_visible()  # may read
    expect(page.get_by_role("button", name=re.compile("Set entry|Delete"))).to_have_count(0)
    page.goto("/credentials")
    expect(page.get_by_role("heading", name="Credentials", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Create|Delete"))).to_have_count(0)
    expect(page.get_by_role("heading", name="New credential")).to_have_count(0)
    token = page.locator("form[action='/logout'] input[name=csrf_token]").input_value()
    assert token  # the viewer's own, valid token
    for path, form in (
        ("/kv", {"key": "viewer.writes", "value": "1", "scope": "global"}),
        ("/kv/delete", {"key": "viewer.sees", "scope": "global"}),
        ("/credentials", {"type": "bearer", "name": "x", "data.token": "t"}),
    ):
        refused = page.request.post(path, form={**form, "csrf_token": token})
        assert refused.status == 403, path
        assert "PERMISSION_DENIED" in refused.text()
    keys = [e["key"] for e in instance.api.get("/api/kv").json()["data"]]
    assert "viewer.sees" in keys
    assert "viewer.writes" not in keys
    for path in ("/members", "/api-keys", "/audit", "/admin/actors"):
        answer = page.goto(path)
        assert answer is not None
        assert answer.status == 403, path
        expect(page.get_by_text("PERMISSION_DENIED")).to_be_visible()


def test_a_member_changes_their_password(instance: Instance, new_page: Any) -> None:
    email, password = instance.member("editor")
    page = new_page(instance.base)
    sign_in(page, email, password)
    page.locator("header").get_by_role("link", name=email).click()  # the account page
    page.wait_for_url(re.compile(r"/account$"))
    page.get_by_label("Current password").fill("not-my-password")
    page.get_by_label("New password", exact=True).fill("editor-new-password-9")
    page.get_by_label("New password again").fill("editor-new-password-9")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#e-current")).to_contain_text("is not your current password")
    page.get_by_label("Current password").fill(password)
    page.get_by_label("New password", exact=True).fill("editor-new-password-9")
    page.get_by_label("New password again").fill("editor-new-password-9")
    page.get_by_role("button", name="Change password").click()
    expect(_notice(page).filter(has_text="Password changed")).to_be_visible()
    shoot(page, "workspace-account")
    other = new_page(instance.base)
    other.goto("/login")
    other.get_by_label("Email").fill(email)
    other.get_by_label("Password").fill(password)
    other.get_by_role("button", name="Sign in").click()
    expect(other.get_by_role("alert")).to_have_text("Wrong email or password.")
    sign_in(other, email, "editor-new-password-9")
    expect(other.locator("header")).to_contain_text(email)


def _running_play(api: httpx.Client, name: str) -> str:
    """A play that holds its actor for 5 seconds (shorter delays are not suspended)."""
    flowlets = [{"ref": "wait", "appId": "delay", "args": {"seconds": 5}}]
    flow = api.post("/api/flows", json={"name": name, "flowlets": flowlets})
    assert flow.status_code == 201, flow.text
    play = api.post(f"/api/flows/{flow.json()['id']}/run", json={})
    assert play.status_code in (200, 201, 202), play.text
    return str(play.json()["id"])


def test_the_owner_sees_the_live_actor_tree_without_other_companies_plays(
    instance: Instance, new_page: Any
) -> None:
    page = new_page(instance.base)
    sign_in(page)  # into Acme, before the owner's other session switches company
    rival = instance.post("/api/companies", {"name": "Rival"})
    with httpx.Client(base_url=instance.base, timeout=15) as other:
        login = other.post("/api/auth/login", json={k: OWNER[k] for k in ("email", "password")})
        other.headers["X-CSRF-Token"] = login.json()["csrfToken"]
        switched = other.post("/api/auth/company", json={"companyId": rival["id"]})
        assert switched.status_code == 200, switched.text
        theirs = _running_play(other, "rival-wait")
    mine = _running_play(instance.api, "acme-wait")

    answer = page.goto("/admin/actors")
    assert answer is not None
    assert answer.status == 200
    # The one instance serving this store, marked as the one that answered.
    rows = page.locator("#instances tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("aria-current", "true")
    expect(rows.first.locator("td").first).to_have_text("1")
    tree = page.locator("#actor-tree")
    expect(tree.locator(".node-name", has_text=re.compile(r"^engine$"))).to_be_visible()
    expect(tree).to_contain_text("restarts")
    expect(tree.locator(".node-name", has_text=f"play-{mine}")).to_be_visible()
    expect(tree).to_contain_text("1 of other companies (not shown)")
    assert theirs not in page.content()
    # The instance actor's peers read as fields, not as a Python list of dicts.
    instance_info = tree.locator("li:has(> .node-name:text-is('instance')) > .info")
    expect(instance_info).to_contain_text("instances=[(id=")
    expect(instance_info).to_contain_text(" index=1 ")
    expect(instance_info).not_to_contain_text("{'")
    expect(tree).not_to_contain_text("running=False")
    shoot(page, "workspace-actors")
    with page.expect_response(lambda r: r.url.endswith("/admin/actors/live")) as refresh:
        pass  # htmx asks for the fragment every 3 seconds
    assert refresh.value.status == 200
    assert theirs not in refresh.value.text()
    expect(tree.locator(".node-name", has_text=re.compile(r"^plays$"))).to_be_visible()
