"""A platform for component tests: a real store, the components and credentials services,
the flows service (with its save-time checks) and an engine wired to them as the server
wires them, so a test configures components, saves a flow and runs a play end to end.

    async with component_kit(tmp_path) as kit:
        await kit.component("storage", "local", {"rootPath": "files"})
        play, layers = await kit.run([{"ref": "w", "appId": "storage-write", "args": {...}}])
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from flow8.domain import Play, PlayLayer, PlayTrace
from flow8.engine import Engine, EngineSettings
from flow8.events import Event, EventBus, EventFilter
from flow8.modules import default_registry
from flow8.outbound import OutboundPolicy, Resolver, SystemResolver
from flow8.services.components import Component, ComponentService, ProviderEnv
from flow8.services.credentials import CredentialService
from flow8.services.flows import FlowRepository, FlowService
from flow8.services.kv import KvStore
from flow8.store import Store, open_store

COMPANY = "acme"
OTHER = "globex"


@attrs.define
class Kit:
    store: Store
    components: ComponentService
    credentials: CredentialService
    flows: FlowService
    engine: Engine
    events: list[Event]
    files: Path  # <data>/files: each company's relative paths live in files/<company id>

    async def component(
        self,
        kind: str,
        provider: str,
        config: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        default: bool = True,
        company: str = COMPANY,
    ) -> Component:
        return await self.components.create(
            company,
            {
                "name": name or f"{kind}-{provider}",
                "kind": kind,
                "provider": provider,
                "config": config or {},
                "isDefault": default,
            },
        )

    async def credential(
        self, type_: str, data: dict[str, Any], *, name: str = "cred", company: str = COMPANY
    ) -> str:
        made = await self.credentials.create(company, name, type_, data)
        return made.id

    async def run(
        self,
        flowlets: Sequence[dict[str, Any]],
        input: Any = None,
        *,
        record: bool = False,
        company: str = COMPANY,
        timeout: float = 30,
        trace: PlayTrace | None = None,
    ) -> tuple[Play, dict[str, PlayLayer]]:
        """Save a flow of ``flowlets`` (through the flows service: refused like the API
        refuses it), run it to its end, and answer the play and its layers by ref;
        ``trace``: the play's, as a request with a ``traceparent`` would start it."""
        definition: dict[str, Any] = {"name": "components test", "flowlets": list(flowlets)}
        if record:
            definition["execution"] = {"recordCalls": True}
        flow = await self.flows.create(company, definition)
        started = await self.engine.start_play(company, flow.id, input, trace=trace)
        play = await self.engine.wait_play(company, started.id, timeout=timeout)
        layers = {la.ref: la for la in await self.engine.get_layers(company, play.id)}
        return play, layers


def server_env(
    files: Path,
    *,
    allowed_hosts: Sequence[str] = ("127.0.0.1/32", "::1/128"),
    resolver: Resolver | None = None,
) -> Any:
    """``env_for`` as the server builds it, with loopback opened to db/email/storage
    components (the servers these tests start listen there); ``allowed_hosts=()`` keeps
    the server's default (every internal address refused)."""
    cidrs = [h for h in allowed_hosts if "/" in h]
    hosts = [h for h in allowed_hosts if "/" not in h]
    network = OutboundPolicy(allowed_hosts=hosts, allowed_cidrs=cidrs)
    threads = trio.CapacityLimiter(8)

    def env_for(company_id: str) -> ProviderEnv:
        return ProviderEnv(
            company_id=company_id,
            files_dir=files / company_id,
            network=network,
            resolver=resolver or SystemResolver(),
            threads=threads,
        )

    return env_for


@asynccontextmanager
async def component_kit(
    tmp_path: Path,
    *,
    allowed_hosts: Sequence[str] = ("127.0.0.1/32", "::1/128"),
    resolver: Resolver | None = None,
) -> AsyncIterator[Kit]:
    """``allowed_hosts``: the internal hosts the operator opened to db, email and storage
    components (loopback by default, where the tests' servers listen). ``resolver``: DNS
    as every component sees it (a scripted one for rebinding tests)."""
    files = tmp_path / "files"
    registry = default_registry()
    bus = EventBus()
    seen: list[Event] = []
    async with (
        open_store(f"sqlite:///{tmp_path / 'flow8.db'}", data_dir=tmp_path) as store,
        trio.open_nursery() as nursery,
    ):
        components = ComponentService(
            store, server_env(files, allowed_hosts=allowed_hosts, resolver=resolver)
        )
        credentials = CredentialService(store)
        repository = FlowRepository(store, registry)
        engine = Engine(
            store,
            bus,
            EngineSettings(lease_seconds=2.0, poll_interval=0.05, hold_delay_seconds=0.3),
            registry,
            flows=repository,
            kv=KvStore(store),
            components=components,
            credentials=credentials,
        )
        await nursery.start(bus.serve)

        async def collect(task_status: trio.TaskStatus[None]) -> None:
            async with bus.subscribe(EventFilter(None), buffer=100_000) as events:
                task_status.started()
                async for event in events:
                    seen.append(event)

        await nursery.start(collect)
        await nursery.start(engine.serve)
        yield Kit(
            store,
            components,
            credentials,
            FlowService(repository, components=components, credentials=credentials),
            engine,
            seen,
            files,
        )
        await components.aclose()
        nursery.cancel_scope.cancel()
