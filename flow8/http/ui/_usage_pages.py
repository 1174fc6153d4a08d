"""The usage page: what the company's AI steps spent (calls, tokens, cost) per flow, model
or day over a range of UTC days, and the budgets that bound it (admins and owners set and
remove them; changes are audited as the API's are)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from quart import Response

from flow8.domain import Budget, BudgetPeriod
from flow8.services.flows import FlowNotFound
from flow8.services.identity import Action
from flow8.services.usage import BudgetNotFound, GroupBy, InvalidUsageQuery, UsageService

from .._api import audit_change
from .._context import app, flow_service
from ..exceptions import NotFound
from ._pages import PageReq, Pages, redirect, render
from ._platform_pages import FORM_PROBLEM, flow_choices, flow_name, number

pages = Pages("usage")
GROUPS: tuple[GroupBy, ...] = ("flow", "model", "day")


def _service() -> UsageService:
    service = app().deps.usage
    if service is None:
        raise NotFound("usage is not available on this instance")
    return service


def _day(text: str | None, default: date, name: str, problems: dict[str, str]) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems[name] = "must be a day like 2026-12-01"
        return default


async def _usage_page(
    page: PageReq, *, values: dict[str, Any] | None = None, errors: dict[str, str] | None = None
) -> Response:
    service = _service()
    problems: dict[str, str] = dict(errors or {})
    today = datetime.now(UTC).date()
    start = _day(page.args.get("from"), today.replace(day=1), "from", problems)
    end = _day(page.args.get("to"), today, "to", problems)
    wanted = page.args.get("groupBy", "flow")
    group_by: GroupBy = wanted if wanted in GROUPS else "flow"
    try:
        report = await service.report(page.company_id, start, end, group_by)
    except InvalidUsageQuery as e:
        problems["to"] = str(e)
        report = await service.report(page.company_id, end, end, group_by)
    names: dict[str, str] = {}
    if group_by == "flow":
        names = {r.key: await flow_name(page, r.key) for r in report.rows}
    budgets = await service.budgets(page.company_id)
    budget_names = {b.flow_id: await flow_name(page, b.flow_id) for b in budgets if b.flow_id}
    return render(
        page,
        "platform/usage.html",
        status=422 if errors else 200,
        report=report,
        group_by=group_by,
        groups=GROUPS,
        names=names,
        budgets=budgets,
        budget_names=budget_names,
        flows=await flow_choices(page) if page.may(Action.BUDGET_MANAGE) else [],
        values=values or {"period": "month"},
        errors=problems,
    )


@pages.get("/usage", action=Action.READ)
async def usage(page: PageReq) -> Response:
    return await _usage_page(page)


@pages.post("/usage/budgets", action=Action.BUDGET_MANAGE)
async def set_budget(page: PageReq) -> Response:
    form = page.form
    values = {k: form.get(k, "") for k in ("flowId", "period", "maxCost")}
    problems: dict[str, str] = {}
    if values["period"] not in ("day", "month"):
        problems["period"] = "must be day or month"
    cost = number(values["maxCost"])
    if not isinstance(cost, int | float) or cost < 0:
        problems["maxCost"] = "must be a number, 0 or more"
    flow_id = values["flowId"] or None
    if flow_id is not None:
        try:
            await flow_service().get(page.company_id, flow_id)
        except FlowNotFound:  # a store that is down is an error page, not a form problem
            problems["flowId"] = "no such flow"
    if problems:
        return await _usage_page(page, values=values, errors=problems)
    assert isinstance(cost, int | float)
    try:
        before, after = await _service().set_budget(
            page.company_id, flow_id, Budget(BudgetPeriod(values["period"]), float(cost))
        )
    except InvalidUsageQuery as e:
        return await _usage_page(page, values=values, errors={FORM_PROBLEM: str(e)})
    audit_change(
        page.as_req(),
        "budget_updated" if before else "budget_created",
        "budget",
        flow_id or "company",
        before={"period": before.budget.period.value, "maxCost": before.budget.max_cost}
        if before
        else None,
        after={"period": after.budget.period.value, "maxCost": after.budget.max_cost},
    )
    return redirect(page, "/usage")


@pages.post("/usage/budgets/delete", action=Action.BUDGET_MANAGE)
async def delete_budget(page: PageReq) -> Response:
    flow_id = page.form.get("flowId") or None
    try:
        gone = await _service().delete_budget(page.company_id, flow_id)
    except BudgetNotFound:
        raise NotFound("budget not found", code="BUDGET_NOT_FOUND") from None
    audit_change(
        page.as_req(),
        "budget_deleted",
        "budget",
        flow_id or "company",
        before={"period": gone.budget.period.value, "maxCost": gone.budget.max_cost},
    )
    return redirect(page, "/usage")
