"""A real `flow8 serve` and a real Chromium (Debian's, driven by Playwright's sync API) for
the UI tests, with helpers to sign in, add members with a role, and keep screenshots.

Screenshots go to `$FLOW8_SCREENSHOTS` (default `ui-screenshots/` at the repository root,
which git ignores), one PNG per page at 1280x800, so a reviewer can look at every page."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.serving import flow8_serve

CHROMIUM = os.environ.get("FLOW8_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(
    os.environ.get("FLOW8_SCREENSHOTS", Path(__file__).parents[2] / "ui-screenshots")
)
VIEWPORT = {"width": 1280, "height": 800}
OWNER = {"company": "Acme", "email": "owner@example.com", "password": "owner-password-1"}
_emails = itertools.count(1)

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)


class Instance:
    """A served instance with its owner installed, and an API client signed in as the owner
    (for arranging data quickly; the tests themselves act through the browser)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.api = httpx.Client(base_url=base, timeout=15)
        try:
            self._install()
        except BaseException:
            self.api.close()
            raise

    def _install(self) -> None:
        assert self.api.post("/api/install", json=OWNER).status_code == 201
        login = self.api.post("/api/auth/login", json={k: OWNER[k] for k in ("email", "password")})
        body = login.json()
        self.company_id: str = body["companyId"]
        self.api.headers["X-CSRF-Token"] = body["csrfToken"]

    def member(self, role: str) -> tuple[str, str]:
        """A new member of the owner's company with ``role``: (email, password)."""
        email = f"{role}{next(_emails)}@example.com"
        invited = self.api.post(
            f"/api/companies/{self.company_id}/members", json={"email": email, "role": role}
        )
        assert invited.status_code == 201, invited.text
        password = f"{role}-password-123"
        with httpx.Client(base_url=self.base, timeout=15) as anon:
            accepted = anon.post(
                "/api/invitations/accept",
                json={"token": invited.json()["token"], "password": password},
            )
            assert accepted.status_code == 200, accepted.text
        return email, password

    def post(self, path: str, body: Any) -> Any:
        answer = self.api.post(path, json=body)
        assert answer.status_code in (200, 201, 202), answer.text
        return answer.json()


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """One installed instance shared by a test module (each test makes its own data)."""
    with flow8_serve(tmp_path_factory.mktemp("ui")) as server:
        served = Instance(server["base"])
        try:
            yield served
        finally:
            served.api.close()


@pytest.fixture
def fresh_instance(tmp_path: Path) -> Iterator[str]:
    """A served instance nobody has installed yet: its base URL."""
    with flow8_serve(tmp_path) as server:
        yield server["base"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """``new_page(base)``: a page in a fresh browser context (its own cookies) at 1280x800."""
    contexts: list[Any] = []

    def make(base: str) -> Any:
        context = browser.new_context(base_url=base, viewport=VIEWPORT)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in(page: Any, email: str = OWNER["email"], password: str = OWNER["password"]) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def shoot(page: Any, name: str) -> Path:
    """A 1280x800 screenshot of the page as it is now, as `<name>.png`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(target))
    return target
