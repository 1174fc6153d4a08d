"""The settings flow8 runs with, and the one table that says where each comes from.

Every setting has a dotted key in ``conf/config.yml``, an environment variable and a default.
The shipped ``conf/config.yml`` spells exactly this table out as ``key: ${VAR:-default}``
(a test keeps the two in step); a config file may leave keys out, and then the table's own
``${VAR:-default}`` applies, so flow8 starts with no config file at all.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from .exceptions import ConfigError

Durability = Literal["full", "normal"]


@attrs.frozen
class PortRange:
    """An inclusive block of TCP ports (channels take one port each from it)."""

    first: int
    last: int

    def __len__(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


@attrs.frozen
class RetentionDefault:
    """A retention default: entries older than ``max_age_days`` go, but never the newest
    ``min_entries`` nor any younger than ``enforced_minimum_days``."""

    max_age_days: float
    min_entries: int
    enforced_minimum_days: float


@attrs.frozen
class Settings:
    """Validated settings. Secret values are left out of ``repr`` so they never reach a log."""

    server_host: str
    server_port: int
    shutdown_grace_seconds: float
    workers: int  # instance processes `flow8 serve` runs on this host (flow8.workers)
    heartbeat_seconds: float
    play_lease_seconds: float
    allowed_origins: tuple[str, ...]
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...]
    max_body_bytes: int
    secure_cookies: bool
    mcp_port: int
    channel_port_range: PortRange
    data_dir: Path
    store_url: str = attrs.field(repr=False)
    store_durability: Durability
    admin_token: str | None = attrs.field(repr=False)
    encryption_keys: str | None = attrs.field(repr=False)
    encrypt_play_data: bool
    invitation_ttl_days: float
    signin_free_failures: int
    signin_max_delay_seconds: float
    signin_source_failures: int
    max_step_bytes: int
    max_play_crashes: int
    max_descendant_plays: int
    company_plays_per_second: float
    company_running_plays: int
    expression_timeout_ms: int
    expression_memory_mb: int
    expression_max_depth: int
    expression_threads: int
    mcp_jwt_secret: str | None = attrs.field(default=None, repr=False)
    mcp_jwt_issuer: str = "flow8"
    mcp_public_url: str = ""  # the audience of MCP JWTs; empty = http://localhost:<MCP_PORT>/mcp
    public_url: str = ""  # the server as browsers reach it; empty = as each request reached it
    channel_max_connections: int = 100
    channel_rate_per_second: float = 50.0
    component_local_roots: tuple[Path, ...] = ()
    component_allowed_hosts: tuple[str, ...] = ()
    retention_interval_seconds: float = 120.0
    retention_batch_size: int = 500
    retention_audit: RetentionDefault = attrs.field(factory=lambda: RetentionDefault(30, 10, 14))
    retention_plays: RetentionDefault = attrs.field(factory=lambda: RetentionDefault(90, 100, 1))
    retention_filtered_plays: RetentionDefault = attrs.field(
        factory=lambda: RetentionDefault(30, 10, 3)
    )


@attrs.frozen
class Setting:
    """One row of the table: where a value comes from and how it is checked."""

    key: str  # dotted path in config.yml
    env: str  # environment variable the shipped config.yml reads
    default: str  # default when the variable is unset or empty
    field: str  # Settings attribute
    parse: Callable[[Any], Any]
    help: str


# -- parsers: each raises ValueError with a message that completes "KEY: <message>" ------------


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def parse_workers(value: Any) -> int:
    """FLOW8_WORKERS and ``serve --workers``: 1 to 256, or auto (the cores this process may
    use)."""
    text = _text(value).lower()
    if text == "auto":
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise ValueError(f"expected a number of workers from 1 to 256 or 'auto', got {text!r}")
    return int(text)


def _port(value: Any) -> int:
    text = _text(value)
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"expected a TCP port number, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"expected a TCP port between 1 and 65535, got {port}")
    return port


def _positive_number(unit: str) -> Callable[[Any], float]:
    """A parser of a positive, finite number of ``unit`` (named in its errors)."""

    def parse(value: Any) -> float:
        text = _text(value)
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"expected a number of {unit}, got {text!r}") from None
        if not math.isfinite(number) or number <= 0:
            raise ValueError(f"expected a positive number of {unit}, got {text!r}")
        return number

    return parse


_positive_seconds = _positive_number("seconds")
_positive_days = _positive_number("days")


def _positive_int(value: Any) -> int:
    text = _text(value)
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None
    if number <= 0:
        raise ValueError(f"expected a positive whole number, got {number}")
    return number


def _count(value: Any) -> int:
    """A whole number, 0 allowed (for limits, 0 means none)."""
    text = _text(value)
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None
    if number < 0:
        raise ValueError(f"expected a whole number of at least 0, got {number}")
    return number


def _rate(value: Any) -> float:
    """A number of at least 0 (for limits, 0 means none)."""
    text = _text(value)
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"expected a number of at least 0, got {text!r}")
    return number


def _host(value: Any) -> str:
    text = _text(value)
    if not text:
        raise ValueError("expected a host name or IP address to listen on, got nothing")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not all(part.isalnum() or "-" in part for part in text.split(".")):
            raise ValueError(f"expected a host name or IP address, got {text!r}") from None
    return text


def _port_range(value: Any) -> PortRange:
    text = _text(value)
    first_text, dash, last_text = text.partition("-")
    if not dash:
        raise ValueError(f"expected a range like 7701-7799, got {text!r}")
    first, last = _port(first_text), _port(last_text)
    if first > last:
        raise ValueError(f"the range {text!r} ends before it starts")
    return PortRange(first, last)


def _origins(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else _text(value).split(",")
    origins = tuple(_text(item).rstrip("/") for item in items if _text(item))
    for origin in origins:
        parts = urlsplit(origin)
        if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ValueError(f"expected origins like https://flow8.example.com, got {origin!r}")
    return origins


def _public_url(value: Any) -> str:
    url = _text(value).rstrip("/")
    parts = urlsplit(url)
    if url and (
        parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment
    ):
        raise ValueError(f"expected a URL like https://flow8.example.com, got {url!r}")
    return url


def _absolute_dirs(value: Any) -> tuple[Path, ...]:
    items = value if isinstance(value, list) else _text(value).split(",")
    roots: list[Path] = []
    for entry in (_text(item) for item in items):
        if not entry:
            continue
        if not entry.startswith("/"):
            raise ValueError(f"expected absolute directories, got {entry!r}")
        roots.append(Path(entry))
    return tuple(roots)


def _host_list(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else _text(value).split(",")
    return tuple(_text(item).lower() for item in items if _text(item))


def _networks(value: Any) -> tuple[IPv4Network | IPv6Network, ...]:
    items = value if isinstance(value, list) else _text(value).split(",")
    networks: list[IPv4Network | IPv6Network] = []
    for entry in (_text(item) for item in items):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError:
            raise ValueError(_bad_network(entry)) from None
    return tuple(networks)


def _bad_network(entry: str) -> str:
    try:
        loose = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return (
            "expected IP addresses or CIDR networks like 10.0.0.1, 10.0.0.0/8 or fd00::/8, "
            f"got {entry!r}"
        )
    return f"{entry!r} has host bits set: write the network ({loose}) or the address alone"


def _flag(value: Any) -> bool:
    text = _text(value).lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _durability(value: Any) -> Durability:
    text = _text(value).lower()
    if text == "full":
        return "full"
    if text == "normal":
        return "normal"
    raise ValueError(f"expected 'full' or 'normal', got {text!r}")


def _store_url(value: Any) -> str:
    text = _text(value)
    if text and urlsplit(text).scheme not in ("sqlite", "mongodb", "mongodb+srv"):
        scheme = urlsplit(text).scheme or "no scheme"
        raise ValueError(
            f"expected sqlite:///path/flow8.db or mongodb://host/db, got a URL with {scheme}"
        )
    return text


def _optional_secret(value: Any) -> str | None:
    return _text(value) or None


def _path(value: Any) -> Path:
    text = _text(value)
    if not text:
        raise ValueError("expected a directory path, got nothing")
    return Path(text).expanduser()


def _retention(value: Any) -> RetentionDefault:
    text = _text(value)
    parts = [p.strip() for p in text.split(",")]
    shape = "maxAgeDays,minEntries,enforcedMinimumDays (e.g. 30,10,14)"
    if len(parts) != 3:
        raise ValueError(f"expected {shape}, got {text!r}")
    try:
        max_age, floor = float(parts[0]), float(parts[2])
        minimum = int(parts[1])
    except ValueError:
        raise ValueError(f"expected {shape}, got {text!r}") from None
    if not (math.isfinite(max_age) and math.isfinite(floor)) or min(max_age, floor, minimum) < 0:
        raise ValueError(f"expected non-negative numbers {shape}, got {text!r}")
    if max_age < floor:
        raise ValueError(f"maxAgeDays ({parts[0]}) is below enforcedMinimumDays ({parts[2]})")
    return RetentionDefault(max_age, minimum, floor)


SETTINGS: tuple[Setting, ...] = (
    Setting("server.host", "SERVER_HOST", "127.0.0.1", "server_host", _host,
            "Address the HTTP API listens on (0.0.0.0 to accept remote clients)."),
    Setting("server.port", "SERVER_PORT", "4454", "server_port", _port,
            "HTTP port: REST API, WebSocket, UI, admin and health."),
    Setting("server.workers", "FLOW8_WORKERS", "1", "workers", parse_workers,
            "Instance processes `flow8 serve` runs, sharing its ports; auto = one per core."),
    Setting("instances.heartbeat_seconds", "FLOW8_HEARTBEAT_SECONDS", "5",
            "heartbeat_seconds", _positive_seconds,
            "How often an instance renews its registration; after 4 missed heartbeats its "
            "instance index (and channel port block) is free for another instance."),
    Setting("instances.play_lease_seconds", "FLOW8_PLAY_LEASE_SECONDS", "30",
            "play_lease_seconds", _positive_seconds,
            "How long a play stays with the instance running it without renewal (every third "
            "of it): an instance that dies has its plays resumed elsewhere after this long."),
    Setting("server.shutdown_grace_seconds", "SHUTDOWN_GRACE_SECONDS", "10",
            "shutdown_grace_seconds", _positive_seconds,
            "On SIGINT/SIGTERM the tree stops within this many seconds."),
    Setting("server.allowed_origins", "ALLOWED_ORIGINS", "", "allowed_origins", _origins,
            "Comma-separated browser origins allowed for CORS and WebSocket."),
    Setting("server.trusted_proxies", "TRUSTED_PROXIES", "", "trusted_proxies", _networks,
            "Comma-separated addresses or CIDR networks of reverse proxies whose "
            "X-Forwarded-For names the client; empty = the socket peer is the client."),
    Setting("server.max_body_bytes", "MAX_BODY_BYTES", "10485760", "max_body_bytes",
            _positive_int, "Largest request body accepted (413 beyond it)."),
    Setting("server.secure_cookies", "SECURE_COOKIES", "false", "secure_cookies", _flag,
            "true when clients reach flow8 over HTTPS (e.g. behind a TLS proxy): Secure "
            "cookies and HSTS."),
    Setting("server.public_url", "PUBLIC_URL", "", "public_url", _public_url,
            "The server's URL as browsers reach it (behind a proxy: https://flow8.example.com); "
            "OAuth2 redirect URIs are <PUBLIC_URL>/auth/callback. Empty = the URL each request "
            "came to."),
    Setting("mcp.port", "MCP_PORT", "4445", "mcp_port", _port,
            "Port of the MCP (Streamable HTTP) endpoint."),
    Setting("mcp.jwt_secret", "MCP_JWT_SECRET", "", "mcp_jwt_secret", _optional_secret,
            "HS256 secret of the JWTs MCP agents may present (besides API keys with the mcp "
            "scope); empty = API keys only."),
    Setting("mcp.jwt_issuer", "MCP_JWT_ISSUER", "flow8", "mcp_jwt_issuer", _text,
            "The iss an MCP JWT must carry."),
    Setting("mcp.public_url", "MCP_PUBLIC_URL", "", "mcp_public_url", _text,
            "The MCP endpoint's URL as agents reach it: the aud an MCP JWT must carry "
            "(empty = http://localhost:<MCP_PORT>/mcp)."),
    Setting("channels.port_range", "CHANNEL_PORT_RANGE", "7701-7799", "channel_port_range",
            _port_range, "Ports channels may listen on, inclusive."),
    Setting("channels.max_connections", "CHANNEL_MAX_CONNECTIONS", "100",
            "channel_max_connections", _positive_int,
            "Concurrent connections one channel accepts (a new channel's default)."),
    Setting("channels.rate_per_second", "CHANNEL_RATE_PER_SECOND", "50",
            "channel_rate_per_second", _rate,
            "Requests per second one client address may send to a channel (bursts of twice "
            "that; a new channel's default)."),
    Setting("data_dir", "FLOW8_DATA_DIR", "./data", "data_dir", _path,
            "Directory for the embedded database and generated keys."),
    Setting("store.url", "FLOW8_STORE_URL", "", "store_url", _store_url,
            "sqlite:///path/flow8.db or mongodb://...; empty = flow8.db in the data dir."),
    Setting("store.durability", "FLOW8_STORE_DURABILITY", "full", "store_durability",
            _durability, "full = fsync every commit; normal = WAL synchronous=NORMAL."),
    Setting("security.admin_token", "FLOW8_ADMIN_TOKEN", "", "admin_token", _optional_secret,
            "Bearer token for /admin/actors and /metrics; empty turns both off."),
    Setting("security.encryption_keys", "FLOW8_ENCRYPTION_KEYS", "", "encryption_keys",
            _optional_secret,
            "Key ring kid:base64key,...; empty on sqlite = a key generated in the data dir."),
    Setting("security.encrypt_play_data", "FLOW8_ENCRYPT_PLAY_DATA", "false",
            "encrypt_play_data", _flag,
            "true = plays' inputs and outputs and steps' arguments and outputs are stored "
            "encrypted (AES-256-GCM) instead of as plain JSON."),
    Setting("security.invitation_ttl_days", "FLOW8_INVITATION_TTL_DAYS", "7",
            "invitation_ttl_days", _positive_days,
            "Days an invitation to join a company can be accepted."),
    Setting("security.signin_free_failures", "FLOW8_SIGNIN_FREE_FAILURES", "5",
            "signin_free_failures", _count,
            "Wrong passwords an account may get from one source before that source waits "
            "(1 s, doubling)."),
    Setting("security.signin_max_delay_seconds", "FLOW8_SIGNIN_MAX_DELAY_SECONDS", "900",
            "signin_max_delay_seconds", _positive_seconds,
            "Longest wait between sign-in attempts of one account from one source."),
    Setting("security.signin_source_failures", "FLOW8_SIGNIN_SOURCE_FAILURES", "100",
            "signin_source_failures", _positive_int,
            "Wrong passwords one source may send, over all accounts, per 15 minutes (429)."),
    Setting("limits.max_step_bytes", "FLOW8_MAX_STEP_BYTES", "1000000", "max_step_bytes",
            _positive_int, "Largest arguments or output of one step, as JSON (the step fails)."),
    Setting("limits.max_play_crashes", "FLOW8_MAX_PLAY_CRASHES", "3", "max_play_crashes",
            _positive_int,
            "A play whose actor crashes this often fails with PLAY_CRASHED and its last error."),
    Setting("limits.max_descendant_plays", "FLOW8_MAX_DESCENDANT_PLAYS", "1000",
            "max_descendant_plays", _positive_int,
            "Plays one play may start through subflows, theirs included (PLAY_TREE_LIMIT)."),
    Setting("limits.company_plays_per_second", "FLOW8_COMPANY_PLAYS_PER_SECOND", "2000",
            "company_plays_per_second", _rate,
            "Plays a company may start per second on one instance (429 PLAY_RATE_LIMIT; "
            "subflows wait); 0 = no limit."),
    Setting("limits.company_running_plays", "FLOW8_COMPANY_RUNNING_PLAYS", "1000",
            "company_running_plays", _count,
            "Plays of a company running at once on one instance (more are queued); "
            "0 = no limit."),
    Setting("expressions.timeout_ms", "FLOW8_EXPRESSION_TIMEOUT_MS", "250",
            "expression_timeout_ms", _positive_int,
            "Time one expression may take (then its step fails with EXPRESSION_LIMIT)."),
    Setting("expressions.memory_mb", "FLOW8_EXPRESSION_MEMORY_MB", "64",
            "expression_memory_mb", _positive_int,
            "Memory one expression may allocate, counted as it builds values (EXPRESSION_LIMIT)."),
    Setting("expressions.max_depth", "FLOW8_EXPRESSION_MAX_DEPTH", "150",
            "expression_max_depth", _positive_int,
            "Nesting of one expression's evaluation, recursion included (EXPRESSION_LIMIT)."),
    Setting("expressions.threads", "FLOW8_EXPRESSION_THREADS", "2", "expression_threads",
            _positive_int,
            "Expressions too heavy for the event loop evaluated at once in worker threads "
            "(more wait their turn)."),
    Setting("components.local_roots", "FLOW8_COMPONENT_LOCAL_ROOTS", "",
            "component_local_roots", _absolute_dirs,
            "Comma-separated absolute directories storage/local and db/sqlite components may "
            "use; relative paths always live in <data_dir>/files/<company id>."),
    Setting("components.allowed_hosts", "FLOW8_COMPONENT_ALLOWED_HOSTS", "",
            "component_allowed_hosts", _host_list,
            "Comma-separated host names or CIDRs on internal networks (loopback, private) "
            "that db, email and storage components may connect to; every other internal "
            "address is refused, as for HTTP requests."),
    Setting("retention.interval_seconds", "FLOW8_RETENTION_INTERVAL_SECONDS", "120",
            "retention_interval_seconds", _positive_seconds,
            "How often the retention job deletes what the retention policies let go."),
    Setting("retention.batch_size", "FLOW8_RETENTION_BATCH_SIZE", "500",
            "retention_batch_size", _positive_int,
            "Plays (with their steps) or audit entries deleted per batch; the job yields "
            "between batches."),
    Setting("retention.audit", "FLOW8_RETENTION_AUDIT", "30,10,14", "retention_audit",
            _retention,
            "Default audit retention: maxAgeDays,minEntries,enforcedMinimumDays."),
    Setting("retention.plays", "FLOW8_RETENTION_PLAYS", "90,100,1", "retention_plays",
            _retention,
            "Default play retention: maxAgeDays,minEntries,enforcedMinimumDays."),
    Setting("retention.filtered_plays", "FLOW8_RETENTION_FILTERED_PLAYS", "30,10,3",
            "retention_filtered_plays", _retention,
            "Default retention of plays a filter stopped: maxAgeDays,minEntries,"
            "enforcedMinimumDays."),
)  # fmt: skip


def build_settings(values: Mapping[str, Any]) -> Settings:
    """Check every value of ``values`` (keyed by dotted key) and build :class:`Settings`."""
    parsed: dict[str, Any] = {}
    for setting in SETTINGS:
        try:
            parsed[setting.field] = setting.parse(values[setting.key])
        except ValueError as error:
            raise ConfigError(f"{setting.key} ({setting.env})", str(error)) from None
    data_dir: Path = parsed["data_dir"].resolve()
    parsed["data_dir"] = data_dir
    if not parsed["store_url"]:
        parsed["store_url"] = f"sqlite:///{data_dir / 'flow8.db'}"
    return Settings(**parsed)
