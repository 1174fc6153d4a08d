"""Shared helpers of the channel listener tests: a full in-process engine on a real sqlite
store, the channels subtree in a real actor runtime, and an in-memory twin of the channel
service (``MemoryChannels``: the one method the runtime reads, plus the writes a test makes).
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

import actors
from flow8.channels import ChannelManager, Limits
from flow8.domain import parse_flow_definition
from flow8.engine import Engine
from flow8.events import EventBus
from flow8.modules import default_registry
from flow8.services.audit import AuditEntry
from flow8.services.channels import (
    AuthMode,
    Channel,
    ChannelKind,
    HmacSettings,
    ResponseMode,
    Route,
)
from flow8.services.components import ComponentService, ProviderEnv
from flow8.services.credentials import CredentialService
from flow8.services.events import EventService
from flow8.services.flows import FlowRepository
from flow8.services.kv import KvStore
from flow8.services.plays import PlayService
from flow8.store import Store

COMPANY = "company-a"
TOKEN = "canary-token-7c1f9e2a"
HMAC_SECRET = "canary-hmac-3d8b6f04"


def free_port() -> int:
    """A port nothing listens on now (bound to 0 and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@attrs.define
class MemoryChannels:
    """The channel service's twin: channels in a dict, ``on_change`` on every write."""

    channels: dict[str, Channel] = attrs.field(factory=dict)
    on_change: Callable[[str, str], None] | None = None
    reads: int = 0

    async def listeners(self) -> list[Channel]:
        self.reads += 1
        await trio.lowlevel.checkpoint()
        return [c for c in self.channels.values() if c.enabled and c.kind.listens]

    def put(self, channel: Channel) -> Channel:
        old = self.channels.get(channel.id)
        if old is not None:
            channel = attrs.evolve(channel, rev=old.rev + 1)
        self.channels[channel.id] = channel
        self._changed(channel)
        return channel

    def update(self, channel_id: str, **changes: Any) -> Channel:
        return self.put(attrs.evolve(self.channels[channel_id], **changes))

    def delete(self, channel_id: str) -> None:
        channel = self.channels.pop(channel_id)
        self._changed(channel)

    def _changed(self, channel: Channel) -> None:
        if self.on_change is not None:
            self.on_change(channel.company_id, channel.id)


def route(
    name: str,
    flow_ids: list[str],
    *,
    method: str = "POST",
    path: str = "/",
    mode: ResponseMode = ResponseMode.SYNC,
    timeout: float = 10.0,
) -> Route:
    return Route(
        id=f"r-{name}",
        name=name,
        http_method=method,
        path=path,
        target_flow_ids=tuple(flow_ids),
        response_mode=mode,
        timeout_seconds=timeout,
    )


def channel(
    cid: str,
    kind: ChannelKind,
    routes: list[Route],
    *,
    auth: AuthMode = AuthMode.PUBLIC,
    hmac: HmacSettings | None = None,
    **kw: Any,
) -> Channel:
    return Channel(
        id=cid,
        company_id=COMPANY,
        name=f"channel {cid}",
        kind=kind,
        auth_mode=auth,
        enabled=True,
        port=kw.pop("port", None) or free_port(),
        routes=tuple(routes),
        hmac=hmac,
        auth_token=TOKEN if auth is AuthMode.HEADER_TOKEN else None,
        **kw,
    )


FLOWS: dict[str, dict[str, Any]] = {
    # Switched off: its routes answer 409 and start nothing.
    "paused": {
        "name": "paused",
        "enabled": False,
        "flowlets": [{"ref": "a", "appId": "noop", "args": {"value": 1}}],
    },
    # The play's output is its input: what the channel handed the flow.
    "echo": {
        "name": "echo",
        "flowlets": [{"ref": "a", "appId": "noop", "args": {"value": "{{ $prev.args }}"}}],
    },
    "two": {
        "name": "two steps",
        "flowlets": [
            {"ref": "a", "appId": "noop", "args": {"value": 1}},
            {"ref": "b", "appId": "noop", "args": {"value": "{{ $prev.args }}"}},
        ],
    },
    "respond": {
        "name": "respond",
        "flowlets": [
            {"ref": "a", "appId": "noop", "args": {"value": "{{ $prev.args.params.id }}"}},
            {
                "ref": "r",
                "appId": "respond",
                "args": {
                    "statusCode": 201,
                    "headers": {"X-Order": "{{ $prev.a }}"},
                    "body": {"order": "{{ $prev.a }}", "created": True},
                },
            },
        ],
    },
    "fail": {
        "name": "fail",
        "flowlets": [{"ref": "a", "appId": "fail", "args": {"message": "boom"}}],
    },
    "brief": {
        "name": "brief",
        "flowlets": [
            {"ref": "a", "appId": "delay", "args": {"ms": 300}},
            {"ref": "b", "appId": "noop", "args": {"value": "answered"}},
        ],
    },
    "slow": {
        "name": "slow",
        "flowlets": [
            {"ref": "a", "appId": "delay", "args": {"ms": 1500}},
            {"ref": "b", "appId": "noop", "args": {"value": "late"}},
        ],
    },
}


@attrs.define
class ChannelEnv:
    store: Store
    plays: PlayService
    events: EventService
    source: MemoryChannels
    manager: ChannelManager
    runtime: actors.Runtime
    audit: list[AuditEntry]
    flows: dict[str, str]  # FLOWS key -> flow id

    async def settle(self, timeout: float = 1.0) -> None:
        """Wait until the manager listens on exactly the enabled channels (at most
        ``timeout`` s: the change must take effect that fast)."""
        with trio.fail_after(timeout):
            while True:
                want = {
                    c.id: (c.rev, c.port)
                    for c in self.source.channels.values()
                    if c.enabled and c.kind.listens
                }
                have = {cid: (c.rev, c.port) for cid, c in self.manager.listening().items()}
                if want == have and all(self.manager.listener(c) for c in want):
                    return
                await trio.sleep(0.01)


@asynccontextmanager
async def open_channel_env(
    store: Store, *, limits: Limits | None = None, resync_seconds: float = 2.0
) -> AsyncIterator[ChannelEnv]:
    files = Path(tempfile.mkdtemp(prefix="flow8-channel-files-"))
    try:
        async with _channel_env(store, files, limits, resync_seconds) as env:
            yield env
    finally:
        shutil.rmtree(files, ignore_errors=True)  # the components' file dirs, not left in /tmp


@asynccontextmanager
async def _channel_env(
    store: Store, files: Path, limits: Limits | None, resync_seconds: float
) -> AsyncIterator[ChannelEnv]:
    bus = EventBus()
    registry = default_registry()
    flows_repo, kv = FlowRepository(store, registry), KvStore(store)
    components = ComponentService(
        store, lambda company_id: ProviderEnv(company_id=company_id, files_dir=files / company_id)
    )
    engine = Engine(
        store,
        bus,
        None,
        registry,
        flows=flows_repo,
        kv=kv,
        components=components,
        credentials=CredentialService(store),
    )
    flow_ids = {}
    for key, doc in FLOWS.items():
        flow = await flows_repo.create(COMPANY, parse_flow_definition(doc))
        flow_ids[key] = flow.id
    plays, events = PlayService(engine), EventService(bus)
    audit: list[AuditEntry] = []
    source = MemoryChannels()
    manager = ChannelManager(
        source,
        plays,
        events,
        audit.append,
        host="127.0.0.1",
        limits=limits or Limits(max_body_bytes=4096, allowed_origins=("https://app.example",)),
        resync_seconds=resync_seconds,
    )
    source.on_change = manager.changed
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.serve)
        await nursery.start(engine.serve)
        root = actors.SupervisorSpec((manager.child(),))
        async with actors.open_runtime(root, shutdown=5) as runtime:
            manager.attach(runtime)
            yield ChannelEnv(store, plays, events, source, manager, runtime, audit, flow_ids)
        nursery.cancel_scope.cancel()
