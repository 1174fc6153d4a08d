"""What the engine reads and writes outside its own records, as narrow protocols.

Flows, KV entries, component configs and credentials are stored by the services above the
engine (``flow8.services.flows`` owns the flows and their versions, ``flow8.services.kv`` the
KV entries, ``flow8.services.components`` and ``flow8.services.credentials`` the rest); the
engine sees only what it needs of them, and the composition root hands it the services'
implementations.
Plain structural protocols: a call through one costs what a call on the object costs.
"""

from __future__ import annotations

from typing import Any, Protocol

from flow8.components import ComponentHandle
from flow8.domain import Flow


class FlowSource(Protocol):
    """Flow versions as the engine runs them (implemented by the flows service's
    ``FlowRepository``)."""

    async def get(self, company_id: str, flow_id: str, version: int | None = None) -> Flow:
        """The given version of a flow (a play pins one), or its latest; raises
        :class:`flow8.engine.FlowNotFound`."""
        ...


class KvStorage(Protocol):
    """KV entries by stored scope (``global``, ``group:<group>``, ``flow:<flow id>``), as
    :class:`PlayKv` reads and writes them for a play's kv modules (implemented by the kv
    service's ``KvStore``)."""

    async def entry(self, company_id: str, scope: str, key: str) -> tuple[bool, Any, bool]:
        """(found, value, whether the entry is marked secret)."""
        ...

    async def set(
        self,
        company_id: str,
        scope: str,
        key: str,
        value: Any,
        ttl_seconds: float | None,
        *,
        secret: bool | None = None,
    ) -> object: ...  # the engine does not read the answer (the entry as written)

    async def append(
        self, company_id: str, scope: str, key: str, value: Any, ttl_seconds: float | None
    ) -> int: ...

    async def delete(self, company_id: str, scope: str, key: str) -> bool: ...


class ComponentSource(Protocol):
    """Live components for steps (implemented by the components service)."""

    async def resolve(self, company_id: str, kind: str, choice: str | None) -> ComponentHandle:
        """The component a step of ``company_id`` uses for ``kind``: ``choice`` (an id or a
        name, from the step's ``componentConfigIds``), else the company's default, else the
        built-in default; raises when there is none."""
        ...


class CredentialSource(Protocol):
    """Stored credentials, decrypted for the step that applies them (implemented by the
    credentials service)."""

    async def for_step(self, company_id: str, credential_id: str) -> tuple[str, dict[str, Any]]:
        """(type, data) of the company's credential; raises when there is none."""
        ...


class BudgetSource(Protocol):
    """The company's and its flows' budgets for metered steps (implemented by the usage
    service, which reads the counts the engine writes: see ``Journal.count_usage``)."""

    async def refusal(self, company_id: str, flow_id: str) -> str | None:
        """Why a metered step of this flow may not start now (a budget whose period's
        spending reached its maximum), or None."""
        ...

    async def refused(self, company_id: str, flow_id: str, play_id: str, ref: str) -> None:
        """A step was refused: audit it."""
        ...
