"""Usage of metered steps (AI calls) and the budgets that bound it.

``GET /api/usage?from&to&groupBy=flow|model|day`` answers what the company's AI steps spent
(calls, tokens, cost) per UTC day; anybody who may read the company may read it. Budgets
(``{period: day|month, maxCost}``, for the company and for each flow) are set by admins and
owners; changes are audited with their before and after."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

import attrs

from flow8.domain import Budget, BudgetPeriod, UsageTotals, field, rules
from flow8.services.identity import Action
from flow8.services.usage import (
    BudgetEntry,
    BudgetNotFound,
    InvalidUsageQuery,
    UsageService,
)

from ._api import Req, Routes, audit_change
from ._context import app
from .exceptions import NotFound, ValidationFailed

routes = Routes("usage", "usage")

_DAY = r"^\d{4}-\d{2}-\d{2}$"


@attrs.frozen
class UsageQuery:
    """`from` and `to`: UTC days (`2026-12-01`), both included; by default the current
    month up to today."""

    from_: str | None = field(default=None, pattern=_DAY)
    to: str | None = field(default=None, pattern=_DAY)
    group_by: Literal["flow", "model", "day"] = "day"


@attrs.frozen
class UsageTotalsOut:
    calls: int
    input_tokens: int
    output_tokens: int
    cost: float

    @classmethod
    def of(cls, t: UsageTotals) -> UsageTotalsOut:
        return cls(t.calls, t.input_tokens, t.output_tokens, t.cost)


@attrs.frozen
class UsageRowOut:
    key: str  # the flow's id, `provider/model`, or the day
    calls: int
    input_tokens: int
    output_tokens: int
    cost: float


@attrs.frozen
class UsageOut:
    from_: str
    to: str
    group_by: str
    rows: list[UsageRowOut]
    total: UsageTotalsOut


@attrs.frozen
class BudgetIn:
    """At most `maxCost` (the company's currency, as the components' prices are) per
    `period`."""

    period: Literal["day", "month"]
    max_cost: float = attrs.field(metadata=rules(minimum=0, maximum=1e12))


@attrs.frozen
class BudgetOut:
    flow_id: str | None  # null: the company's
    period: str
    max_cost: float
    period_start: datetime
    spent: float  # in the current period
    updated_at: datetime | None = None

    @classmethod
    def of(cls, e: BudgetEntry) -> BudgetOut:
        return cls(
            e.flow_id,
            e.budget.period.value,
            e.budget.max_cost,
            e.period_start,
            e.spent,
            e.updated_at,
        )


@attrs.frozen
class BudgetList:
    items: list[BudgetOut]


def _service() -> UsageService:
    service = app().deps.usage
    if service is None:
        raise NotFound("usage is not available on this instance")
    return service


def _day(value: str | None, name: str, default: date) -> date:
    if value is None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            [{"field": name, "message": "must be a day like 2026-12-01"}]
        ) from None


@routes.route(
    "GET",
    "/api/usage",
    action=Action.READ,
    summary="What the company's AI steps spent (calls, tokens, cost) from `from` to `to` "
    "(UTC days), grouped by flow, model or day",
    query=UsageQuery,
    response=UsageOut,
    errors=(422,),
)
async def usage_report(req: Req) -> UsageOut:
    q: UsageQuery = req.query
    today = datetime.now(UTC).date()
    start = _day(q.from_, "from", today.replace(day=1))
    end = _day(q.to, "to", today)
    try:
        report = await _service().report(req.company_id, start, end, q.group_by)
    except InvalidUsageQuery as e:
        raise ValidationFailed([{"field": "to", "message": str(e)}]) from None
    rows = [
        UsageRowOut(
            r.key, r.totals.calls, r.totals.input_tokens, r.totals.output_tokens, r.totals.cost
        )
        for r in report.rows
    ]
    return UsageOut(
        start.isoformat(), end.isoformat(), q.group_by, rows, UsageTotalsOut.of(report.total)
    )


@routes.route(
    "GET",
    "/api/budgets",
    action=Action.READ,
    summary="The company's budget and its flows' budgets, with what each period spent",
    response=BudgetList,
)
async def list_budgets(req: Req) -> BudgetList:
    return BudgetList([BudgetOut.of(e) for e in await _service().budgets(req.company_id)])


async def _set(req: Req, flow_id: str | None) -> BudgetOut:
    body: BudgetIn = req.body
    if flow_id is not None:
        deps = app().deps
        if deps.flows is None:
            raise NotFound("flows are not available on this instance")
        await deps.flows.get(req.company_id, flow_id)  # 404 for another company's flow
    before, after = await _service().set_budget(
        req.company_id, flow_id, Budget(BudgetPeriod(body.period), body.max_cost)
    )
    out = BudgetOut.of(after)
    audit_change(
        req,
        "budget_updated" if before else "budget_created",
        "budget",
        flow_id or "company",
        before={"period": before.budget.period.value, "maxCost": before.budget.max_cost}
        if before
        else None,
        after={"period": out.period, "maxCost": out.max_cost},
    )
    return out


async def _delete(req: Req, flow_id: str | None) -> None:
    try:
        gone = await _service().delete_budget(req.company_id, flow_id)
    except BudgetNotFound:
        raise NotFound("budget not found", code="BUDGET_NOT_FOUND") from None
    audit_change(
        req,
        "budget_deleted",
        "budget",
        flow_id or "company",
        before={"period": gone.budget.period.value, "maxCost": gone.budget.max_cost},
    )


@routes.route(
    "PUT",
    "/api/budgets/company",
    action=Action.BUDGET_MANAGE,
    summary="Set the company's budget {period: day|month, maxCost}",
    body=BudgetIn,
    response=BudgetOut,
    errors=(422,),
)
async def set_company_budget(req: Req) -> BudgetOut:
    return await _set(req, None)


@routes.route(
    "DELETE",
    "/api/budgets/company",
    action=Action.BUDGET_MANAGE,
    summary="Remove the company's budget",
    status=204,
    errors=(404,),
)
async def delete_company_budget(req: Req) -> None:
    await _delete(req, None)


@routes.route(
    "PUT",
    "/api/budgets/flows/{flowId}",
    action=Action.BUDGET_MANAGE,
    summary="Set a flow's budget {period: day|month, maxCost}",
    body=BudgetIn,
    response=BudgetOut,
    errors=(404, 422),
)
async def set_flow_budget(req: Req, flowId: str) -> BudgetOut:
    return await _set(req, flowId)


@routes.route(
    "DELETE",
    "/api/budgets/flows/{flowId}",
    action=Action.BUDGET_MANAGE,
    summary="Remove a flow's budget",
    status=204,
    errors=(404,),
)
async def delete_flow_budget(req: Req, flowId: str) -> None:
    await _delete(req, flowId)
