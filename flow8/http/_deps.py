"""What the HTTP app needs from the rest of the process, handed in by the composition root."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from flow8.services.audit import AuditEntry, AuditFilterCache, AuditQueries
from flow8.services.channels import ChannelService
from flow8.services.components import ComponentService
from flow8.services.credentials import CredentialService
from flow8.services.events import EventService
from flow8.services.flows import FlowService
from flow8.services.identity import IdentityService
from flow8.services.instances import InstanceRegistry
from flow8.services.kv import KvService
from flow8.services.metrics import Metrics
from flow8.services.modules import ModuleCatalog
from flow8.services.plays import PlayService
from flow8.services.retention import RetentionPolicies
from flow8.services.schedules import ScheduleService
from flow8.services.usage import UsageService

from ._client_ip import IPNetwork, trusted_networks


def _no_tree() -> Mapping[str, Any]:
    return {}


def _always_ready() -> bool:
    return True


def _no_audit(_: AuditEntry) -> None:
    return None


@attrs.frozen
class HttpSettings:
    """The HTTP layer's own settings; the integrator maps `flow8.config.Settings` onto these.

    `admin_token` None (or empty) switches `/admin/*` off entirely (404), so an instance
    without a configured token exposes nothing.

    `trusted_proxies` (networks, or address/CIDR strings parsed here once) are the reverse
    proxies whose `X-Forwarded-For` names the client; empty means the socket peer is the
    client and the header is ignored.
    """

    admin_token: str | None = None
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = 10 * 1024 * 1024
    # Cookies get the Secure flag; set when served over TLS or behind a TLS-terminating proxy.
    secure_cookies: bool = False
    admin_cookie_ttl_seconds: float = 15 * 60
    ws_queue_size: int = 256
    # An open WebSocket re-checks its credential this often and closes (4401) once the
    # session or key is gone, the member removed, or the session switched company.
    ws_recheck_seconds: float = 15.0
    trusted_proxies: tuple[IPNetwork, ...] = attrs.field(default=(), converter=trusted_networks)
    # The server as browsers reach it (OAuth2 redirect URIs); empty = as a request reached it.
    public_url: str = ""


@attrs.define
class HttpDeps:
    """Collaborators of the HTTP app: the services it calls (and nothing below them).

    `actor_tree` returns the runtime's JSON rendering of the supervision tree;
    `ready` says whether the tree is up (health checks answer 503 until it is).
    """

    settings: HttpSettings = attrs.field(factory=HttpSettings)
    actor_tree: Callable[[], Mapping[str, Any]] = _no_tree
    ready: Callable[[], bool] = _always_ready
    # Wall clock for cookie and session expiry; tests substitute a controllable one.
    clock: Callable[[], float] = time.time
    identity: IdentityService | None = None
    flows: FlowService | None = None
    plays: PlayService | None = None
    kv: KvService | None = None
    credentials: CredentialService | None = None
    components: ComponentService | None = None
    schedules: ScheduleService | None = None
    channels: ChannelService | None = None
    events: EventService | None = None
    modules: ModuleCatalog | None = None
    # Non-blocking: AuditLog.record. Every request and change is reported here.
    audit: Callable[[AuditEntry], None] = _no_audit
    # The company's audit trail as `GET /api/audit` reads it.
    audit_queries: AuditQueries | None = None
    # The values behind the audit filters, refreshed by the audit-cache job.
    audit_filters: AuditFilterCache | None = None
    retention: RetentionPolicies | None = None
    usage: UsageService | None = None
    instances: InstanceRegistry | None = None
    # The periodic jobs' statistics, with the counts of one company (GET /api/jobs).
    jobs: Callable[[str], Sequence[Mapping[str, Any]]] | None = None
    # What GET /metrics serves (behind the admin token); None: no metrics, nothing counted.
    metrics: Metrics | None = None
