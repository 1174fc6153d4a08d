"""Usage of metered steps (AI calls): the report and the budgets (``UsageService``)."""

from ._service import (
    BudgetEntry,
    BudgetNotFound,
    GroupBy,
    InvalidUsageQuery,
    UsageError,
    UsageReport,
    UsageRow,
    UsageService,
)

__all__ = [
    "BudgetEntry",
    "BudgetNotFound",
    "GroupBy",
    "InvalidUsageQuery",
    "UsageError",
    "UsageReport",
    "UsageRow",
    "UsageService",
]
