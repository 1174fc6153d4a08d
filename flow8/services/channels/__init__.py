"""Channels: the ways in from outside (http, ws and tcp listeners on ports of their own, and
mcp channels whose routes are tools of the MCP server), with their routes to flows.

``_service`` stores them (secrets encrypted, ports claimed race-safely); ``_checks``
validates bodies, naming the field at fault; ``_models`` holds what the listeners read.
"""

from ._checks import (
    BUILTIN_TOOLS,
    DESCRIPTION_MAX,
    MAX_CONNECTIONS_MAX,
    NAME_MAX,
    RATE_MAX,
    TARGETS_MAX,
    TIMEOUT_MAX,
    route_pattern,
)
from ._models import (
    AuthMode,
    Channel,
    ChannelKind,
    HmacSettings,
    HmacStyle,
    ResponseMode,
    Route,
)
from ._service import COLLECTION, PORTS, ROUTES_MAX, ChannelService, channel_from_doc
from .exceptions import (
    ChannelConflict,
    ChannelError,
    ChannelNameTaken,
    ChannelNotFound,
    InvalidChannel,
    PortsExhausted,
    Problem,
    RouteNotFound,
    RouteTaken,
)

__all__ = [
    "BUILTIN_TOOLS",
    "COLLECTION",
    "DESCRIPTION_MAX",
    "MAX_CONNECTIONS_MAX",
    "NAME_MAX",
    "PORTS",
    "RATE_MAX",
    "ROUTES_MAX",
    "TARGETS_MAX",
    "TIMEOUT_MAX",
    "AuthMode",
    "Channel",
    "ChannelConflict",
    "ChannelError",
    "ChannelKind",
    "ChannelNameTaken",
    "ChannelNotFound",
    "ChannelService",
    "HmacSettings",
    "HmacStyle",
    "InvalidChannel",
    "PortsExhausted",
    "Problem",
    "ResponseMode",
    "Route",
    "RouteNotFound",
    "RouteTaken",
    "channel_from_doc",
    "route_pattern",
]
