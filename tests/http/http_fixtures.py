"""Shared test helpers for the HTTP tests (imported by conftest and the test modules)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio

from flow8.config import PortRange
from flow8.engine import Engine
from flow8.events import EventBus
from flow8.http import Flow8App, HttpDeps, HttpSettings, create_app
from flow8.jobs import cleanup_jobs
from flow8.modules import default_registry
from flow8.services.audit import AuditFilterCache, AuditLog, AuditQueries, StoreAuditSink
from flow8.services.channels import ChannelService
from flow8.services.components import ComponentService, ProviderEnv
from flow8.services.credentials import CredentialService
from flow8.services.events import EventService
from flow8.services.flows import FlowRepository, FlowService
from flow8.services.identity import Argon2Params, IdentityService, Passwords
from flow8.services.kv import KvService, KvStore
from flow8.services.metrics import Metrics
from flow8.services.modules import ModuleCatalog
from flow8.services.plays import PlayService
from flow8.services.retention import RetentionPolicies
from flow8.services.schedules import ScheduleService
from flow8.services.usage import UsageService
from flow8.store import Store

OWNER_EMAIL = "owner@example.com"
OWNER_PASSWORD = "owner-password-1"
# What an in-process client calls itself: not an address, so that a test which opens a real
# connection to it fails at once instead of reaching something else.
IN_PROCESS_URL = "http://in-process.invalid"
# The cheapest argon2id the library takes: hashing at OWASP's cost (~30 ms a hash here) was
# a large part of these tests' time, and none but the few that ask for it is about the cost.
TEST_ARGON2 = Argon2Params(memory_kib=1024, iterations=1)
# The channel port block of the test app (tests replace `deps.channels` for a smaller one).
CHANNEL_PORTS = PortRange(7701, 7799)
# Made once: loading the CA bundle for every client cost ~20 ms of each (no test uses TLS).
_TLS = httpx.create_ssl_context()


@attrs.define
class ApiEnv:
    url: str
    store: Store
    identity: IdentityService
    audit: AuditLog
    app: Flow8App
    transport: httpx.AsyncBaseTransport | None = None  # in-process (ASGI); None = `url`'s socket

    @property
    def plays(self) -> PlayService:
        """The app's play service (for waiting on a play's state: ``support.waits``)."""
        assert self.app.deps.plays is not None
        return self.app.deps.plays

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        if self.transport is not None:
            return httpx.AsyncClient(base_url=self.url, transport=self.transport, **kwargs)
        return httpx.AsyncClient(base_url=self.url, timeout=30, verify=_TLS, **kwargs)

    @contextlib.asynccontextmanager
    async def session(self, email: str, password: str) -> AsyncIterator[httpx.AsyncClient]:
        """A client holding a session cookie and sending the CSRF token on every request."""
        async with self.client() as client:
            r = await client.post("/api/auth/login", json={"email": email, "password": password})
            assert r.status_code == 200, r.text
            client.headers["X-CSRF-Token"] = r.json()["csrfToken"]
            yield client

    async def invite_and_accept(
        self, inviter: httpx.AsyncClient, company: str, email: str, role: str, password: str
    ) -> str:
        """`inviter` (an admin's session or key) invites `email` to `company` as `role`, and
        the holder of the token accepts it with `password`: the new account's password, or
        that of the account the email already has. Returns the member's user id."""
        r = await inviter.post(
            f"/api/companies/{company}/members", json={"email": email, "role": role}
        )
        assert r.status_code == 201, r.text
        async with self.client() as holder:
            accept = {"token": r.json()["token"], "password": password}
            r = await holder.post("/api/invitations/accept", json=accept)
            assert r.status_code == 200, r.text
            user_id: str = r.json()["user"]["id"]
            return user_id


ROLES = ("owner", "admin", "editor", "operator", "viewer")


def example(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """A minimal valid instance of `schema` (resolving $refs in `spec`), for probing routes."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return example(spec["components"]["schemas"][name], spec)
    if "anyOf" in schema:
        return example(schema["anyOf"][0], spec)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: example(props[k], spec) for k in schema.get("required", [])}
    if kind == "array":
        return [example(schema.get("items", {}), spec)] * schema.get("minItems", 0)
    if kind == "string":
        if schema.get("format") == "email":
            return "probe@example.com"
        if schema.get("format") == "date-time":
            return "2026-01-01T00:00:00Z"
        return "probe-value-" + "x" * schema.get("minLength", 0)
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    return {}


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    ]


async def start_app(
    nursery: trio.Nursery,
    store: Store,
    settings: HttpSettings,
    *,
    passwords: Passwords | None = None,
    metrics: bool = False,
) -> tuple[Flow8App, IdentityService, AuditLog]:
    """The full app as the tree wires it: audit writer, events bus, engine, services; its
    passwords hashed with ``TEST_ARGON2`` unless ``passwords`` says otherwise; with
    ``metrics``, counting and serving them (`GET /metrics`)."""
    audit = AuditLog(StoreAuditSink(store))
    await nursery.start(audit.serve)
    identity = IdentityService(
        store, audit=audit.record, passwords=passwords or Passwords(TEST_ARGON2)
    )
    bus = EventBus()
    registry = default_registry()
    flows, kv = FlowRepository(store, registry), KvStore(store)
    credentials = CredentialService(store)
    files = Path(tempfile.mkdtemp(prefix="flow8-http-files-"))
    components = ComponentService(
        store, lambda company_id: ProviderEnv(company_id=company_id, files_dir=files / company_id)
    )
    usage = UsageService(store, audit.record)
    engine = Engine(
        store,
        bus,
        None,
        registry,
        flows=flows,
        kv=kv,
        components=components,
        credentials=credentials,
        budgets=usage,
    )
    await nursery.start(bus.serve)
    await nursery.start(engine.serve)
    deps = HttpDeps(
        settings=settings,
        identity=identity,
        flows=FlowService(flows, components=components, credentials=credentials),
        plays=PlayService(engine),
        schedules=ScheduleService(store, flows, PlayService(engine)),
        channels=ChannelService(store, flows, CHANNEL_PORTS),
        kv=KvService(kv),
        credentials=credentials,
        components=components,
        events=EventService(bus),
        modules=ModuleCatalog(registry),
        audit=audit.record,
        audit_queries=AuditQueries(store),
        usage=usage,
        metrics=Metrics.of(engine, bus, store) if metrics else None,
    )
    # Retention, the audit filters and the periodic jobs' statistics (the jobs not running).
    retention = RetentionPolicies(store)
    deps.retention, deps.audit_filters = retention, AuditFilterCache(store)
    deps.jobs = cleanup_jobs(store, retention, audit.record, deps.audit_filters).stats
    return create_app(deps), identity, audit
