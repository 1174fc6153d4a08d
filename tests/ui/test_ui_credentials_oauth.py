"""An oauth2 credential connected from the credentials page in a real browser: the page shows
it not connected, Connect goes to the provider (authlib's authorization server on loopback,
which approves at once), the provider sends the browser back to /auth/callback, and the page
shows it connected with its token's expiry; a refused refresh shows as needs re-auth."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from playwright.sync_api import expect
from support.oauth_server import OAuthServer
from support.serving import flow8_serve
from ui_fixtures import Instance, needs_chromium, shoot, sign_in

pytestmark = needs_chromium

CLIENT = "flow8-ui"
SECRET = "uI-cLiEnT-sEcReT-canary-6Tz1"


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    """The authorization server, on its own Trio loop in a thread (these tests are sync)."""
    server = OAuthServer(CLIENT, SECRET, expires_in=3600)
    ready = threading.Event()
    loop: dict[str, Any] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            loop["stop"], loop["token"] = nursery.cancel_scope, trio.lowlevel.current_trio_token()
            ready.set()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield server
    trio.from_thread.run_sync(loop["stop"].cancel, trio_token=loop["token"])
    thread.join(10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Instance]:
    """An instance whose outbound guard lets token requests reach loopback."""
    with flow8_serve(tmp_path, FLOW8_COMPONENT_ALLOWED_HOSTS="127.0.0.1/32") as server:
        instance = Instance(server["base"])
        try:
            yield instance
        finally:
            instance.api.close()


def test_an_oauth2_credential_is_connected_from_the_credentials_page(
    served: Instance, oauth: OAuthServer, new_page: Any
) -> None:
    made = served.api.post(
        "/api/credentials",
        json={
            "name": "crm",
            "type": "oauth2",
            "data": {
                "clientId": CLIENT,
                "clientSecret": SECRET,
                "authorizeUrl": oauth.url("/authorize"),
                "tokenUrl": oauth.url("/token"),
                "scopes": ["read"],
            },
        },
    )
    assert made.status_code == 201, made.text
    page = new_page(served.base)
    sign_in(page)
    page.goto("/credentials")
    row = page.get_by_role("row", name=re.compile("crm"))
    expect(row).to_contain_text("Not connected")

    row.get_by_role("button", name="Connect crm").click()
    page.wait_for_url(re.compile(r"/credentials\?connected=crm"))
    expect(page.locator("main [role=status]")).to_contain_text("Credential crm connected")
    row = page.get_by_role("row", name=re.compile("crm"))
    expect(row).to_contain_text("Connected")
    expect(row).to_contain_text("token expires")
    assert oauth.token_requests == ["authorization_code"]
    shoot(page, "workspace-credentials-oauth")
    got = served.api.get(f"/api/credentials/{made.json()['id']}").json()
    assert got["oauth"]["status"] == "connected"

    # The provider revokes it; asking for a token now fails and the page says so.
    oauth.revoke_refresh_tokens()
    refused = served.api.post(f"/api/credentials/{made.json()['id']}/oauth2/token")
    assert refused.status_code == 409, refused.text
    page.goto("/credentials")
    row = page.get_by_role("row", name=re.compile("crm"))
    expect(row).to_contain_text("Needs re-auth")
    expect(row).to_contain_text("invalid_grant")
    html = page.content()
    for canary in (SECRET, *oauth.issued_refresh_tokens()):
        assert canary not in html
