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
from flow8.services.components import ComponentService
from flow8.services.credentials import CredentialService
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
    # What a flow may name in a company (components, credentials), checked when it is
    # saved; None (a process that runs no plays) checks the structure only.
    components: ComponentService | None = None
    credentials: CredentialService | None = None

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
        definition = self.parse(data)
        await self._check_in_company(company_id, definition)
        return await self.repository.create(company_id, definition)

    async def update(self, company_id: str, flow_id: str, data: Any) -> Flow:
        """Store a new version; plays already started keep the version they pinned."""
        definition = self.parse(data)
        await self._check_in_company(company_id, definition)
        return await self.repository.update(company_id, flow_id, definition)

    async def _check_in_company(self, company_id: str, definition: FlowDefinition) -> None:
        """What only the company can answer: every component a step names is one of its
        own (by id or name, of that kind), every kind a step's module needs has a
        component to resolve to, every literal ``credentialId`` is one of its credentials.
        Another company's component or credential is unknown here, as it is everywhere."""
        problems: list[Problem] = []
        registry = self.repository.registry
        for i, flowlet in enumerate(definition.flowlets):
            at = f"flowlets[{i}]"
            module = registry.find(flowlet.app_id)
            if self.components is not None:
                chosen = flowlet.component_config_ids
                for kind, choice in chosen.items():
                    if not await self.components.known(company_id, kind, choice):
                        problems.append(
                            Problem(
                                f"{at}.componentConfigIds.{kind}",
                                f"step {flowlet.ref!r}: no {kind} component {choice!r} in "
                                "this company",
                            )
                        )
                for kind in module.components if module else ():
                    if kind not in chosen and not await self.components.has_default(
                        company_id, kind
                    ):
                        problems.append(
                            Problem(
                                f"{at}.componentConfigIds",
                                f"step {flowlet.ref!r} ({flowlet.app_id}) needs a {kind} "
                                f"component: this company has no default {kind} component; "
                                "create one or name one here",
                            )
                        )
            credential_id = flowlet.args.get("credentialId")
            if (
                self.credentials is not None
                and isinstance(credential_id, str)
                and "{{" not in credential_id
                and not await self.credentials.exists(company_id, credential_id)
            ):
                problems.append(
                    Problem(
                        f"{at}.args.credentialId",
                        f"step {flowlet.ref!r}: no credential {credential_id!r} in this company",
                    )
                )
        if problems:
            raise FlowValidationError(problems)

    async def get(self, company_id: str, flow_id: str, version: int | None = None) -> Flow:
        return await self.repository.get(company_id, flow_id, version)

    async def list(
        self,
        company_id: str,
        *,
        page: int = 0,
        size: int = 25,
        name_prefix: str | None = None,
        group: str | None = None,
        tag: str | None = None,
        enabled: bool | None = None,
    ) -> tuple[builtins.list[Flow], int]:
        """One page (newest change first) and the total count, of the flows whose name
        starts with ``name_prefix``, which are in ``group``, carry ``tag`` and are enabled
        or not as ``enabled`` says (each when given)."""
        size = max(1, min(size, 100))
        return await self.repository.list_flows(
            company_id,
            skip=page * size,
            limit=size,
            name_prefix=name_prefix,
            group=group,
            tag=tag,
            enabled=enabled,
        )

    async def names(
        self, company_id: str, *, limit: int = 100
    ) -> tuple[builtins.list[tuple[str, str]], bool]:
        """The most recently changed flows as (id, name), at most ``limit``, and whether
        there are more: what a flow picker shows."""
        return await self.repository.names(company_id, limit=max(1, min(limit, 100)))

    async def names_of(self, company_id: str, flow_ids: builtins.list[str]) -> dict[str, str]:
        """The names of these flows (deleted ones included), by id."""
        return await self.repository.names_of(company_id, flow_ids)

    async def versions(self, company_id: str, flow_id: str) -> builtins.list[Flow]:
        """Every version, newest first."""
        return await self.repository.versions(company_id, flow_id)

    async def version_times(
        self, company_id: str, flow_id: str, *, page: int = 0, size: int = 25
    ) -> tuple[builtins.list[tuple[int, float]], int]:
        """One page of the versions, newest first, as (version, saved at), and the total."""
        size = max(1, min(size, 100))
        return await self.repository.version_times(
            company_id, flow_id, skip=page * size, limit=size
        )

    async def delete(self, company_id: str, flow_id: str) -> None:
        await self.repository.delete(company_id, flow_id)
