"""Retention policies of the current company (admins and owners) and the periodic jobs'
statistics (``GET /api/jobs``). Policy changes are audited with their before and after."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal, TypeVar

import attrs

from flow8.domain import JsonData
from flow8.services.identity import Action
from flow8.services.retention import (
    InvalidPolicy,
    Policy,
    PolicyConflict,
    PolicyNotFound,
    RetentionPolicies,
)

from ._api import Req, Routes, audit_change
from ._context import app
from .exceptions import Conflict, NotFound, ValidationFailed

routes = Routes("retention", "retention")
T = TypeVar("T")


Scope = Literal["audit", "plays", "plays.filtered"]
Target = Literal["company", "flow", "group"]


@attrs.frozen
class PolicyCreate:
    """A retention policy. `targetId`: the flow's id or the group's name (none for the
    company); `enforcedMinimumDays` defaults to the configured floor, under which no policy
    may go; `maxAgeDays` may not be under it."""

    scope: Scope
    max_age_days: float
    target: Target = "company"
    target_id: str | None = None
    min_entries: int = 0
    enforced_minimum_days: float | None = None
    enabled: bool = True


@attrs.frozen
class PolicyUpdate:
    """The fields to change; the others keep their values."""

    scope: Scope | None = None
    max_age_days: float | None = None
    target: Target | None = None
    target_id: str | None = None
    min_entries: int | None = None
    enforced_minimum_days: float | None = None
    enabled: bool | None = None


@attrs.frozen
class PolicyOut:
    id: str | None
    scope: str
    target: str
    target_id: str | None
    max_age_days: float
    min_entries: int
    enforced_minimum_days: float
    enabled: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, p: Policy) -> PolicyOut:
        return cls(**attrs.asdict(p, recurse=False))


@attrs.frozen
class PolicyList:
    items: list[PolicyOut]
    # The configured defaults (scope -> policy), applied where no policy of the company does.
    defaults: list[PolicyOut]


@attrs.frozen
class JobList:
    items: list[JsonData]


def _service() -> RetentionPolicies:
    service = app().deps.retention
    if service is None:
        raise NotFound("retention is not available on this instance")
    return service


async def _mapped(call: Awaitable[T]) -> T:
    try:
        return await call
    except InvalidPolicy as e:
        raise ValidationFailed(e.fields, message=f"invalid retention policy: {e}") from None
    except PolicyNotFound:
        raise NotFound("retention policy not found", code="RETENTION_POLICY_NOT_FOUND") from None
    except PolicyConflict as e:
        raise Conflict(str(e), code="RETENTION_POLICY_EXISTS") from None


def _body(req: Req) -> dict[str, Any]:
    # The fields as sent (checked against the body's type already): which were left out
    # matters (an update keeps them; a policy's floor fills in enforcedMinimumDays).
    raw: dict[str, Any] = req.raw_body
    return {k: v for k, v in raw.items() if v is not None or k == "targetId"}


@routes.route(
    "GET",
    "/api/retention-policies",
    action=Action.RETENTION_MANAGE,
    summary="The company's retention policies, and the defaults that apply where none does",
    response=PolicyList,
)
async def list_policies(req: Req) -> PolicyList:
    service = _service()
    found = await service.list(req.company_id)
    defaults = [
        PolicyOut.of(Policy.default(s, service.defaults.of(s)))
        for s in ("audit", "plays", "plays.filtered")
    ]
    return PolicyList([PolicyOut.of(p) for p in found], defaults)


@routes.route(
    "POST",
    "/api/retention-policies",
    action=Action.RETENTION_MANAGE,
    summary="Add a retention policy {scope, target, targetId?, maxAgeDays, minEntries, "
    "enforcedMinimumDays, enabled}",
    body=PolicyCreate,
    response=PolicyOut,
    status=201,
    errors=(409, 422),
)
async def create_policy(req: Req) -> PolicyOut:
    made = await _mapped(_service().create(req.company_id, _body(req)))
    assert made.id is not None
    audit_change(req, "retention_policy_created", "retention_policy", made.id, after=made.summary())
    return PolicyOut.of(made)


@routes.route(
    "PUT",
    "/api/retention-policies/{policyId}",
    action=Action.RETENTION_MANAGE,
    summary="Change a retention policy (fields left out keep their values)",
    body=PolicyUpdate,
    response=PolicyOut,
    errors=(404, 409, 422),
)
async def update_policy(req: Req, policyId: str) -> PolicyOut:
    before, after = await _mapped(_service().update(req.company_id, policyId, _body(req)))
    audit_change(
        req,
        "retention_policy_updated",
        "retention_policy",
        policyId,
        before=before.summary(),
        after=after.summary(),
    )
    return PolicyOut.of(after)


@routes.route(
    "DELETE",
    "/api/retention-policies/{policyId}",
    action=Action.RETENTION_MANAGE,
    summary="Remove a retention policy (a less specific one, or the default, applies again)",
    status=204,
    errors=(404,),
)
async def delete_policy(req: Req, policyId: str) -> None:
    gone = await _mapped(_service().delete(req.company_id, policyId))
    audit_change(
        req, "retention_policy_deleted", "retention_policy", policyId, before=gone.summary()
    )


@routes.route(
    "GET",
    "/api/jobs",
    action=Action.RETENTION_MANAGE,
    summary="The periodic jobs of this instance: last run, duration, next run, and what they "
    "removed of the current company",
    response=JobList,
)
async def list_jobs(req: Req) -> JobList:
    stats: Callable[[str], Any] | None = app().deps.jobs
    if stats is None:
        raise NotFound("jobs are not available on this instance")
    return JobList([JsonData(dict(s)) for s in stats(req.company_id)])
