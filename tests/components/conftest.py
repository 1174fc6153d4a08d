"""Component tests run on the real clock: real files, sockets, servers and worker threads.

``start``: ``await start(handler, host=..., tls=...)`` serves a ``support.local_http``
server (which counts its connections) until the test ends.
"""

from __future__ import annotations

import pytest
import trio
from support.local_http import LocalServer, Start


@pytest.fixture
def start(nursery: trio.Nursery) -> Start:
    async def _start(*args: object, **kwargs: object) -> LocalServer:
        server = LocalServer(*args, **kwargs)  # type: ignore[arg-type]
        await nursery.start(server.serve)
        return server

    return _start
