"""Usage of metered steps (AI calls) and the budgets that bound it.

The engine counts every call in ``usage_daily`` as the step's layer is written (one
document per UTC day, flow, provider and model, added to with ``$inc``: see
``flow8.engine.Journal.count_usage``). This service reads those counts for the usage report
and for the budgets, and keeps the budgets (``budgets``: ``_id`` ``company`` or
``flow:<flow id>``). A budget is checked before each metered step starts: once what its
period spent reaches ``maxCost``, the step fails with BUDGET_EXCEEDED without calling the
provider, and the refusal is audited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, Literal

import attrs

from flow8.domain import Budget, BudgetPeriod, UsageTotals
from flow8.services.audit import AuditEntry
from flow8.store import Collection, Store

GroupBy = Literal["flow", "model", "day"]
COUNTS = "usage_daily"
BUDGETS = "budgets"
MAX_RANGE_DAYS = 366 * 5


class UsageError(Exception):
    """Base of the usage service's errors."""


class InvalidUsageQuery(UsageError):
    pass


class BudgetNotFound(UsageError):
    pass


@attrs.frozen
class UsageRow:
    """The usage of one group (a flow id, ``provider/model`` or a day)."""

    key: str
    totals: UsageTotals


@attrs.frozen
class UsageReport:
    start: date
    end: date
    group_by: GroupBy
    rows: tuple[UsageRow, ...]
    total: UsageTotals


@attrs.frozen
class BudgetEntry:
    """A budget and what its current period has spent so far."""

    flow_id: str | None  # None: the company's
    budget: Budget
    period_start: datetime
    spent: float
    updated_at: datetime | None = None


def _totals(doc: Mapping[str, Any]) -> UsageTotals:
    return UsageTotals(
        doc.get("calls", 0),
        doc.get("input_tokens", 0),
        doc.get("output_tokens", 0),
        round(doc.get("cost", 0.0), 9),
    )


def _sum(totals: Iterable[UsageTotals]) -> UsageTotals:
    calls = tin = tout = 0
    cost = 0.0
    for t in totals:
        calls += t.calls
        tin += t.input_tokens
        tout += t.output_tokens
        cost += t.cost
    return UsageTotals(calls, tin, tout, round(cost, 9))


def _budget_id(flow_id: str | None) -> str:
    return "company" if flow_id is None else f"flow:{flow_id}"


@attrs.define
class UsageService:
    """The usage report and the budgets of each company; also the engine's
    ``BudgetSource``. ``audit`` receives the refusals (the audit log's ``record``)."""

    store: Store
    audit: Callable[[AuditEntry], None] | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def _counts(self, company_id: str) -> Collection:
        return self.store.tenant(company_id).collection(COUNTS)

    def _budgets(self, company_id: str) -> Collection:
        return self.store.tenant(company_id).collection(BUDGETS)

    # -- the report --------------------------------------------------------------------

    async def report(
        self, company_id: str, start: date, end: date, group_by: GroupBy
    ) -> UsageReport:
        """Usage from ``start`` to ``end`` (UTC days, both included), grouped."""
        if end < start:
            raise InvalidUsageQuery("to: must not be before from")
        if (end - start).days > MAX_RANGE_DAYS:
            raise InvalidUsageQuery(f"the range may span at most {MAX_RANGE_DAYS} days")
        docs = await self._counts(company_id).find(
            {"day": {"$gte": start.isoformat(), "$lte": end.isoformat()}}
        )
        groups: dict[str, list[UsageTotals]] = {}
        for doc in docs:
            if group_by == "flow":
                key = doc["flow_id"]
            elif group_by == "model":
                key = f"{doc['provider']}/{doc['model']}"
            else:
                key = doc["day"]
            groups.setdefault(key, []).append(_totals(doc))
        rows = tuple(UsageRow(k, _sum(v)) for k, v in sorted(groups.items()))
        return UsageReport(start, end, group_by, rows, _sum(r.totals for r in rows))

    async def spent(self, company_id: str, flow_id: str | None, since: datetime) -> float:
        """What the company (or one of its flows) spent from the day ``since`` is in."""
        flt: dict[str, Any] = {"day": {"$gte": since.astimezone(UTC).strftime("%Y-%m-%d")}}
        if flow_id is not None:
            flt["flow_id"] = flow_id
        docs = await self._counts(company_id).find(flt, projection={"cost": 1})
        total: float = sum(d.get("cost", 0.0) for d in docs)
        return round(total, 9)

    # -- budgets -----------------------------------------------------------------------

    async def budgets(self, company_id: str) -> list[BudgetEntry]:
        """The company's budget first (if any), then its flows' budgets."""
        docs = await self._budgets(company_id).find({}, sort=[("_id", 1)])
        return [await self._entry(company_id, d) for d in docs]

    async def _entry(self, company_id: str, doc: Mapping[str, Any]) -> BudgetEntry:
        flow_id = doc.get("flow_id")
        budget = Budget(BudgetPeriod(doc["period"]), doc["max_cost"])
        start = budget.period.start(self.clock())
        spent = await self.spent(company_id, flow_id, start)
        return BudgetEntry(flow_id, budget, start, spent, doc.get("updated_at"))

    async def set_budget(
        self, company_id: str, flow_id: str | None, budget: Budget
    ) -> tuple[BudgetEntry | None, BudgetEntry]:
        """Set (create or replace) a budget; (before, after)."""
        if not budget.max_cost >= 0:
            raise InvalidUsageQuery("maxCost: must be 0 or more")
        coll = self._budgets(company_id)
        before_doc = await coll.find_one({"_id": _budget_id(flow_id)})
        before = await self._entry(company_id, before_doc) if before_doc else None
        doc = {
            "flow_id": flow_id,
            "period": budget.period.value,
            "max_cost": float(budget.max_cost),
            "updated_at": self.clock(),
        }
        await coll.update_one({"_id": _budget_id(flow_id)}, {"$set": doc}, upsert=True)
        return before, await self._entry(company_id, {"_id": _budget_id(flow_id), **doc})

    async def delete_budget(self, company_id: str, flow_id: str | None) -> BudgetEntry:
        coll = self._budgets(company_id)
        doc = await coll.find_one({"_id": _budget_id(flow_id)})
        if doc is None or not await coll.delete_one({"_id": _budget_id(flow_id)}):
            raise BudgetNotFound("no such budget")
        return await self._entry(company_id, doc)

    # -- the engine's BudgetSource -----------------------------------------------------

    async def refusal(self, company_id: str, flow_id: str) -> str | None:
        coll = self._budgets(company_id)
        for which in (None, flow_id):
            doc = await coll.find_one({"_id": _budget_id(which)})
            if doc is None:
                continue
            entry = await self._entry(company_id, doc)
            if entry.spent >= entry.budget.max_cost:
                owner = "the company's" if which is None else "the flow's"
                period = "daily" if entry.budget.period is BudgetPeriod.DAY else "monthly"
                return (
                    f"{owner} {period} budget of {entry.budget.max_cost:g} is spent "
                    f"({entry.spent:g} since {entry.period_start:%Y-%m-%d})"
                )
        return None

    async def refused(self, company_id: str, flow_id: str, play_id: str, ref: str) -> None:
        if self.audit is not None:
            self.audit(
                AuditEntry(
                    "budget_exceeded",
                    company_id=company_id,
                    target_type="play",
                    target_id=play_id,
                    details={"flowId": flow_id, "ref": ref},
                )
            )
