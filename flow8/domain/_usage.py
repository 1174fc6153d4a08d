"""What metered steps (AI calls) spend: tokens and their cost, recorded on each layer,
summed on its play, counted per company, flow, provider and model per UTC day, and held
against the company's and the flow's budgets."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, datetime

import attrs


@attrs.frozen
class AiUsage:
    """One provider call's usage. ``cost`` is in the company's currency, from the
    component's price table (its own entries first, then the built-in public prices);
    0 when neither knows the model."""

    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cost: float


@attrs.frozen
class UsageTotals:
    """A sum of calls' usage (a play's, a report row's)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    def plus(self, usage: Iterable[AiUsage]) -> UsageTotals:
        calls, tin, tout, cost = self.calls, self.input_tokens, self.output_tokens, self.cost
        for u in usage:
            calls += 1
            tin += u.input_tokens
            tout += u.output_tokens
            cost += u.cost
        return UsageTotals(calls, tin, tout, round(cost, 9))


class BudgetPeriod(enum.Enum):
    DAY = "day"
    MONTH = "month"

    def start(self, now: datetime) -> datetime:
        """The first instant (UTC) of the period ``now`` is in."""
        now = now.astimezone(UTC)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return day if self is BudgetPeriod.DAY else day.replace(day=1)


@attrs.frozen
class Budget:
    """At most ``max_cost`` (the company's currency) of metered calls per ``period``, for a
    company or one of its flows."""

    period: BudgetPeriod
    max_cost: float


def usage_day(at: datetime) -> str:
    """The UTC day usage is counted under: ``2026-12-06``."""
    return at.astimezone(UTC).strftime("%Y-%m-%d")
