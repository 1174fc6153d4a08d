"""Retention policies: how long plays, filtered plays and audit entries are kept.

A policy is ``{scope, target, targetId, maxAgeDays, minEntries, enforcedMinimumDays,
enabled}`` in the tenant collection ``retention_policies``, one per (scope, target, target id).
For a play of a flow the most specific policy wins: the flow's, else its group's, else the
company's, else the configured default of the scope. Audit policies exist at company level only.

An entry may go once it is older than ``maxAgeDays``; never one younger than
``enforcedMinimumDays`` (a floor no policy may go below: the configured default's), and never
one of the newest ``minEntries`` (of the flow for plays, of the company for audit entries). A
disabled policy keeps everything it covers (it still wins over less specific ones).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import attrs

from flow8.config import RetentionDefault
from flow8.store import DuplicateKey, Store, new_id

Scope = Literal["audit", "plays", "plays.filtered"]
Target = Literal["company", "flow", "group"]
SCOPES: tuple[Scope, ...] = ("audit", "plays", "plays.filtered")
TARGETS: tuple[Target, ...] = ("company", "flow", "group")
COLLECTION = "retention_policies"
MAX_DAYS = 36_500
MAX_ENTRIES = 10_000_000


class RetentionError(Exception):
    """Base of the retention service's errors."""


class PolicyNotFound(RetentionError):
    pass


class PolicyConflict(RetentionError):
    """A policy for this scope and target exists already."""


class InvalidPolicy(RetentionError):
    """``fields``: [{field, message}] of every bad field."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{f['field']}: {f['message']}" for f in fields))
        self.fields = fields


@attrs.frozen
class RetentionDefaults:
    audit: RetentionDefault = attrs.field(factory=lambda: RetentionDefault(30, 10, 14))
    plays: RetentionDefault = attrs.field(factory=lambda: RetentionDefault(90, 100, 1))
    filtered_plays: RetentionDefault = attrs.field(factory=lambda: RetentionDefault(30, 10, 3))

    def of(self, scope: str) -> RetentionDefault:
        if scope == "audit":
            return self.audit
        return self.plays if scope == "plays" else self.filtered_plays


@attrs.frozen
class Policy:
    id: str | None  # None: the configured default
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
    def of(cls, doc: Mapping[str, Any]) -> Policy:
        return cls(
            id=doc["_id"],
            scope=doc["scope"],
            target=doc["target"],
            target_id=None if doc["target"] == "company" else doc["target_id"],
            max_age_days=doc["max_age_days"],
            min_entries=doc["min_entries"],
            enforced_minimum_days=doc["enforced_minimum_days"],
            enabled=doc["enabled"],
            created_at=doc.get("created_at"),
            updated_at=doc.get("updated_at"),
        )

    @classmethod
    def default(cls, scope: str, d: RetentionDefault) -> Policy:
        return cls(None, scope, "company", None, d.max_age_days, d.min_entries,
                   d.enforced_minimum_days, True)  # fmt: skip

    @property
    def keep_days(self) -> float:
        """Entries younger than this many days are kept."""
        return max(self.max_age_days, self.enforced_minimum_days)

    def summary(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "target": self.target,
            "targetId": self.target_id,
            "maxAgeDays": self.max_age_days,
            "minEntries": self.min_entries,
            "enforcedMinimumDays": self.enforced_minimum_days,
            "enabled": self.enabled,
        }


def resolve(
    policies: Iterable[Policy],
    scope: str,
    defaults: RetentionDefaults,
    *,
    flow_id: str | None = None,
    group: str | None = None,
) -> Policy:
    """The policy that applies to ``scope`` for a flow (with its group), or company-wide:
    the flow's, else the group's, else the company's, else the configured default."""
    found: dict[str, Policy] = {}
    for p in policies:
        if p.scope != scope:
            continue
        if p.target == "flow" and flow_id is not None and p.target_id == flow_id:
            found["flow"] = p
        elif p.target == "group" and group and p.target_id == group:
            found["group"] = p
        elif p.target == "company":
            found["company"] = p
    for level in ("flow", "group", "company"):
        if level in found:
            return found[level]
    return Policy.default(scope, defaults.of(scope))


_FIELDS = {
    "scope": "scope",
    "target": "target",
    "targetId": "target_id",
    "maxAgeDays": "max_age_days",
    "minEntries": "min_entries",
    "enforcedMinimumDays": "enforced_minimum_days",
    "enabled": "enabled",
}


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@attrs.define
class RetentionPolicies:
    """The policies of each company (admins manage them)."""

    store: Store
    defaults: RetentionDefaults = attrs.field(factory=RetentionDefaults)

    def _coll(self, company_id: str) -> Any:
        return self.store.tenant(company_id).collection(COLLECTION)

    async def list(self, company_id: str) -> list[Policy]:
        docs = await self._coll(company_id).find(
            {}, sort=[("scope", 1), ("target", 1), ("target_id", 1)]
        )
        return [Policy.of(d) for d in docs]

    async def get(self, company_id: str, policy_id: str) -> Policy:
        doc = await self._coll(company_id).find_one({"_id": policy_id})
        if doc is None:
            raise PolicyNotFound("retention policy not found")
        return Policy.of(doc)

    def check(self, company_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The stored fields of a complete policy ``body`` (API names), or InvalidPolicy
        listing every bad field."""
        bad: list[dict[str, str]] = []

        def fail(name: str, message: str) -> None:
            bad.append({"field": name, "message": message})

        for name in body:
            if name not in _FIELDS:
                fail(name, "unknown field")
        scope, target, target_id = body.get("scope"), body.get("target", "company"), None
        if scope not in SCOPES:
            fail("scope", f"must be one of {', '.join(SCOPES)}")
        if target not in TARGETS:
            fail("target", f"must be one of {', '.join(TARGETS)}")
        raw_target_id = body.get("targetId")
        if target == "company":
            if raw_target_id is not None:
                fail("targetId", "must be absent for target company (the current company)")
            target_id = company_id
        elif target in TARGETS:
            if not isinstance(raw_target_id, str) or not raw_target_id.strip():
                fail("targetId", f"required for target {target}: the {target}'s id or name")
            elif len(raw_target_id) > 200:
                fail("targetId", "at most 200 characters")
            else:
                target_id = raw_target_id
            if scope == "audit":
                fail("target", "audit policies apply to the whole company (target company)")
        floor = self.defaults.of(scope).enforced_minimum_days if scope in SCOPES else 0.0
        max_age: Any = body.get("maxAgeDays")
        minimum = body.get("minEntries", 0)
        enforced = body.get("enforcedMinimumDays", floor)
        enabled = body.get("enabled", True)
        if not _number(max_age) or not 0 <= float(max_age) <= MAX_DAYS:
            fail("maxAgeDays", f"required: a number of days from 0 to {MAX_DAYS}")
        if (
            not isinstance(minimum, int)
            or isinstance(minimum, bool)
            or not (0 <= minimum <= MAX_ENTRIES)
        ):
            fail("minEntries", f"a whole number from 0 to {MAX_ENTRIES}")
        if not _number(enforced) or not 0 <= enforced <= MAX_DAYS:
            fail("enforcedMinimumDays", f"a number of days from 0 to {MAX_DAYS}")
        elif enforced < floor:
            fail(
                "enforcedMinimumDays",
                f"may not be under {floor:g} days for {scope} (the configured floor)",
            )
        elif _number(max_age) and max_age < enforced:
            fail(
                "maxAgeDays",
                f"{max_age:g} is below enforcedMinimumDays ({enforced:g}): nothing younger "
                "than enforcedMinimumDays is ever deleted",
            )
        if not isinstance(enabled, bool):
            fail("enabled", "true or false")
        if bad:
            raise InvalidPolicy(bad)
        return {
            "scope": scope,
            "target": target,
            "target_id": target_id,
            "max_age_days": max_age,
            "min_entries": minimum,
            "enforced_minimum_days": enforced,
            "enabled": enabled,
        }

    async def create(self, company_id: str, body: Mapping[str, Any]) -> Policy:
        fields = self.check(company_id, body)
        now = datetime.now(UTC)
        doc = {"_id": new_id(), **fields, "created_at": now, "updated_at": now}
        try:
            await self._coll(company_id).insert_one(doc)
        except DuplicateKey:
            raise PolicyConflict(
                f"a {fields['scope']} policy for this {fields['target']} exists already"
            ) from None
        return Policy.of({**doc, "company_id": company_id})

    async def update(
        self, company_id: str, policy_id: str, body: Mapping[str, Any]
    ) -> tuple[Policy, Policy]:
        """Replace the fields ``body`` gives (the others keep their values); before, after."""
        before = await self.get(company_id, policy_id)
        merged = {**before.summary(), **body}
        if merged.get("target") == "company":
            merged.pop("targetId", None) if merged.get("targetId") is None else None
        fields = self.check(company_id, merged)
        try:
            res = await self._coll(company_id).update_one(
                {"_id": policy_id}, {"$set": {**fields, "updated_at": datetime.now(UTC)}}
            )
        except DuplicateKey:
            raise PolicyConflict(
                f"a {fields['scope']} policy for this {fields['target']} exists already"
            ) from None
        if res.matched_count == 0:
            raise PolicyNotFound("retention policy not found")
        return before, await self.get(company_id, policy_id)

    async def delete(self, company_id: str, policy_id: str) -> Policy:
        gone = await self.get(company_id, policy_id)
        if await self._coll(company_id).delete_one({"_id": policy_id}) == 0:
            raise PolicyNotFound("retention policy not found")
        return gone
