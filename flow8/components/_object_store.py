"""What the object-store providers (``storage/s3``, ``storage/gcs``) share: the guard on the
hosts they send requests to, the listing rules and the presign arguments.

**The guard.** A company's config names the hosts its provider talks to (an ``endpoint``, a
service account's ``token_uri``), so each is checked against the server's network policy
(``ProviderEnv.network``, config ``components.allowedHosts``) before the first request, and
again every :data:`RECHECK_SECONDS`: an internal address is refused unless an operator
opened it. The SDKs (botocore, requests) then connect on their own, so every request they
are about to send passes :meth:`Guard.route` first, in the worker thread:

* a request to any other origin (a redirect, a URL the server handed back) is refused;
* over plain HTTP the request goes to the address that was checked (the ``Host`` header
  keeps the name, so signatures still match): a DNS answer that changes after the check
  (rebinding to ``169.254.169.254``) is never used;
* over HTTPS the SDK resolves the name itself; the certificate check binds the connection
  to that name, so a rebound answer meets a server that cannot prove it.

**Keys and listings** follow ``storage/local`` (``_paths.clean_key``): a key that would not
survive those rules (``a//b``, ``../x``, a "folder" marker ending in ``/``, written by another
tool) is left out of listings, since no operation could name it.
"""

from __future__ import annotations

import fnmatch
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import trio

from flow8.outbound import OutboundFailed, OutboundRefused, parse_ip_host, resolve_checked

from ._paths import clean_key
from ._provider import ProviderEnv
from ._storage_local import MAX_LISTED, MAX_READ_BYTES, mime_type
from .exceptions import ComponentConfigError, ComponentFailed, ComponentRefused

__all__ = [
    "MAX_LISTED",
    "MAX_PRESIGN_SECONDS",
    "MAX_READ_BYTES",
    "Guard",
    "GuardRefused",
    "Origin",
    "entry",
    "expires_at",
    "listed",
    "mime_of",
    "parse_origin",
    "presign_args",
]

MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # what SigV4 and GCS V4 signatures allow
RECHECK_SECONDS = 300.0
_DEFAULT_PORTS = {"http": 80, "https": 443}
_GENERIC_TYPES = {"binary/octet-stream", "application/octet-stream", ""}


class GuardRefused(Exception):
    """A request the guard stopped before it left (not an ``OSError``, so no SDK retries it)."""


@attrs.frozen
class Origin:
    """Where requests may go: scheme, host (lower case, IPv6 without brackets) and port.
    ``label`` names it in messages (``endpoint``, ``token_uri``)."""

    scheme: str
    host: str
    port: int
    label: str

    @property
    def host_header(self) -> str:
        """The ``Host`` an HTTP client sends to this origin (no port when it is the
        scheme's default, as the SDKs sign it)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if _DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"


def parse_origin(url: object, label: str) -> Origin:
    """The origin of a configured URL (``http(s)://host[:port][/path]``); refused with
    ``COMPONENT_CONFIG`` when it is anything else. Never quotes a userinfo part."""
    if not isinstance(url, str) or not url.strip():
        raise ComponentConfigError(f"{label} must be an http(s) URL")
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ComponentConfigError(f"{label} is not a valid URL") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ComponentConfigError(f"{label} must be an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ComponentConfigError(
            f"{label} must not carry a user name or password: use the credential fields"
        )
    if parts.query or parts.fragment:
        raise ComponentConfigError(f"{label} must not have a query or a fragment")
    return Origin(parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme], label)


class Guard:
    """The origins one provider may send requests to, checked before use (module
    docstring). :meth:`check` runs on the event loop before any worker-thread call;
    :meth:`route` runs in the worker thread for each request the SDK sends."""

    def __init__(self, origins: Sequence[Origin], env: ProviderEnv) -> None:
        self.origins = tuple(origins)
        self._env = env
        self._lock = trio.Lock()
        self._checked_at: float | None = None
        # (scheme, host, port) -> the checked address to connect to (plain HTTP to a name),
        # or None (HTTPS, or an address already)
        self._routes: dict[tuple[str, str, int], str | None] = {}

    async def check(self) -> None:
        if self._fresh():
            return
        async with self._lock:
            if self._fresh():
                return
            routes: dict[tuple[str, str, int], str | None] = {}
            for origin in self.origins:
                routes[(origin.scheme, origin.host, origin.port)] = await self._check(origin)
            self._routes = routes
            self._checked_at = time.monotonic()

    def _fresh(self) -> bool:
        return (
            self._checked_at is not None and time.monotonic() - self._checked_at < RECHECK_SECONDS
        )

    async def _check(self, origin: Origin) -> str | None:
        env = self._env
        try:
            addresses = await resolve_checked(origin.host, origin.port, env.network, env.resolver)
        except OutboundRefused as e:
            raise ComponentRefused(
                f"the {origin.label} host {origin.host!r} is not open to components "
                f"({e.reason}); an operator can open it in components.allowedHosts"
            ) from None
        except OutboundFailed as e:
            raise ComponentFailed(f"the {origin.label} host {origin.host!r}: {e.detail}") from None
        literal = parse_ip_host(origin.host)
        if origin.scheme == "https" or (literal is not None and str(literal) == origin.host):
            return None
        return str(addresses[0])

    def route(self, url: str) -> tuple[str, str | None]:
        """(the URL to connect to, the ``Host`` header to send or None to leave it) for a
        request the SDK is about to send; raises :class:`GuardRefused` for any origin that
        was not checked."""
        try:
            parts = urllib.parse.urlsplit(url)
            scheme, host = parts.scheme, (parts.hostname or "").lower()
            port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
        except ValueError:
            raise GuardRefused("a request to a malformed URL was refused") from None
        for (r_scheme, r_host, r_port), address in self._routes.items():
            if (r_scheme, r_port) != (scheme, port):
                continue
            if host == r_host:
                if address is None:
                    return url, None
                origin = Origin(scheme, host, port, "")
                shown = f"[{address}]" if ":" in address else address
                pinned = parts._replace(netloc=f"{shown}:{port}")
                return urllib.parse.urlunsplit(pinned), origin.host_header
            if address is not None and host == address:
                return url, None  # already routed (a retry of the same request)
        raise GuardRefused(
            f"a request to {scheme}://{host}:{port} was refused: only the configured "
            "hosts are reached (a redirect elsewhere is not followed)"
        )


def listed(key: str, pattern: str) -> bool:
    """Whether a listed key is shown: a key the path rules keep as it is, whose name (its
    last part) matches ``pattern``."""
    if not key or key.endswith("/"):
        return False
    try:
        if clean_key(key) != key:
            return False
    except ComponentRefused:
        return False
    return fnmatch.fnmatch(key.rpartition("/")[2], pattern)


def entry(key: str, size: int | None, modified: datetime | None) -> dict[str, Any]:
    """A listing's entry, as ``storage/local`` answers it."""
    return {
        "path": key,
        "size": int(size or 0),
        "modifiedAt": round(modified.timestamp(), 3) if modified is not None else None,
    }


def mime_of(key: str, stored: str | None) -> str:
    """The object's own content type, unless it is the generic one a store gives an
    object uploaded without one: then the type its name suggests (as ``storage/local``)."""
    if stored and stored.strip().lower() not in _GENERIC_TYPES:
        return stored
    return mime_type(key)


def presign_args(input: Mapping[str, Any]) -> tuple[str, int, str]:
    """(key, seconds, method) of a ``presign`` input, refused when out of range."""
    key = clean_key(input.get("path"))
    seconds = input.get("expiresSeconds", 3600)
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise ComponentRefused("expiresSeconds must be a whole number of seconds")
    if not 1 <= seconds <= MAX_PRESIGN_SECONDS:
        raise ComponentRefused(f"expiresSeconds must be between 1 and {MAX_PRESIGN_SECONDS}")
    method = input.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in ("GET", "PUT"):
        raise ComponentRefused("method must be GET or PUT")
    return key, seconds, method.upper()


def expires_at(issued: datetime, seconds: int) -> str:
    """When a URL issued at ``issued`` stops working: ISO 8601 UTC, to the second."""
    return (issued + timedelta(seconds=seconds)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
