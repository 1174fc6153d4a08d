"""Flows: create, version, read, list, validate and delete a company's flows."""

from __future__ import annotations

import builtins
from typing import Any

import attrs

from flow8.domain import (
    Flow,
    FlowDefinition,
    FlowValidationError,
    Problem,
    parse_flow_definition,
)
from flow8.engine import validate_definition
from flow8.modules import ModuleRegistry, default_registry
from flow8.store import Store

from ._repository import FlowRepository


@attrs.define
class FlowService:
    """Every method is scoped to ``company_id``; a flow of another company is not found.

    Errors: :class:`FlowValidationError` (``.problems``: every problem with its camelCase
    path), :class:`FlowNotFound`.

    The flows are ``repository``'s, the one the engine runs them from (the composition root
    hands both the same one).
    """

    repository: FlowRepository

    @classmethod
    def over(cls, store: Store, registry: ModuleRegistry | None = None) -> FlowService:
        """The flows of ``store``, validated against ``registry`` (the built-in modules by
        default), for a process that runs no plays (the CLI's ``flows`` commands)."""
        return cls(FlowRepository(store, registry or default_registry()))

    def parse(self, data: Any) -> FlowDefinition:
        """Parse and fully validate a camelCase flow definition (structure, modules, args
        schemas, expressions, reference order, iterator/aggregator pairing)."""
        definition = parse_flow_definition(data)
        problems = validate_definition(definition, self.repository.registry)
        if problems:
            raise FlowValidationError(problems)
        return definition

    def validate(self, data: Any) -> list[Problem]:
        """Every problem of ``data`` (empty when valid), without storing anything."""
        try:
            self.parse(data)
        except FlowValidationError as e:
            return list(e.problems)
        return []

    async def create(self, company_id: str, data: Any) -> Flow:
        return await self.repository.create(company_id, self.parse(data))

    async def update(self, company_id: str, flow_id: str, data: Any) -> Flow:
        """Store a new version; plays already started keep the version they pinned."""
        return await self.repository.update(company_id, flow_id, self.parse(data))

    async def get(self, company_id: str, flow_id: str, version: int | None = None) -> Flow:
        return await self.repository.get(company_id, flow_id, version)

    async def list(
        self, company_id: str, *, page: int = 0, size: int = 25
    ) -> tuple[builtins.list[Flow], int]:
        """One page (newest change first) and the total count."""
        size = max(1, min(size, 100))
        return await self.repository.list_flows(company_id, skip=page * size, limit=size)

    async def versions(self, company_id: str, flow_id: str) -> builtins.list[Flow]:
        """Every version, newest first."""
        return await self.repository.versions(company_id, flow_id)

    async def delete(self, company_id: str, flow_id: str) -> None:
        await self.repository.delete(company_id, flow_id)
