"""Schedules of the current company's flows. Editors (and above) manage them; everyone in
the company may read them. Another company's schedule is not found (404)."""

from __future__ import annotations

from typing import Any, NoReturn

from flow8.services.identity import Action
from flow8.services.schedules import InvalidSchedule, ScheduleNotFound, utcnow

from ._api import Req, Routes, audit_change
from ._context import schedule_service
from ._engine_models import PlayOut
from ._schedule_models import (
    ScheduleCreate,
    ScheduleList,
    ScheduleOut,
    ScheduleQuery,
    ScheduleUpdate,
)
from .exceptions import NotFound, ValidationFailed

routes = Routes("schedules", "schedules")


def _raw(req: Req) -> dict[str, Any]:
    return req.raw_body if isinstance(req.raw_body, dict) else {}


def _fail(error: InvalidSchedule | ScheduleNotFound) -> NoReturn:
    if isinstance(error, InvalidSchedule):
        fields = [{"field": p.field, "message": p.message} for p in error.problems]
        raise ValidationFailed(fields, message=str(error)) from None
    raise NotFound("schedule not found", code=error.code) from None


@routes.route(
    "POST",
    "/api/flows/{flowId}/schedules",
    action=Action.SCHEDULE_WRITE,
    summary="Schedule a flow: a cron timetable in a timezone; the answer lists the next "
    "five fire times",
    body=ScheduleCreate,
    response=ScheduleOut,
    status=201,
    errors=(404,),
)
async def create_schedule(req: Req, flowId: str) -> ScheduleOut:
    try:
        made = await schedule_service().create(req.company_id, flowId, _raw(req))
    except (InvalidSchedule, ScheduleNotFound) as e:
        _fail(e)
    audit_change(req, "schedule_created", "schedule", made.id, after=made.summary())
    return ScheduleOut.of(made, utcnow())


@routes.route(
    "GET",
    "/api/schedules",
    action=Action.READ,
    summary="The company's schedules (of every flow, or of one), with their next fire times",
    query=ScheduleQuery,
    response=ScheduleList,
)
async def list_schedules(req: Req) -> ScheduleList:
    q: ScheduleQuery = req.query
    found = await schedule_service().list(req.company_id, flow_id=q.flow_id)
    now = utcnow()
    return ScheduleList([ScheduleOut.of(s, now) for s in found])


@routes.route(
    "GET",
    "/api/schedules/{scheduleId}",
    action=Action.READ,
    summary="A schedule with its next five fire times",
    response=ScheduleOut,
    errors=(404,),
)
async def get_schedule(req: Req, scheduleId: str) -> ScheduleOut:
    try:
        found = await schedule_service().get(req.company_id, scheduleId)
    except ScheduleNotFound as e:
        _fail(e)
    return ScheduleOut.of(found, utcnow())


@routes.route(
    "PUT",
    "/api/schedules/{scheduleId}",
    action=Action.SCHEDULE_WRITE,
    summary="Change a schedule (the fields given replace the stored ones)",
    body=ScheduleUpdate,
    response=ScheduleOut,
    errors=(404,),
)
async def update_schedule(req: Req, scheduleId: str) -> ScheduleOut:
    try:
        before, after = await schedule_service().update(req.company_id, scheduleId, _raw(req))
    except (InvalidSchedule, ScheduleNotFound) as e:
        _fail(e)
    if after is not before:
        audit_change(
            req,
            "schedule_updated",
            "schedule",
            scheduleId,
            before=before.summary(),
            after=after.summary(),
        )
    return ScheduleOut.of(after, utcnow())


@routes.route(
    "DELETE",
    "/api/schedules/{scheduleId}",
    action=Action.SCHEDULE_WRITE,
    summary="Delete a schedule (no further plays; plays already started go on)",
    status=204,
    errors=(404,),
)
async def delete_schedule(req: Req, scheduleId: str) -> None:
    try:
        gone = await schedule_service().delete(req.company_id, scheduleId)
    except ScheduleNotFound as e:
        _fail(e)
    audit_change(req, "schedule_deleted", "schedule", scheduleId, before=gone.summary())


@routes.route(
    "POST",
    "/api/schedules/{scheduleId}/run",
    action=Action.SCHEDULE_WRITE,
    summary="Run the schedule's flow now, once, with its args (the timetable is unchanged)",
    response=PlayOut,
    status=201,
    errors=(404,),
)
async def run_schedule(req: Req, scheduleId: str) -> PlayOut:
    try:
        play = await schedule_service().run_now(req.company_id, scheduleId)
    except ScheduleNotFound as e:
        _fail(e)
    audit_change(req, "schedule_run", "schedule", scheduleId, details={"playId": play.id})
    return PlayOut.of(play)
