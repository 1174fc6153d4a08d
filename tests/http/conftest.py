"""Fixtures for the app: its HTTP tests run it in one of two ways.

* By default, on virtual time (tests/support/virtual_time.py): requests go in-process to the
  app's ASGI entry (httpx's ASGI transport, no socket), over an in-memory store.
* A test marked ``wall_clock`` (connections, WebSockets, the database file, real time) gets the
  app as deployed: Hypercorn on a real socket at 127.0.0.1 (ephemeral port), over a real
  sqlite store in tmp_path, on the real clock. The same fixtures (``store``, ``api``,
  ``installed``) give one or the other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
from http_fixtures import (
    IN_PROCESS_URL,
    OWNER_EMAIL,
    OWNER_PASSWORD,
    TEST_ARGON2,
    ApiEnv,
    start_app,
)
from support.virtual_time import WALL_CLOCK, default_to_virtual_time, require_wall_clock

from flow8.http import Flow8App, HttpSettings, serve_http
from flow8.services.identity import Argon2Params, Passwords
from flow8.store import Keyring, Store, open_store

Serve = Callable[[Flow8App], Awaitable[str]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    default_to_virtual_time(Path(__file__).parent, items)


def _as_deployed(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker(WALL_CLOCK) is not None


async def _serve_on_socket(nursery: trio.Nursery, app: Flow8App) -> str:
    require_wall_clock("a server on a real socket")
    binds: list[str] = await nursery.start(
        partial(serve_http, app, "127.0.0.1", 0, graceful_timeout=1.0)
    )
    return binds[0]


@pytest.fixture
async def serve(nursery: trio.Nursery) -> Serve:
    """Start an app on a real socket; returns its base URL. Stopped with the test's nursery."""
    return partial(_serve_on_socket, nursery)


@pytest.fixture
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite:///{tmp_path / 'flow8.db'}" if _as_deployed(request) else "memory://http"
    async with open_store(
        url, data_dir=tmp_path, durability="normal", encryption=Keyring.generate()
    ) as s:
        yield s


@pytest.fixture
def argon2_params() -> Argon2Params:
    """The app's password hashing: cheap, as what these tests check is the API, not the
    hash's cost. A test about the cost or the parameters overrides this fixture with
    ``@pytest.mark.parametrize("argon2_params", [Argon2Params()])``."""
    return TEST_ARGON2


@pytest.fixture
async def api(
    request: pytest.FixtureRequest,
    nursery: trio.Nursery,
    store: Store,
    argon2_params: Argon2Params,
) -> ApiEnv:
    settings = HttpSettings(
        admin_token="admin-token-for-tests", allowed_origins=("https://ui.example",)
    )
    app, identity, audit = await start_app(
        nursery, store, settings, passwords=Passwords(argon2_params)
    )
    if _as_deployed(request):
        return ApiEnv(await _serve_on_socket(nursery, app), store, identity, audit, app)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # as a server would
    return ApiEnv(IN_PROCESS_URL, store, identity, audit, app, transport)


@pytest.fixture
async def installed(api: ApiEnv) -> ApiEnv:
    async with api.client() as client:
        r = await client.post(
            "/api/install",
            json={"company": "Acme", "email": OWNER_EMAIL, "password": OWNER_PASSWORD},
        )
        assert r.status_code == 201, r.text
    return api
