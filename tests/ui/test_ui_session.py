"""Setup, sign-in and sign-out in a real browser; the CSRF token every form post needs; the
static files' cache headers."""

from __future__ import annotations

import re
from typing import Any

import httpx
from ui_fixtures import OWNER, Instance, needs_chromium, shoot, sign_in

pytestmark = needs_chromium


def test_a_fresh_instance_shows_setup_and_signs_the_owner_in(
    fresh_instance: str, new_page: Any
) -> None:
    page = new_page(fresh_instance)
    page.goto("/")
    assert page.url.endswith("/setup")  # every page is the setup page until installed
    shoot(page, "setup")
    page.get_by_label("Company name").fill("Initech")
    page.get_by_label("Your email").fill("boss@example.com")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Password again").fill("short")
    page.get_by_role("button", name="Create company and owner").click()
    problem = page.locator("#e-password")
    assert "at least 10 characters" in problem.inner_text()  # beside the field it names
    assert page.get_by_label("Company name").input_value() == "Initech"  # nothing retyped
    page.get_by_label("Password", exact=True).fill("a-long-enough-password")
    page.get_by_label("Password again").fill("a-long-enough-password")
    page.get_by_role("button", name="Create company and owner").click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.get_by_role("heading", name="Home").is_visible()
    assert "boss@example.com" in page.locator("header").inner_text()
    page.goto("/setup")
    assert page.url.endswith("/login") or page.url.endswith("/")  # setup is over for good
    with httpx.Client(base_url=fresh_instance) as api:
        assert api.get("/api/install").json() == {"installed": True}


def test_login_refuses_a_wrong_password_then_returns_to_the_page_asked_for(
    instance: Instance, new_page: Any
) -> None:
    page = new_page(instance.base)
    page.goto("/?tab=plays")
    assert "/login?next=" in page.url
    shoot(page, "login")
    page.get_by_label("Email").fill(OWNER["email"])
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong email or password."
    page.get_by_label("Password").fill(OWNER["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/\?tab=plays$"))


def test_login_never_redirects_off_site(instance: Instance, new_page: Any) -> None:
    page = new_page(instance.base)
    page.goto("/login?next=//evil.example/phish")
    sign_in_form = page.locator("input[name=next]")
    assert sign_in_form.input_value() == "/"


def test_a_form_post_without_the_csrf_token_is_refused(instance: Instance, new_page: Any) -> None:
    page = new_page(instance.base)
    sign_in(page)
    # The browser's own cookie goes with these posts, as it would with a forged cross-site form.
    refused = page.request.post("/logout", form={})
    assert refused.status == 403
    assert "CSRF_INVALID" in refused.text()
    wrong = page.request.post("/logout", form={"csrf_token": "guessed"})
    assert wrong.status == 403
    page.goto("/")
    assert page.get_by_role("heading", name="Home").is_visible()  # still signed in
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login$"))
    page.goto("/")
    assert "/login" in page.url  # the session is over


def test_pages_carry_a_strict_csp_and_static_files_are_cached_by_version(
    instance: Instance,
) -> None:
    with httpx.Client(base_url=instance.base) as client:
        login = client.get("/login")
        csp = login.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert login.headers["Cache-Control"] == "no-store"
        versioned = re.search(r'src="(/static/vendor/htmx-[^"]+)"', login.text)
        assert versioned is not None
        script = client.get(versioned.group(1))
        assert script.status_code == 200
        assert script.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert script.headers["Content-Type"].startswith("text/javascript")
        unversioned = client.get(versioned.group(1).split("?")[0])
        assert unversioned.headers["Cache-Control"] == "public, max-age=300"
        assert client.get("/static/../../pyproject.toml").status_code == 404
        assert client.get("/static/vendor/htmx-2.0.4/LICENSE").status_code == 200
