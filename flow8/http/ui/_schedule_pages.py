"""Schedules pages: the company's schedules (flow, cron, timezone, enabled, next run),
their form (the service checks the cron expression and its problem is shown beside the
field), enable, disable and delete. Same service calls, roles and audit entries as
`_schedule_routes.py`."""

from __future__ import annotations

import json
from typing import Any

from quart import Response
from werkzeug.datastructures import MultiDict

from flow8.services.identity import Action
from flow8.services.schedules import Schedule, utcnow

from .._api import audit_change
from .._context import schedule_service
from ._pages import PageReq, Pages, redirect, render
from ._platform_pages import act, attempt, flow_choices, flow_name, json_object

pages = Pages("schedules")

PAGE_SIZE = 50
MISFIRE = (
    ("skip", "skip (fire nothing missed)"),
    ("run_once", "run_once (one play for missed ticks)"),
)


@pages.get("/schedules", action=Action.READ)
async def schedules(page: PageReq) -> Response:
    found = await schedule_service().list(page.company_id)
    try:
        number = max(0, int(page.args.get("page", "0")))
    except ValueError:
        number = 0
    shown = found[number * PAGE_SIZE : (number + 1) * PAGE_SIZE]
    now = utcnow()
    upcoming = {s.id: s.next_fires(now, 1) for s in shown}
    names = {f: await flow_name(page, f) for f in {s.flow_id for s in shown}}
    return render(
        page,
        "platform/schedules.html",
        schedules=shown,
        total=len(found),
        page_number=number,
        pages=max(1, -(-len(found) // PAGE_SIZE)),
        upcoming=upcoming,
        flow_names=names,
    )


def _body(form: MultiDict[str, str], problems: dict[str, str]) -> dict[str, Any]:
    return {
        "cron": form.get("cron", "").strip(),
        "timezone": form.get("timezone", "").strip() or "UTC",
        "misfire": form.get("misfire", "skip"),
        "enabled": form.get("enabled") == "on",
        "description": form.get("description", ""),
        "args": json_object(form.get("args", ""), "args", problems),
    }


def _entered(form: MultiDict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in form.items() if k != "csrf_token"}
    values["enabled"] = form.get("enabled") == "on"
    return values


async def _form(
    page: PageReq,
    schedule: Schedule | None,
    values: dict[str, Any],
    errors: dict[str, str],
) -> Response:
    flow_id = schedule.flow_id if schedule is not None else values.get("flowId", "")
    return render(
        page,
        "platform/schedule_form.html",
        status=422 if errors else 200,
        schedule=schedule,
        flow=await flow_name(page, flow_id) if schedule is not None else "",
        flow_choices=await flow_choices(page, [flow_id] if flow_id else []),
        misfire=MISFIRE,
        values=values,
        errors=errors,
    )


@pages.get("/schedules/new", action=Action.SCHEDULE_WRITE)
async def new_schedule(page: PageReq) -> Response:
    values = {"flowId": page.args.get("flow", ""), "timezone": "UTC", "misfire": "skip"}
    return await _form(page, None, {**values, "enabled": True, "cron": "", "args": ""}, {})


@pages.post("/schedules/new", action=Action.SCHEDULE_WRITE)
async def create_schedule(page: PageReq) -> Response:
    problems: dict[str, str] = {}
    body = _body(page.form, problems)
    flow_id = page.form.get("flowId", "")
    if not flow_id:
        problems["flowId"] = "choose the flow to run"
    made = None
    if not problems:
        made, problems = await attempt(schedule_service().create(page.company_id, flow_id, body))
    if made is None:
        return await _form(page, None, _entered(page.form), problems)
    audit_change(page.as_req(), "schedule_created", "schedule", made.id, after=made.summary())
    return redirect(page, f"/schedules#s-{made.id}")


@pages.get("/schedules/<schedule_id>/edit", action=Action.SCHEDULE_WRITE)
async def edit_schedule(page: PageReq, schedule_id: str) -> Response:
    found = await act(schedule_service().get(page.company_id, schedule_id))
    values = {
        "cron": found.cron,
        "timezone": found.timezone,
        "misfire": found.misfire,
        "enabled": found.enabled,
        "description": found.description,
        "args": _pretty(found.args) if found.args else "",
    }
    return await _form(page, found, values, {})


def _pretty(args: Any) -> str:
    return json.dumps(args, indent=2, ensure_ascii=False)


async def _update(page: PageReq, schedule_id: str, change: dict[str, Any]) -> Schedule:
    before, after = await schedule_service().update(page.company_id, schedule_id, change)
    if after is not before:
        audit_change(
            page.as_req(),
            "schedule_updated",
            "schedule",
            schedule_id,
            before=before.summary(),
            after=after.summary(),
        )
    return after


@pages.post("/schedules/<schedule_id>/edit", action=Action.SCHEDULE_WRITE)
async def update_schedule(page: PageReq, schedule_id: str) -> Response:
    found = await act(schedule_service().get(page.company_id, schedule_id))
    problems: dict[str, str] = {}
    change = _body(page.form, problems)
    if not problems:
        _, problems = await attempt(_update(page, schedule_id, change))
    if problems:
        return await _form(page, found, _entered(page.form), problems)
    return redirect(page, f"/schedules#s-{schedule_id}")


@pages.post("/schedules/<schedule_id>/enable", action=Action.SCHEDULE_WRITE)
async def enable_schedule(page: PageReq, schedule_id: str) -> Response:
    await act(_update(page, schedule_id, {"enabled": True}))
    return redirect(page, f"/schedules#s-{schedule_id}")


@pages.post("/schedules/<schedule_id>/disable", action=Action.SCHEDULE_WRITE)
async def disable_schedule(page: PageReq, schedule_id: str) -> Response:
    await act(_update(page, schedule_id, {"enabled": False}))
    return redirect(page, f"/schedules#s-{schedule_id}")


@pages.post("/schedules/<schedule_id>/delete", action=Action.SCHEDULE_WRITE)
async def delete_schedule(page: PageReq, schedule_id: str) -> Response:
    gone = await act(schedule_service().delete(page.company_id, schedule_id))
    audit_change(page.as_req(), "schedule_deleted", "schedule", schedule_id, before=gone.summary())
    return redirect(page, "/schedules")
