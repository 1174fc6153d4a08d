"""Pages of the platform area (see README.md: one group per area): the helpers the
components, channels and schedules pages share (a form post's service call with its
problems by field, numbers from form text, the company's flows to choose from), and the
retention page.

Each area's pages are a list, a form (new and edit share one template) and small post
actions (delete, enable, disable), all through `templates/platform/_crud.html`."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

from quart import Response

from flow8.services.flows import Flow
from flow8.services.identity import Action
from flow8.services.retention import (
    InvalidPolicy,
    Policy,
    PolicyConflict,
    PolicyNotFound,
    RetentionPolicies,
)
from flow8.services.schedules import InvalidSchedule, ScheduleNotFound

from .._api import audit_change
from .._context import app, flow_service
from .._errors_map import api_error_of
from ..exceptions import ApiError, Conflict, NotFound, ValidationFailed
from ._pages import PageReq, Pages, redirect, render

pages = Pages("platform")

T = TypeVar("T")
FLOW_CHOICES = 100  # the newest flows a form offers (the flow service's largest page)
FORM_PROBLEM = "(form)"  # a problem of the whole form (a name taken, a conflict)
_INDEX = re.compile(r"\[\d+\]")


def mapped(error: Exception) -> ApiError | None:
    """The API error a service error stands for, as the REST routes answer it (the
    schedules and retention routes map their services' errors themselves)."""
    if isinstance(error, InvalidSchedule):
        fields = [{"field": p.field, "message": p.message} for p in error.problems]
        return ValidationFailed(fields, message=str(error))
    if isinstance(error, ScheduleNotFound):
        return NotFound("schedule not found", code=error.code)
    if isinstance(error, InvalidPolicy):
        return ValidationFailed(list(error.fields), message=f"invalid retention policy: {error}")
    if isinstance(error, PolicyNotFound):
        return NotFound("retention policy not found", code="RETENTION_POLICY_NOT_FOUND")
    if isinstance(error, PolicyConflict):
        return Conflict(str(error), code="RETENTION_POLICY_EXISTS")
    return api_error_of(error)


def problems_of(error: ApiError) -> dict[str, str]:
    """A 422's problems by the form field they name (`targetFlowIds[2]` is the
    `targetFlowIds` field), or a conflict's words as a problem of the whole form."""
    if not isinstance(error, ValidationFailed):
        return {FORM_PROBLEM: error.message}
    found: dict[str, str] = {}
    for problem in error.fields:
        name = _INDEX.sub("", str(problem["field"]))
        found.setdefault(name, str(problem["message"]))
    return found


async def attempt(call: Awaitable[T]) -> tuple[T | None, dict[str, str]]:
    """A form's service call: its result, or the problems a user can fix (invalid fields, a
    name taken) to show beside the form's fields. Any other error becomes the error page."""
    try:
        return await call, {}
    except Exception as error:
        api_error = mapped(error)
        if isinstance(api_error, ValidationFailed | Conflict):
            return None, problems_of(api_error)
        if api_error is not None:
            raise api_error from None
        raise


async def act(call: Awaitable[T]) -> T:
    """A post action's service call (delete, enable, ...): errors become the error page."""
    try:
        return await call
    except Exception as error:
        api_error = mapped(error)
        if api_error is not None:
            raise api_error from None
        raise


def number(text: str | None) -> int | float | str | None:
    """A number typed into a form (None when left empty; the text itself when it is not a
    number, so the service names the field)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def json_object(text: str, field: str, problems: dict[str, str]) -> Any:
    """A JSON object typed into a textarea ({} when empty); a problem beside it if not."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as e:
        problems[field] = f"is not JSON: {e}"
        return None
    if not isinstance(value, dict):
        problems[field] = "must be a JSON object"
    return value


async def flow_choices(
    page: PageReq, chosen: Iterable[str] = (), prefix: str | None = None
) -> list[tuple[str, str]]:
    """(id, name) of the flows a form offers: the newest `FLOW_CHOICES` (whose name starts
    with `prefix`, when given), and the already chosen ones wherever they are."""
    flows, _ = await flow_service().list(
        page.company_id, size=FLOW_CHOICES, name_prefix=prefix or None
    )
    offered = {f.id: f.definition.name for f in flows}
    for flow_id in chosen:
        if flow_id and flow_id not in offered:
            offered[flow_id] = await flow_name(page, flow_id)
    return sorted(offered.items(), key=lambda item: item[1].lower())


async def flow_name(page: PageReq, flow_id: str) -> str:
    """A flow's name, or a note that it is gone (a schedule or route outlived it)."""
    found: Flow | None
    try:
        found = await flow_service().get(page.company_id, flow_id)
    except Exception as error:
        if not isinstance(api_error_of(error), NotFound):
            raise
        found = None
    return found.definition.name if found is not None else f"(deleted flow {flow_id[:8]})"


# -- retention -------------------------------------------------------------------------------

SCOPES = ("audit", "plays", "plays.filtered")
TARGETS = ("company", "flow", "group")


def _retention() -> RetentionPolicies:
    service = app().deps.retention
    if service is None:
        raise NotFound("retention is not available on this instance")
    return service


def _policy_body(page: PageReq) -> dict[str, Any]:
    form = page.form
    body: dict[str, Any] = {
        "scope": form.get("scope", ""),
        "target": form.get("target", "company"),
        "enabled": form.get("enabled") == "on",
    }
    if body["target"] != "company":
        body["targetId"] = form.get("targetId", "").strip()
    for key in ("maxAgeDays", "minEntries", "enforcedMinimumDays"):
        value = number(form.get(key))
        if value is not None:
            body[key] = value
    return body


async def _retention_page(
    page: PageReq, *, values: dict[str, Any] | None = None, errors: dict[str, str] | None = None
) -> Response:
    service = _retention()
    policies = await service.list(page.company_id)
    defaults = [Policy.default(s, service.defaults.of(s)) for s in SCOPES]
    jobs = app().deps.jobs
    return render(
        page,
        "platform/retention.html",
        status=422 if errors else 200,
        policies=policies,
        defaults=defaults,
        jobs=list(jobs(page.company_id)) if jobs is not None else None,
        scopes=SCOPES,
        targets=TARGETS,
        values=values or {"scope": "plays", "target": "company", "enabled": True},
        errors=errors or {},
    )


@pages.get("/retention", action=Action.RETENTION_MANAGE)
async def retention(page: PageReq) -> Response:
    return await _retention_page(page)


@pages.post("/retention", action=Action.RETENTION_MANAGE)
async def create_policy(page: PageReq) -> Response:
    body = _policy_body(page)
    made, errors = await attempt(_retention().create(page.company_id, body))
    if made is None:
        return await _retention_page(page, values=body, errors=errors)
    assert made.id is not None
    audit_change(
        page.as_req(), "retention_policy_created", "retention_policy", made.id, after=made.summary()
    )
    return redirect(page, "/retention")


@pages.post("/retention/<policy_id>/delete", action=Action.RETENTION_MANAGE)
async def delete_policy(page: PageReq, policy_id: str) -> Response:
    gone = await act(_retention().delete(page.company_id, policy_id))
    audit_change(
        page.as_req(),
        "retention_policy_deleted",
        "retention_policy",
        policy_id,
        before=gone.summary(),
    )
    return redirect(page, "/retention")
