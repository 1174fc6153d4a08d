"""Fixtures running the real app on Hypercorn at 127.0.0.1 (ephemeral port) over a real
sqlite store in tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path

import pytest
import trio
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv, start_app

from flow8.http import Flow8App, HttpSettings, serve_http
from flow8.store import Keyring, Store, open_store

Serve = Callable[[Flow8App], Awaitable[str]]


@pytest.fixture
async def serve(nursery: trio.Nursery) -> Serve:
    """Start an app on a real socket; returns its base URL. Stopped with the test's nursery."""

    async def _start(app: Flow8App) -> str:
        binds: list[str] = await nursery.start(
            partial(serve_http, app, "127.0.0.1", 0, graceful_timeout=1.0)
        )
        return binds[0]

    return _start


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(
        f"sqlite:///{tmp_path / 'flow8.db'}",
        data_dir=tmp_path,
        durability="normal",
        encryption=Keyring.generate(),
    ) as s:
        yield s


@pytest.fixture
async def api(nursery: trio.Nursery, store: Store, serve: Serve) -> ApiEnv:
    settings = HttpSettings(
        admin_token="admin-token-for-tests", allowed_origins=("https://ui.example",)
    )
    app, identity, audit = await start_app(nursery, store, settings)
    url = await serve(app)
    return ApiEnv(url, store, identity, audit, app)


@pytest.fixture
async def installed(api: ApiEnv) -> ApiEnv:
    async with api.client() as client:
        r = await client.post(
            "/api/install",
            json={"company": "Acme", "email": OWNER_EMAIL, "password": OWNER_PASSWORD},
        )
        assert r.status_code == 201, r.text
    return api
