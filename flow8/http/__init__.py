"""flow8's HTTP interface: a Quart-Trio app (REST, WebSocket, admin, health) and its server.

`create_app(HttpDeps(...))` builds the app; `serve_http(app, host, port, ...)` runs it under
Hypercorn's trio worker as a supervised service.
"""

from ._app import create_app, route_specs
from ._child import http_child
from ._context import Flow8App
from ._deps import HttpDeps, HttpSettings
from ._serve import CannotListen, serve_http

__all__ = [
    "CannotListen",
    "Flow8App",
    "HttpDeps",
    "HttpSettings",
    "create_app",
    "http_child",
    "route_specs",
    "serve_http",
]
