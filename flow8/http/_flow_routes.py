"""Flows, their layers (flowlets), versions, and starting plays."""

from __future__ import annotations

from typing import Any

import trio
from quart import Response

from flow8.domain import FlowDefinition, Flowlet, api, flow_definition_to_api
from flow8.services.identity import Action

from ._api import Req, Routes, audit_change
from ._context import app, flow_service, play_service
from ._engine_models import FlowListQuery, FlowOut, PlayOut, RunQuery, flow_out
from ._page import PageQuery, make_page, page_of, slice_page
from ._responses import json_response
from .exceptions import BadRequest, NotFound

# How long the run route waits for a start (a stalled store) before answering: 202 with the
# play's id once it was handed to the store, 503 (safe to retry) if it never was.
START_TIMEOUT = 30.0

routes = Routes("flows", "flows")


@routes.route(
    "GET",
    "/api/flows",
    action=Action.READ,
    summary="Flows of the current company; ?q= (name prefix), ?group=, ?tag= and ?enabled= "
    "narrow it",
    query=FlowListQuery,
    response=page_of(FlowOut),
)
async def list_flows(req: Req) -> object:
    q: FlowListQuery = req.query
    flows, total = await flow_service().list(
        req.company_id,
        page=q.page,
        size=q.size,
        name_prefix=q.q,
        group=q.group,
        tag=q.tag,
        enabled=q.enabled,
    )
    return make_page(FlowOut, [flow_out(f) for f in flows], total, PageQuery(q.page, q.size))


@routes.route(
    "POST",
    "/api/flows",
    action=Action.FLOW_WRITE,
    summary="Create a flow (version 1)",
    body=FlowDefinition,
    response=FlowOut,
    status=201,
)
async def create_flow(req: Req) -> object:
    flow = await flow_service().create(req.company_id, req.raw_body)
    audit_change(req, "flow_created", "flow", flow.id, after=req.raw_body)
    return flow_out(flow)


@routes.route(
    "GET",
    "/api/flows/{flowId}",
    action=Action.READ,
    summary="A flow (latest version)",
    response=FlowOut,
    errors=(404,),
)
async def get_flow(req: Req, flowId: str) -> object:
    return flow_out(await flow_service().get(req.company_id, flowId))


async def _save(req: Req, flow_id: str, data: Any, action: str) -> object:
    before = await flow_service().get(req.company_id, flow_id)
    flow = await flow_service().update(req.company_id, flow_id, data)
    audit_change(
        req,
        action,
        "flow",
        flow_id,
        before=flow_definition_to_api(before.definition),
        after=data,
        details={"version": flow.version},
    )
    return flow_out(flow)


@routes.route(
    "PUT",
    "/api/flows/{flowId}",
    action=Action.FLOW_WRITE,
    summary="Replace a flow's definition (stores a new version)",
    body=FlowDefinition,
    response=FlowOut,
    errors=(404,),
)
async def update_flow(req: Req, flowId: str) -> object:
    return await _save(req, flowId, req.raw_body, "flow_updated")


@routes.route(
    "DELETE",
    "/api/flows/{flowId}",
    action=Action.FLOW_WRITE,
    summary="Delete a flow",
    status=204,
    errors=(404,),
)
async def delete_flow(req: Req, flowId: str) -> None:
    before = await flow_service().get(req.company_id, flowId)
    await flow_service().delete(req.company_id, flowId)
    audit_change(
        req, "flow_deleted", "flow", flowId, before=flow_definition_to_api(before.definition)
    )
    # A flow's schedules go with it: left behind, each tick would start a play that fails.
    # Channel routes stop targeting it; a route left with no target goes too.
    channels = app().deps.channels
    if channels is not None:
        for channel, route, after in await channels.forget_flow(req.company_id, flowId):
            action = "channel_route_deleted" if after is None else "channel_route_updated"
            audit_change(
                req,
                action,
                "channel",
                channel.id,
                before=route.summary(),
                after=None if after is None else after.summary(),
                details={"routeId": route.id},
            )
    schedules = app().deps.schedules
    if schedules is not None:
        for schedule in await schedules.delete_for_flow(req.company_id, flowId):
            audit_change(
                req, "schedule_deleted", "schedule", schedule.id, before=schedule.summary()
            )


@routes.route(
    "GET",
    "/api/flows/{flowId}/layers",
    action=Action.READ,
    summary="The flow's layers (flowlets) in order",
    query=PageQuery,
    response=page_of(Flowlet),
    errors=(404,),
)
async def list_flow_layers(req: Req, flowId: str) -> object:
    flow = await flow_service().get(req.company_id, flowId)
    return slice_page(Flowlet, list(flow.definition.flowlets), req.query)


def _definition_json(flow: Any) -> dict[str, Any]:
    data: dict[str, Any] = flow_definition_to_api(flow.definition)
    data.setdefault("flowlets", [])
    return data


@routes.route(
    "POST",
    "/api/flows/{flowId}/layers",
    action=Action.FLOW_WRITE,
    summary="Append a layer (flowlet); stores a new version",
    body=Flowlet,
    response=FlowOut,
    status=201,
    errors=(404,),
)
async def add_flow_layer(req: Req, flowId: str) -> object:
    data = _definition_json(await flow_service().get(req.company_id, flowId))
    data["flowlets"].append(req.raw_body)
    return await _save(req, flowId, data, "flow_updated")


def _layer_index(data: dict[str, Any], layer_id: str) -> int:
    for i, flowlet in enumerate(data["flowlets"]):
        if flowlet.get("ref") == layer_id:
            return i
    raise NotFound("layer not found", code="LAYER_NOT_FOUND")


@routes.route(
    "PUT",
    "/api/flows/{flowId}/layers/{layerId}",
    action=Action.FLOW_WRITE,
    summary="Replace one layer (by ref); stores a new version",
    body=Flowlet,
    response=FlowOut,
    errors=(404,),
)
async def update_flow_layer(req: Req, flowId: str, layerId: str) -> object:
    data = _definition_json(await flow_service().get(req.company_id, flowId))
    data["flowlets"][_layer_index(data, layerId)] = req.raw_body
    return await _save(req, flowId, data, "flow_updated")


@routes.route(
    "DELETE",
    "/api/flows/{flowId}/layers/{layerId}",
    action=Action.FLOW_WRITE,
    summary="Remove one layer (by ref); stores a new version",
    response=FlowOut,
    errors=(404,),
)
async def delete_flow_layer(req: Req, flowId: str, layerId: str) -> object:
    data = _definition_json(await flow_service().get(req.company_id, flowId))
    del data["flowlets"][_layer_index(data, layerId)]
    return await _save(req, flowId, data, "flow_updated")


@routes.route(
    "GET",
    "/api/flows/{flowId}/versions",
    action=Action.READ,
    summary="Every stored version of a flow, newest first",
    query=PageQuery,
    response=page_of(FlowOut),
    errors=(404,),
)
async def list_flow_versions(req: Req, flowId: str) -> object:
    versions = await flow_service().versions(req.company_id, flowId)
    return slice_page(FlowOut, [flow_out(f) for f in versions], req.query)


@routes.route(
    "POST",
    "/api/flows/{flowId}/versions/{version}/restore",
    action=Action.FLOW_WRITE,
    summary="Make an old version current again (stored as a new version)",
    response=FlowOut,
    errors=(404,),
)
async def restore_flow_version(req: Req, flowId: str, version: str) -> object:
    # isascii(): str.isdigit() also takes digits int() refuses ('¹')
    if not (version.isascii() and version.isdigit()) or int(version) < 1 or len(version) > 9:
        raise NotFound("flow version not found", code="FLOW_VERSION_NOT_FOUND")
    old = await flow_service().get(req.company_id, flowId, int(version))
    if old.version != int(version):
        raise NotFound("flow version not found", code="FLOW_VERSION_NOT_FOUND")
    return await _save(req, flowId, _definition_json(old), "flow_restored")


@routes.route(
    "POST",
    "/api/flows/{flowId}/run",
    action=Action.PLAY_RUN,
    summary="Start a play with the body as its input; ?wait=SECONDS answers when it ends",
    body=Any,
    body_optional=True,
    query=RunQuery,
    response=PlayOut,
    status=202,
    also=(200,),
    errors=(404, 409, 429, 503),
)
async def run_flow(req: Req, flowId: str) -> Response:
    q: RunQuery = req.query
    key = req.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 200:
        raise BadRequest("Idempotency-Key must be 1 to 200 characters", code="BAD_IDEMPOTENCY_KEY")
    # The key answers the play it was first used for, for the same body only: another body
    # is another request (422 IDEMPOTENCY_KEY_REUSED, from the engine's fingerprint check).
    # A client hanging up must not cancel a play half-created: starting is one step. Once
    # the play has been handed to the store, the answer is its id (never a retryable error,
    # which would start it twice for a client retrying without an Idempotency-Key).
    with trio.CancelScope(shield=True):
        play = await play_service().start(
            req.company_id,
            flowId,
            req.body,
            idempotency_key=key,
            timeout=START_TIMEOUT,
            force=q.force,
        )
    audit_change(
        req,
        "play_started",
        "play",
        play.id,
        details={"flowId": flowId, "idempotencyKey": key is not None, "forced": q.force},
    )
    if q.wait:
        try:
            play = await play_service().wait(req.company_id, play.id, timeout=q.wait)
        except TimeoutError:
            play = await play_service().get(req.company_id, play.id)
    status = 200 if play.state.final else 202
    return json_response(api.unstructure(PlayOut.of(play)), status=status)
