"""Fixtures running the real app on Hypercorn at 127.0.0.1 with an ephemeral port."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import pytest
import trio

from flow8.http import Flow8App, serve_http

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
