"""The Quart app subclass that carries flow8's collaborators, and typed access to it."""

from __future__ import annotations

from typing import cast

import trio
from quart import current_app
from quart_trio import QuartTrio

from ._admin_auth import AdminGate
from ._deps import HttpDeps


class Flow8App(QuartTrio):
    """QuartTrio plus flow8's dependencies.

    `closing` is set when the server begins a graceful shutdown, so long-lived handlers
    (WebSockets) end promptly instead of holding shutdown until Hypercorn's graceful timeout.
    """

    deps: HttpDeps
    admin_gate: AdminGate
    closing: trio.Event


def app() -> Flow8App:
    return cast(Flow8App, current_app)
