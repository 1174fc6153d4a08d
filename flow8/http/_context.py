"""The Quart app subclass that carries flow8's collaborators, and typed access to it."""

from __future__ import annotations

from typing import TypeVar, cast

import trio
from quart import current_app
from quart.ctx import RequestContext
from quart.globals import request_ctx
from quart.typing import ResponseReturnValue
from quart_trio import QuartTrio

from flow8.services.channels import ChannelService
from flow8.services.components import ComponentService
from flow8.services.credentials import CredentialService
from flow8.services.flows import FlowService
from flow8.services.kv import KvService
from flow8.services.plays import PlayService
from flow8.services.schedules import ScheduleService

from ._admin_auth import AdminGate
from ._deps import HttpDeps
from ._request_audit import trail_of
from .exceptions import NotFound

S = TypeVar("S")


class Flow8App(QuartTrio):
    """QuartTrio plus flow8's dependencies.

    `closing` is set when the server begins a graceful shutdown, so long-lived handlers
    (WebSockets) end promptly instead of holding shutdown until Hypercorn's graceful timeout.
    """

    deps: HttpDeps
    admin_gate: AdminGate
    closing: trio.Event

    async def dispatch_request(
        self, request_context: RequestContext | None = None
    ) -> ResponseReturnValue:
        # Where Quart has matched the route and the request's scope is at hand: the trail
        # notes the route's template, which the middleware's metrics count requests by.
        request_ = (request_context or request_ctx).request
        rule = request_.url_rule
        if rule is not None:
            trail = trail_of(request_.scope)
            if trail is not None:
                trail.route = rule.rule
        return await super().dispatch_request(request_context)


def app() -> Flow8App:
    return cast(Flow8App, current_app)


def _provided(service: S | None, unavailable: str) -> S:
    # An app built without a service (tests of one area, or a trimmed instance) answers its
    # routes with 404 rather than failing.
    if service is None:
        raise NotFound(unavailable)
    return service


def flow_service() -> FlowService:
    return _provided(app().deps.flows, "flows are not available on this instance")


def play_service() -> PlayService:
    return _provided(app().deps.plays, "plays are not available on this instance")


def kv_service() -> KvService:
    return _provided(app().deps.kv, "KV is not available on this instance")


def component_service() -> ComponentService:
    return _provided(app().deps.components, "components are not available on this instance")


def schedule_service() -> ScheduleService:
    return _provided(app().deps.schedules, "schedules are not available on this instance")


def channel_service() -> ChannelService:
    return _provided(app().deps.channels, "channels are not available on this instance")


def credential_service() -> CredentialService:
    return _provided(app().deps.credentials, "credentials are not available on this instance")
