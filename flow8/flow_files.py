"""``flow8 flows list|export|import``: a company's flows as files, for review and version control.

An export is the flow JSON the body ``POST /api/flows`` takes, so an
exported file imports unchanged, on this instance or another. An import validates the whole
file first (every problem listed, nothing stored), then creates a flow or, given a flow id,
stores the file as that flow's next version; plays already started keep the version they
pinned. Imports are audited like the REST API's changes (before and after state), with the
CLI as the actor (see ``flow8.services.audit.cli_entry``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from flow8.domain import (
    FlowValidationError,
    Problem,
    flow_definition_to_api,
    parse_flow_definition,
)
from flow8.engine import FlowRepository, PlanCache
from flow8.modules import default_registry
from flow8.services.audit import cli_entry, write_now
from flow8.services.identity import IdentityService
from flow8.store import Store, invalid_text_in

_PAGE = 100


@attrs.frozen
class FlowFiles:
    """The flows of one company, read and stored through the flow repository the engine
    uses, with the same validation as the REST API (every problem, before anything is
    stored); no engine is built, since nothing here runs a play."""

    store: Store
    company_id: str
    _flows: FlowRepository = attrs.field(
        init=False,
        default=attrs.Factory(
            lambda s: FlowRepository(s.store, PlanCache(default_registry())), takes_self=True
        ),
    )

    @classmethod
    async def of(cls, store: Store, company: str | None) -> FlowFiles:
        """The flows of the company named by id or slug (or of the only company); an unknown
        company is the identity service's not-found error, never a new, unreachable tenant."""
        found = await IdentityService(store).resolve_company(company)
        return cls(store, found.id)

    async def list(self) -> list[dict[str, Any]]:
        """``{id, name, version, updatedAt}`` of every flow, most recently changed first;
        ``updatedAt`` is a UTC datetime (the CLI prints it as the API does, ISO-8601)."""
        rows: list[dict[str, Any]] = []
        while True:
            flows, total = await self._flows.list_flows(
                self.company_id, skip=len(rows), limit=_PAGE
            )
            rows += [
                {"id": f.id, "name": f.definition.name, "version": f.version,
                 "updatedAt": datetime.fromtimestamp(f.updated_at, UTC)}
                for f in flows
            ]  # fmt: skip
            if not flows or len(rows) >= total:
                return rows

    async def export(self, flow_id: str, version: int | None = None) -> dict[str, Any]:
        """The flow's definition (latest version unless ``version``), ready to import."""
        flow = await self._flows.get(self.company_id, flow_id, version)
        return flow_definition_to_api(flow.definition)

    async def import_(self, data: Any, flow_id: str | None = None) -> dict[str, Any]:
        """Store ``data`` as a new flow, or as the next version of ``flow_id``; answers
        ``{id, name, version}``."""
        # Parsing lists every structural problem; the repository then checks the rest
        # (modules, args, expressions, references) before it stores anything.
        definition = parse_flow_definition(data)
        flows = self._flows
        if flow_id is None:
            flow = await flows.create(self.company_id, definition)
            await self._audit("flow_created", flow.id, after=data, version=flow.version)
        else:
            before = await flows.get(self.company_id, flow_id)
            flow = await flows.update(self.company_id, flow_id, definition)
            await self._audit(
                "flow_updated",
                flow.id,
                before=flow_definition_to_api(before.definition),
                after=data,
                version=flow.version,
            )
        return {"id": flow.id, "name": flow.definition.name, "version": flow.version}

    async def _audit(
        self, action: str, flow_id: str, *, before: Any = None, after: Any, version: int
    ) -> None:
        entry = cli_entry(
            action,
            self.company_id,
            target_type="flow",
            target_id=flow_id,
            before=before,
            after=after,
            details={"version": version},
        )
        await write_now(self.store, entry)


def read_flow_file(path: str | Path) -> Any:
    """The JSON in ``path``; an unreadable file or bad JSON is a validation problem."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FlowValidationError([Problem("", f"cannot read flow file {path}: {e}")]) from e
    bad_text = invalid_text_in(data)
    if bad_text is not None:
        raise FlowValidationError([Problem(*bad_text)])
    return data
