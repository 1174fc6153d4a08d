"""``flow8 flows list|export|import``: a company's flows as files, for review and version control.

An export is the flow JSON the body ``POST /api/flows`` takes, so an
exported file imports unchanged, on this instance or another. An import validates the whole
file first (every problem listed, nothing stored), then creates a flow or, given a flow id,
stores the file as that flow's next version; plays already started keep the version they
pinned. Imports are audited like the REST API's changes (before and after state), with the
CLI as the actor (see ``flow8.services.audit.cli_entry``). Everything goes through the flows
service, as the REST API's requests do.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from flow8.domain import FlowValidationError, Problem, flow_definition_to_api
from flow8.services.audit import AuditSink, cli_entry
from flow8.services.flows import FlowService
from flow8.services.storage import invalid_text_in

_PAGE = 100


@attrs.frozen
class FlowFiles:
    """The flows of one (existing) company, read and stored through the flows service, with
    the REST API's validation (every problem, before anything is stored); nothing here runs
    a play. Each change's audit entry is written to ``audit`` before the change returns (a
    command exits right after)."""

    flows: FlowService
    company_id: str
    audit: AuditSink

    async def list(self) -> list[dict[str, Any]]:
        """``{id, name, version, updatedAt}`` of every flow, most recently changed first;
        ``updatedAt`` is a UTC datetime (the CLI prints it as the API does, ISO-8601)."""
        rows: list[dict[str, Any]] = []
        page = 0
        while True:
            flows, total = await self.flows.list(self.company_id, page=page, size=_PAGE)
            page += 1
            rows += [
                {"id": f.id, "name": f.definition.name, "version": f.version,
                 "updatedAt": datetime.fromtimestamp(f.updated_at, UTC)}
                for f in flows
            ]  # fmt: skip
            if not flows or len(rows) >= total:
                return rows

    async def export(self, flow_id: str, version: int | None = None) -> dict[str, Any]:
        """The flow's definition (latest version unless ``version``), ready to import."""
        flow = await self.flows.get(self.company_id, flow_id, version)
        return flow_definition_to_api(flow.definition)

    async def import_(self, data: Any, flow_id: str | None = None) -> dict[str, Any]:
        """Store ``data`` as a new flow, or as the next version of ``flow_id``; answers
        ``{id, name, version}``."""
        # The service parses and checks the whole file (structure, modules, args,
        # expressions, references), listing every problem, before it stores anything.
        flows = self.flows
        if flow_id is None:
            flow = await flows.create(self.company_id, data)
            await self._audit("flow_created", flow.id, after=data, version=flow.version)
        else:
            flows.parse(data)  # a bad file is refused as such, whether or not the flow exists
            before = await flows.get(self.company_id, flow_id)
            flow = await flows.update(self.company_id, flow_id, data)
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
        await self.audit.write(entry.company_id, [entry.to_doc()])


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
