"""Fixtures: real servers on loopback addresses, started in the test's nursery."""

from __future__ import annotations

import pytest
import trio
from support.local_http import LocalServer, Start


@pytest.fixture
def start(nursery: trio.Nursery) -> Start:
    """``await start(handler, host=..., tls=...)``: a ``LocalServer``, serving until the
    test ends."""

    async def _start(*args: object, **kwargs: object) -> LocalServer:
        server = LocalServer(*args, **kwargs)  # type: ignore[arg-type]
        await nursery.start(server.serve)
        return server

    return _start
