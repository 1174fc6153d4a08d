"""Errors of the channels service. Problems name fields, never values (a channel holds a
bearer token and an HMAC secret)."""

from __future__ import annotations

import attrs


@attrs.frozen
class Problem:
    field: str
    message: str


class ChannelError(Exception):
    code = "CHANNEL_ERROR"


class InvalidChannel(ChannelError):
    """A body that fails validation: every problem, each naming its field."""

    code = "VALIDATION_ERROR"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


class ChannelNotFound(ChannelError):
    code = "CHANNEL_NOT_FOUND"


class RouteNotFound(ChannelError):
    code = "ROUTE_NOT_FOUND"


class ChannelConflict(ChannelError):
    """The change clashes with what is stored (answered 409)."""

    code = "CHANNEL_CONFLICT"


class ChannelNameTaken(ChannelConflict):
    code = "CHANNEL_NAME_TAKEN"


class RouteTaken(ChannelConflict):
    """A route's name, (httpMethod, path) or toolName is already used; ``field`` says which."""

    code = "ROUTE_TAKEN"

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class PortsExhausted(ChannelConflict):
    """Every port of this instance's block (CHANNEL_PORT_RANGE) is held by a channel."""

    code = "CHANNEL_PORTS_EXHAUSTED"
