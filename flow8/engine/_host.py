"""What a running play needs of the engine that runs it (:class:`Engine` is one).

A protocol rather than the Engine itself: the play's actor and runner sit below the engine
(which starts them), and a subflow step calls back up into it to start its child.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from flow8.domain import Play
from flow8.events import EventBus
from flow8.store import Store

from ._fair import FairGate
from ._plan import PlanCache
from ._settings import EngineSettings
from ._sources import BudgetSource, ComponentSource, CredentialSource, FlowSource, KvStorage


class PlayHost(Protocol):
    @property
    def store(self) -> Store: ...

    @property
    def settings(self) -> EngineSettings: ...

    @property
    def events(self) -> EventBus: ...

    @property
    def flows(self) -> FlowSource: ...

    @property
    def plans(self) -> PlanCache: ...

    @property
    def kv(self) -> KvStorage: ...

    @property
    def components(self) -> ComponentSource | None: ...

    @property
    def credentials(self) -> CredentialSource | None: ...

    @property
    def budgets(self) -> BudgetSource | None: ...

    @property
    def starts(self) -> FairGate:
        """The gate play starts pass (by company): a play holds back before steps that
        start plays while its company's starts queue up there."""
        ...

    async def run_subflow(
        self,
        parent: Play,
        flow_id: str,
        args: Any,
        *,
        key: str,
        wait: bool,
        timeout: float | None,
        attempt: int = 1,
        secrets: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Start ``flow_id`` as a child of ``parent`` (see :meth:`Engine.run_subflow`)."""
        ...
