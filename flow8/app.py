"""Composition root: builds the platform's objects and declares the supervision tree.

    root                 rest_for_one: a child may depend on every child before it
    ├── store            group-commit writer and TTL purge of the opened store (restartable)
    ├── instance         registers this process, holds its instance index, heartbeats
    ├── events           pub/sub of play and system events
    ├── audit            batches audit entries into the store; flushes on stop
    ├── engine           one_for_one
    │   ├── plays        dynamic supervisor: one PlayActor per running play
    │   └── dispatcher   claims runnable plays with a lease, resumes orphans
    ├── jobs             one_for_one: the scheduler and the periodic jobs
    │   ├── scheduler    cron schedules -> plays, each tick claimed exactly once
    │   ├── retention    deletes what the retention policies let go (every 2 minutes)
    │   ├── audit-cache  the values behind the audit filters (every 3 minutes)
    │   ├── ttl-cache    evicts expired in-memory cache entries (every minute)
    │   └── oauth-refresh  refreshes the OAuth2 tokens due, under their leases (every minute)
    ├── channels         one_for_all: the channel listeners (this instance's port block)
    ├── metrics-peer     (a worker of serve --workers N, metrics on) its metrics for its peers
    │   ├── listeners    dynamic supervisor: one task per enabled http/ws/tcp channel
    │   └── manager      starts, restarts and stops them as channels change
    ├── http             Hypercorn serving the Quart-Trio app on SERVER_PORT
    └── mcp              Hypercorn serving the MCP endpoint (Streamable HTTP) on MCP_PORT

Start-up order: ``flow8.cli`` has loaded ``.env``, configured logging and checked the settings;
:func:`open_platform` then opens the store (connections, indexes) and starts the tree in order
(each child is started once it says it is ready, so ``/healthz`` answers only when everything
before http is up). The ``store`` actor runs the store's writer: a crash of it restarts every
child after it (rest_for_one), and queued writes wait for its next incarnation.
Stop runs in reverse order, bounded by ``SHUTDOWN_GRACE_SECONDS``.
"""

from __future__ import annotations

import ipaddress
import os
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import structlog
import trio

import actors

from .channels import channels_child
from .config import Settings
from .configured import engine_settings, expression_limits, open_configured_store
from .engine import Engine, engine_child, events_child
from .events import EventBus
from .expressions import configure_expressions
from .http import HttpDeps, HttpSettings, create_app, http_child
from .interpreter import settle_after_startup
from .jobs import Scheduler, cleanup_jobs, jobs_child, oauth_refresh_job, scheduler_child
from .logs import get_logger
from .mcp import McpApp, McpDeps, McpSettings, mcp_child
from .modules import default_registry
from .outbound import OutboundPolicy
from .services.audit import (
    AuditFilterCache,
    AuditLog,
    AuditQueries,
    StoreAuditSink,
    audit_child,
)
from .services.channels import ChannelService
from .services.components import ComponentService, ProviderEnv
from .services.credentials import CredentialService
from .services.events import EventService
from .services.flows import FlowRepository, FlowService
from .services.identity import (
    IdentityService,
    SigninLimits,
    install_instructions,
    needs_install,
)
from .services.instances import InstanceRegistry, channel_block
from .services.kv import KvService, KvStore
from .services.metrics import Metrics, WorkerPeers
from .services.modules import ModuleCatalog
from .services.plays import PlayService
from .services.retention import RetentionDefaults, RetentionPolicies
from .services.schedules import ScheduleService
from .services.usage import UsageService
from .serving import WorkerRole, stop_on_signals
from .store import Store

log = get_logger("flow8.app")
ADMIN_TREE_CHILD_LIMIT = 200


@attrs.define
class Platform:
    """The long-lived objects of one instance, shared by the children of the tree.

    ``flows`` and ``kv`` are the flows' and KV entries' stores, the services' own: the engine
    reads from them (as its ``FlowSource`` and ``KvStorage``) and the services manage them.
    """

    settings: Settings
    store: Store
    events: EventBus
    audit: AuditLog
    flows: FlowRepository
    kv: KvStore
    credentials: CredentialService
    components: ComponentService
    engine: Engine
    identity: IdentityService
    usage: UsageService
    instance: InstanceRegistry
    # Set in a worker of `flow8 serve --workers N`: its group and the parent's sockets.
    role: WorkerRole | None = None
    runtime: actors.Runtime | None = None
    # Called with the runtime once it is open: children that need a ref into the tree
    # (the channel manager its dynamic supervisor of listeners).
    on_runtime: list[Callable[[actors.Runtime], None]] = attrs.field(factory=list)

    def actor_tree(self) -> Mapping[str, Any]:
        # A dynamic supervisor may hold thousands of plays: list a page, childCount stays exact.
        return self.runtime.tree(limit=ADMIN_TREE_CHILD_LIMIT) if self.runtime is not None else {}

    def ready(self) -> bool:
        return self.runtime is not None


def build_tree(platform: Platform) -> actors.SupervisorSpec:
    """The supervision tree of one instance (see the module docstring)."""
    settings = platform.settings
    role = platform.role
    instance = platform.instance
    scheduler = Scheduler(
        platform.store, PlayService(platform.engine), instance=instance.instance_id
    )
    schedules = ScheduleService(
        platform.store, platform.flows, PlayService(platform.engine), on_change=scheduler.changed
    )
    channels = ChannelService(
        platform.store,
        platform.flows,
        settings.channel_port_range,
        block_of=lambda: channel_block(settings.channel_port_range, instance.index or 1),
        max_connections=settings.channel_max_connections,
        rate_per_second=settings.channel_rate_per_second,
    )
    channels_spec, channel_manager = channels_child(
        channels,
        PlayService(platform.engine),
        EventService(platform.events),
        platform.audit.record,
        host=settings.server_host,
        max_body_bytes=settings.max_body_bytes,
        allowed_origins=settings.allowed_origins,
        shared_ports=role is not None,
    )
    channels.on_change = channel_manager.changed
    # A lost and re-claimed index moves the block: the manager re-reads its listeners.
    instance.on_change = lambda: channel_manager.changed("", "")
    platform.on_runtime.append(channel_manager.attach)
    retention = RetentionPolicies(
        platform.store,
        RetentionDefaults(
            settings.retention_audit, settings.retention_plays, settings.retention_filtered_plays
        ),
    )
    audit_filters = AuditFilterCache(platform.store)
    cleanup = cleanup_jobs(
        platform.store,
        retention,
        platform.audit.record,
        audit_filters,
        (platform.flows.evict_expired, platform.components.evict_expired),
        retention_interval=settings.retention_interval_seconds,
        batch_size=settings.retention_batch_size,
    )
    # GET /metrics is behind the admin token: without one it is off and nothing is counted.
    metrics = (
        Metrics.of(
            platform.engine,
            platform.events,
            platform.store,
            platform.actor_tree,
            heartbeats=instance.heartbeat_ages,
        )
        if settings.admin_token
        else None
    )
    # With workers, a scrape reaching any of them serves every worker's metrics.
    peers_child: list[actors.ChildSpec] = []
    if metrics is not None and role is not None:
        metrics.peers = WorkerPeers(Path(role.run_dir), role.worker)
        peers_child.append(
            actors.task("metrics-peer", partial(metrics.peers.serve, metrics.render_own))
        )
    deps = HttpDeps(
        settings=HttpSettings(
            admin_token=settings.admin_token,
            allowed_origins=settings.allowed_origins,
            trusted_proxies=settings.trusted_proxies,
            max_body_bytes=settings.max_body_bytes,
            secure_cookies=settings.secure_cookies,
            public_url=settings.public_url,
        ),
        actor_tree=platform.actor_tree,
        ready=platform.ready,
        identity=platform.identity,
        flows=FlowService(
            platform.flows, components=platform.components, credentials=platform.credentials
        ),
        plays=PlayService(platform.engine),
        kv=KvService(platform.kv),
        credentials=platform.credentials,
        components=platform.components,
        events=EventService(platform.events),
        modules=ModuleCatalog(platform.engine.registry),
        audit=platform.audit.record,
        audit_queries=AuditQueries(platform.store),
        schedules=schedules,
        channels=channels,
        audit_filters=audit_filters,
        retention=retention,
        jobs=cleanup.stats,
        usage=platform.usage,
        instances=platform.instance,
        metrics=metrics,
    )
    app = create_app(deps)
    mcp_app = McpApp(
        McpSettings.of(
            port=settings.mcp_port,
            public_url=settings.mcp_public_url,
            allowed_origins=settings.allowed_origins,
            jwt_secret=settings.mcp_jwt_secret,
            jwt_issuer=settings.mcp_jwt_issuer,
            bind_host=settings.server_host,
        ),
        platform.identity,
        McpDeps(
            flows=FlowService(
                platform.flows, components=platform.components, credentials=platform.credentials
            ),
            plays=PlayService(platform.engine),
            modules=ModuleCatalog(platform.engine.registry),
            events=EventService(platform.events),
            audit=platform.audit.record,
            channels=channels,
        ),
    )
    return actors.SupervisorSpec(
        [
            actors.task("store", platform.store.serve, shutdown=5.0),
            actors.task("instance", instance.serve, shutdown=3.0, info=instance.statistics),
            events_child(platform.events),
            audit_child(platform.audit),
            engine_child(platform.engine),
            jobs_child(
                scheduler_child(scheduler),
                *cleanup.children(),
                oauth_refresh_job(platform.credentials).child(),
            ),
            channels_spec,
            *peers_child,
            http_child(
                app,
                settings.server_host,
                settings.server_port,
                graceful_timeout=min(5.0, settings.shutdown_grace_seconds / 2),
                inherited_fd=role.http_fd if role else None,
            ),
            mcp_child(
                mcp_app,
                settings.server_host,
                settings.mcp_port,
                graceful_timeout=min(5.0, settings.shutdown_grace_seconds / 2),
                inherited_fd=role.mcp_fd if role else None,
            ),
        ],
        strategy=actors.Strategy.REST_FOR_ONE,
        intensity=3,
        period=30.0,
    )


def outbound_policy(settings: Settings) -> OutboundPolicy:
    """Where the server's outbound requests may go: the internal hosts the operator opened
    (COMPONENT_ALLOWED_HOSTS) beside the public internet. Components and OAuth2 token
    requests share it."""
    hosts, cidrs = [], []
    for entry in settings.component_allowed_hosts:
        try:
            cidrs.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            hosts.append(entry)
    return OutboundPolicy(allowed_hosts=hosts, allowed_cidrs=cidrs)


def component_env(settings: Settings) -> Callable[[str], ProviderEnv]:
    """What the server lends each company's components: its own files directory, the
    directories and internal hosts the operator opened, one pool of worker threads."""
    network = outbound_policy(settings)
    threads = trio.CapacityLimiter(16)
    files = settings.data_dir / "files"

    def env_for(company_id: str) -> ProviderEnv:
        return ProviderEnv(
            company_id=company_id,
            files_dir=files / company_id,
            allowed_roots=settings.component_local_roots,
            network=network,
            threads=threads,
        )

    return env_for


@asynccontextmanager
async def open_platform(
    settings: Settings, role: WorkerRole | None = None
) -> AsyncIterator[Platform]:
    """Open the store, build the tree and start it; yields once every child is running."""
    configure_expressions(expression_limits(settings))
    async with open_configured_store(settings, serve=False) as store:
        events = EventBus()
        audit = AuditLog(StoreAuditSink(store))
        registry = default_registry()
        flows, kv = FlowRepository(store, registry), KvStore(store)
        credentials = CredentialService(store)
        credentials.oauth.network = outbound_policy(settings)
        credentials.oauth.audit = audit.record
        components = ComponentService(store, component_env(settings))
        usage = UsageService(store, audit.record)
        instance = InstanceRegistry(
            store,
            group=role.group if role else "",
            worker=role.worker if role else None,
            heartbeat_seconds=settings.heartbeat_seconds,
            ttl_seconds=4 * settings.heartbeat_seconds,
        )
        platform = Platform(
            settings=settings,
            store=store,
            events=events,
            audit=audit,
            flows=flows,
            kv=kv,
            credentials=credentials,
            components=components,
            engine=Engine(
                store,
                events,
                engine_settings(settings, instance_id=instance.instance_id),
                registry,
                flows=flows,
                kv=kv,
                components=components,
                credentials=credentials,
                budgets=usage,
            ),
            identity=identity_service(settings, store, audit),
            usage=usage,
            instance=instance,
            role=role,
        )
        async with actors.open_runtime(
            build_tree(platform), shutdown=settings.shutdown_grace_seconds
        ) as runtime:
            platform.engine.attach(runtime.dynamic_supervisor("engine/plays"))
            for attach in platform.on_runtime:
                attach(runtime)
            platform.runtime = runtime
            try:
                yield platform
            finally:
                platform.runtime = None
                with trio.CancelScope(shield=True):
                    await components.aclose()


def identity_service(settings: Settings, store: Store, audit: AuditLog) -> IdentityService:
    limits = SigninLimits(
        free_failures=settings.signin_free_failures,
        max_delay=settings.signin_max_delay_seconds,
        forget_after=max(86_400.0, settings.signin_max_delay_seconds),
        source_failures=settings.signin_source_failures,
    )
    return IdentityService(
        store,
        audit=audit.record,
        signin_limits=limits,
        invitation_ttl=timedelta(days=settings.invitation_ttl_days),
    )


async def serve(settings: Settings, role: WorkerRole | None = None) -> None:
    """Run the platform until SIGINT or SIGTERM (a worker: or until its parent is gone),
    then stop the tree within the grace period."""
    stop = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as watchers:
            # Watched until the tree has stopped: a second signal (systemd signals the whole
            # group, then the parent of --workers signals each worker) is taken, not left
            # pending for Trio to redeliver as the receiver closes, which would kill us.
            watchers.start_soon(stop_on_signals, signals, stop)
            if role is not None:
                watchers.start_soon(_stop_when_orphaned, stop)
            async with open_platform(settings, role) as platform:
                base_url = f"http://{_display_host(settings.server_host)}:{settings.server_port}"
                settle_after_startup()
                log.info(
                    "flow8_started",
                    url=base_url,
                    store=_store_kind(settings.store_url),
                    instance=platform.instance.instance_id,
                    index=platform.instance.index,
                )
                if (role is None or role.worker == 1) and await needs_install(platform.store):
                    print(install_instructions(base_url, data_dir=settings.data_dir), flush=True)
                await stop.wait()
                # Leaving open_platform stops the tree in reverse order; open_runtime's
                # shutdown bound cancels whatever still runs after SHUTDOWN_GRACE_SECONDS.
            watchers.cancel_scope.cancel()
    log.info("flow8_stopped")


async def _stop_when_orphaned(stop: trio.Event, interval: float = 1.0) -> None:
    """A worker whose parent died (SIGKILL leaves no chance to stop it) stops itself rather
    than serve on unsupervised: its parent's successor starts workers of its own."""
    parent = os.getppid()
    while os.getppid() == parent:  # noqa: ASYNC110 (no event tells a parent's death)
        await trio.sleep(interval)
    log.warning("flow8_stopping", reason="the parent process of this worker is gone")
    stop.set()


def run_server(settings: Settings, role: WorkerRole | None = None) -> int:
    """Entry point of ``flow8 serve`` and of each of its workers; returns the exit code."""
    if role is not None:
        # Every log line of a worker says which one it is.
        structlog.contextvars.bind_contextvars(worker=role.worker)
    trio.run(serve, settings, role)
    return 0


def _display_host(host: str) -> str:
    return "localhost" if host in ("0.0.0.0", "::", "127.0.0.1") else host


def _store_kind(url: str) -> str:
    return url.split(":", 1)[0]
