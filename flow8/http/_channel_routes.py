"""Channels of the current company and their routes. Editors (and above) manage them;
everyone in the company may read them. Another company's channel is not found (404).
Answers and audit entries name the secrets (bearer token, HMAC secret), never show them."""

from __future__ import annotations

from typing import Any

from flow8.services.identity import Action

from ._api import Req, Routes, audit_change
from ._channel_models import (
    ChannelCreate,
    ChannelList,
    ChannelOut,
    ChannelUpdate,
    RouteCreate,
    RouteList,
    RouteOut,
    RouteUpdate,
)
from ._context import channel_service

routes = Routes("channels", "channels")


def _raw(req: Req) -> dict[str, Any]:
    # The service validates the JSON as sent: it tells an absent field (keep) from a null
    # one (remove a secret), which the parsed body cannot.
    return req.raw_body if isinstance(req.raw_body, dict) else {}


@routes.route(
    "GET",
    "/api/channels",
    action=Action.READ,
    summary="Channels of the current company with their routes (secrets by name only)",
    response=ChannelList,
)
async def list_channels(req: Req) -> ChannelList:
    found = await channel_service().list(req.company_id)
    return ChannelList([ChannelOut.of(c) for c in found])


@routes.route(
    "POST",
    "/api/channels",
    action=Action.CHANNEL_WRITE,
    summary="Create a channel: an http, ws or tcp one is answered with the port allocated "
    "to it from CHANNEL_PORT_RANGE (409 when the block is full); secrets are stored "
    "encrypted and never shown again",
    body=ChannelCreate,
    response=ChannelOut,
    status=201,
    errors=(409,),
)
async def create_channel(req: Req) -> ChannelOut:
    made = await channel_service().create(req.company_id, _raw(req))
    audit_change(req, "channel_created", "channel", made.id, after=made.summary())
    return ChannelOut.of(made)


@routes.route(
    "GET",
    "/api/channels/{channelId}",
    action=Action.READ,
    summary="A channel with its routes (secrets by name only)",
    response=ChannelOut,
    errors=(404,),
)
async def get_channel(req: Req, channelId: str) -> ChannelOut:
    return ChannelOut.of(await channel_service().get(req.company_id, channelId))


@routes.route(
    "PUT",
    "/api/channels/{channelId}",
    action=Action.CHANNEL_WRITE,
    summary="Change a channel: the fields given replace the stored ones, an absent one "
    "keeps its value, a null authToken or hmac.secret removes it; the kind never changes",
    body=ChannelUpdate,
    response=ChannelOut,
    errors=(404, 409),
)
async def update_channel(req: Req, channelId: str) -> ChannelOut:
    before, after = await channel_service().update(req.company_id, channelId, _raw(req))
    if after is not before:
        audit_change(
            req,
            "channel_updated",
            "channel",
            channelId,
            before=before.summary(),
            after=after.summary(),
        )
    return ChannelOut.of(after)


@routes.route(
    "DELETE",
    "/api/channels/{channelId}",
    action=Action.CHANNEL_WRITE,
    summary="Delete a channel and its routes; its port is free for the next channel",
    status=204,
    errors=(404,),
)
async def delete_channel(req: Req, channelId: str) -> None:
    gone = await channel_service().delete(req.company_id, channelId)
    audit_change(req, "channel_deleted", "channel", channelId, before=gone.summary())


@routes.route(
    "POST",
    "/api/channels/{channelId}/routes",
    action=Action.CHANNEL_WRITE,
    summary="Add a route: a request (http: method and path; ws/tcp: the message's route "
    "name; mcp: the tool) starts a play of each target flow",
    body=RouteCreate,
    response=RouteOut,
    status=201,
    errors=(404, 409),
)
async def create_route(req: Req, channelId: str) -> RouteOut:
    _, made = await channel_service().add_route(req.company_id, channelId, _raw(req))
    audit_change(
        req,
        "channel_route_created",
        "channel",
        channelId,
        after=made.summary(),
        details={"routeId": made.id},
    )
    return RouteOut.of(made)


@routes.route(
    "GET",
    "/api/channels/{channelId}/routes",
    action=Action.READ,
    summary="The routes of a channel",
    response=RouteList,
    errors=(404,),
)
async def list_routes(req: Req, channelId: str) -> RouteList:
    found = await channel_service().routes(req.company_id, channelId)
    return RouteList([RouteOut.of(r) for r in found])


@routes.route(
    "PUT",
    "/api/channels/{channelId}/routes/{routeId}",
    action=Action.CHANNEL_WRITE,
    summary="Change a route (the fields given replace the stored ones)",
    body=RouteUpdate,
    response=RouteOut,
    errors=(404, 409),
)
async def update_route(req: Req, channelId: str, routeId: str) -> RouteOut:
    before, after = await channel_service().update_route(
        req.company_id, channelId, routeId, _raw(req)
    )
    if after is not before:
        audit_change(
            req,
            "channel_route_updated",
            "channel",
            channelId,
            before=before.summary(),
            after=after.summary(),
            details={"routeId": routeId},
        )
    return RouteOut.of(after)


@routes.route(
    "DELETE",
    "/api/channels/{channelId}/routes/{routeId}",
    action=Action.CHANNEL_WRITE,
    summary="Delete a route of a channel",
    status=204,
    errors=(404,),
)
async def delete_route(req: Req, channelId: str, routeId: str) -> None:
    gone = await channel_service().delete_route(req.company_id, channelId, routeId)
    audit_change(
        req,
        "channel_route_deleted",
        "channel",
        channelId,
        before=gone.summary(),
        details={"routeId": routeId},
    )
