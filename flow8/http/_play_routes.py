"""Plays: list, inspect, layers, and the operator commands."""

from __future__ import annotations

from flow8.services.identity import Action

from ._api import Req, Routes, audit_change
from ._context import play_service
from ._engine_models import LayerOut, PlayListQuery, PlayOut, RetryRequest
from ._page import PageQuery, make_page, page_of

routes = Routes("plays", "plays")


@routes.route(
    "GET",
    "/api/plays",
    action=Action.READ,
    summary="Plays, newest first, by flow, state and creation time",
    query=PlayListQuery,
    response=page_of(PlayOut),
)
async def list_plays(req: Req) -> object:
    q: PlayListQuery = req.query
    plays, total = await play_service().list(
        req.company_id,
        flow_id=q.flow_id,
        state=q.state,
        created_from=q.since,
        created_before=q.until,
        page=q.page,
        size=q.size,
    )
    return make_page(PlayOut, [PlayOut.of(p) for p in plays], total, PageQuery(q.page, q.size))


@routes.route(
    "GET",
    "/api/plays/{playId}",
    action=Action.READ,
    summary="A play",
    response=PlayOut,
    errors=(404,),
)
async def get_play(req: Req, playId: str) -> PlayOut:
    return PlayOut.of(await play_service().get(req.company_id, playId))


@routes.route(
    "GET",
    "/api/plays/{playId}/layers",
    action=Action.READ,
    summary="The play's layers in execution order",
    query=PageQuery,
    response=page_of(LayerOut),
    errors=(404,),
)
async def list_play_layers(req: Req, playId: str) -> object:
    q: PageQuery = req.query
    layers, total = await play_service().layers(req.company_id, playId, page=q.page, size=q.size)
    return make_page(LayerOut, [LayerOut.of(la) for la in layers], total, q)


@routes.route(
    "POST",
    "/api/plays/{playId}/cancel",
    action=Action.PLAY_CANCEL,
    summary="Cancel a play",
    response=PlayOut,
    errors=(404, 409),
)
async def cancel_play(req: Req, playId: str) -> PlayOut:
    play = await play_service().cancel(req.company_id, playId)
    audit_change(req, "play_cancelled", "play", playId, after={"state": play.state.value})
    return PlayOut.of(play)


@routes.route(
    "POST",
    "/api/plays/{playId}/approve",
    action=Action.PLAY_APPROVE,
    summary="Approve the step a play waits on",
    response=PlayOut,
    errors=(404, 409),
)
async def approve_play(req: Req, playId: str) -> PlayOut:
    play = await play_service().approve(req.company_id, playId, by=req.user.user.id)
    audit_change(req, "play_approved", "play", playId, after={"state": play.state.value})
    return PlayOut.of(play)


@routes.route(
    "POST",
    "/api/plays/{playId}/reject",
    action=Action.PLAY_APPROVE,
    summary="Reject the step a play waits on (the play fails)",
    response=PlayOut,
    errors=(404, 409),
)
async def reject_play(req: Req, playId: str) -> PlayOut:
    play = await play_service().reject(req.company_id, playId, by=req.user.user.id)
    audit_change(req, "play_rejected", "play", playId, after={"state": play.state.value})
    return PlayOut.of(play)


@routes.route(
    "POST",
    "/api/plays/{playId}/retry",
    action=Action.PLAY_RETRY,
    summary="Retry from a step on the latest flow version (a new play)",
    body=RetryRequest,
    response=PlayOut,
    status=201,
    errors=(404, 409),
)
async def retry_play(req: Req, playId: str) -> PlayOut:
    body: RetryRequest = req.body
    play = await play_service().retry(req.company_id, playId, body.from_ref)
    audit_change(
        req, "play_retried", "play", play.id, details={"retryOf": playId, "fromRef": body.from_ref}
    )
    return PlayOut.of(play)
