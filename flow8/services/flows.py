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
from flow8.engine import Engine, FlowNotFound, validate_definition

__all__ = ["Flow", "FlowNotFound", "FlowService", "FlowValidationError"]


@attrs.define
class FlowService:
    """Every method is scoped to ``company_id``; a flow of another company is not found.

    Errors: :class:`FlowValidationError` (``.problems``: every problem with its camelCase
    path), :class:`FlowNotFound`.
    """

    engine: Engine

    def parse(self, data: Any) -> FlowDefinition:
        """Parse and fully validate a camelCase flow definition (structure, modules, args
        schemas, expressions, reference order, iterator/aggregator pairing)."""
        definition = parse_flow_definition(data)
        problems = validate_definition(definition, self.engine.registry)
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
        return await self.engine.flows.create(company_id, self.parse(data))

    async def update(self, company_id: str, flow_id: str, data: Any) -> Flow:
        """Store a new version; plays already started keep the version they pinned."""
        return await self.engine.flows.update(company_id, flow_id, self.parse(data))

    async def get(self, company_id: str, flow_id: str, version: int | None = None) -> Flow:
        return await self.engine.flows.get(company_id, flow_id, version)

    async def list(
        self, company_id: str, *, page: int = 0, size: int = 25
    ) -> tuple[builtins.list[Flow], int]:
        """One page (newest change first) and the total count."""
        size = max(1, min(size, 100))
        return await self.engine.flows.list_flows(company_id, skip=page * size, limit=size)

    async def versions(self, company_id: str, flow_id: str) -> builtins.list[Flow]:
        """Every version, newest first."""
        return await self.engine.flows.versions(company_id, flow_id)

    async def delete(self, company_id: str, flow_id: str) -> None:
        await self.engine.flows.delete(company_id, flow_id)
