"""What the object-store providers (``storage/s3``, ``storage/gcs``) share: the operations
themselves (:class:`ObjectStorage`), the guard on the hosts they send requests to, the
listing rules and the presign arguments.

**The operations** are written once, in :class:`ObjectStorage`: the path checks, the input
and output shapes of ``storage/local`` (plus ``presign`` and ``removeTree``), the worker
thread every SDK call runs in and the mapping of its failures. A provider supplies only its
SDK's primitives (get, put, size, copy, delete, list under a prefix, sign), its client, and
what its SDK's errors mean.

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

import abc
import fnmatch
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import attrs
import trio

from flow8.outbound import OutboundFailed, OutboundRefused, parse_ip_host, resolve_checked

from ._paths import clean_key
from ._provider import Operation, ProviderEnv
from ._storage_local import MAX_LISTED, MAX_READ_BYTES, mime_type
from .exceptions import ComponentConfigError, ComponentError, ComponentFailed, ComponentRefused

__all__ = [
    "MAX_LISTED",
    "MAX_PRESIGN_SECONDS",
    "MAX_READ_BYTES",
    "Guard",
    "GuardRefused",
    "ObjectStorage",
    "Origin",
    "entry",
    "expires_at",
    "listed",
    "mime_of",
    "parse_origin",
    "presign_args",
    "refuse_larger",
]

MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # what SigV4 and GCS V4 signatures allow
RECHECK_SECONDS = 300.0
_DEFAULT_PORTS = {"http": 80, "https": 443}
_GENERIC_TYPES = {"binary/octet-stream", "application/octet-stream", ""}

T = TypeVar("T")


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


def refuse_larger(key: str, size: int) -> None:
    """Refused when an object of ``size`` bytes is more than ``read`` answers."""
    if size > MAX_READ_BYTES:
        raise ComponentRefused(f"{key!r} is larger than {MAX_READ_BYTES} bytes")


class ObjectStorage(abc.ABC):
    """A bucket answering the operations of ``storage/local`` with the same shapes (``read``,
    ``write``, ``move``, ``copy``, ``delete``, ``exists``, ``list``), plus ``presign`` and
    ``removeTree``; ``write`` answers the ``bucket`` too.

    Each operation is written here once: its keys pass ``clean_key`` before anything is
    sent, its client is ready (the guard checked, the client made at first use), its SDK
    calls run in a worker thread (:meth:`_run`) and their failures become a
    :class:`~flow8.components.exceptions.ComponentError` naming the bucket and the key.

    A provider supplies the rest, each primitive called in a worker thread with the
    *handle* :meth:`_handle` makes of its client (the client itself, or a bucket object):
    :meth:`_get`, :meth:`_put`, :meth:`_size`, :meth:`_copy_object`, :meth:`_delete_object`,
    :meth:`_delete_existing`, :meth:`_objects`, :meth:`_sign` and :meth:`_bucket_exists`;
    :meth:`_make_client`; :attr:`sdk_errors` with :meth:`_failure`, what they mean; and
    :meth:`aclose`.
    """

    #: what names the store in messages (``S3 answered ...``)
    service: ClassVar[str]
    #: the exceptions its SDK raises for a failed call (:meth:`_failure` says what each means)
    sdk_errors: ClassVar[tuple[type[Exception], ...]]

    def __init__(self, bucket: str, env: ProviderEnv, guard: Guard | None) -> None:
        self.bucket = bucket
        self._env = env
        self._guard = guard
        self._client: Any = None
        self._lock = trio.Lock()
        self.operations: Mapping[str, Operation] = {
            "read": self._read,
            "write": self._write,
            "move": self._move,
            "copy": self._copy,
            "delete": self._delete,
            "exists": self._exists,
            "list": self._list,
            "presign": self._presign,
            "removeTree": self._remove_tree,
        }

    # -- what a provider supplies ---------------------------------------------------------

    @property
    @abc.abstractmethod
    def _where(self) -> str:
        """Where the bucket is, in messages (``S3 (us-east-1)``, an endpoint's URL)."""

    @property
    @abc.abstractmethod
    def _cannot_sign(self) -> str | None:
        """Why ``presign`` is refused (the credentials it needs are not set), or None."""

    @abc.abstractmethod
    def _make_client(self) -> Any:
        """The SDK's client, made at first use (in a worker thread)."""

    def _handle(self, client: Any) -> Any:
        """What the primitives are handed: the client itself, unless a provider says."""
        return client

    @abc.abstractmethod
    def _failure(self, e: Exception, key: str | None) -> ComponentError:
        """What one of :attr:`sdk_errors` tells the flow, for the object ``key`` (None: the
        bucket itself)."""

    @abc.abstractmethod
    def _get(self, handle: Any, key: str) -> tuple[bytes, str | None]:
        """The object's content (at most ``MAX_READ_BYTES + 1`` bytes: a larger one is
        refused with :func:`refuse_larger`, before its body where the store says its size)
        and its stored content type."""

    @abc.abstractmethod
    def _put(self, handle: Any, key: str, content: bytes, content_type: str) -> None:
        """Store ``content`` as the object ``key``."""

    @abc.abstractmethod
    def _size(self, handle: Any, key: str) -> int | None:
        """The object's size, or None when there is none."""

    @abc.abstractmethod
    def _copy_object(self, handle: Any, source: str, destination: str) -> int | None:
        """Copy ``source`` to another key: its size, or None when there is no ``source``."""

    @abc.abstractmethod
    def _delete_object(self, handle: Any, key: str) -> None:
        """Delete the object ``key`` (one that was just copied)."""

    @abc.abstractmethod
    def _delete_existing(self, handle: Any, key: str) -> bool:
        """Delete the object ``key`` if there is one: whether there was."""

    @abc.abstractmethod
    def _objects(
        self, handle: Any, prefix: str, *, recursive: bool, limit: int | None = None
    ) -> Iterator[tuple[str, int | None, datetime | None]]:
        """(key, size, modified) of the objects whose keys start with ``prefix`` (only
        those not in a further "folder" unless ``recursive``; at most ``limit``)."""

    def _delete_under(self, handle: Any, prefix: str) -> None:
        """Every object whose key starts with ``prefix`` deleted (one at a time, unless the
        store deletes a batch)."""
        for key, _, _ in self._objects(handle, prefix, recursive=True):
            self._delete_existing(handle, key)  # one gone already is as good

    @abc.abstractmethod
    def _sign(self, handle: Any, key: str, seconds: int, method: str) -> str:
        """A URL that lets whoever holds it ``method`` (GET or PUT) the object ``key`` for
        ``seconds``."""

    @abc.abstractmethod
    def _bucket_exists(self, handle: Any) -> bool:
        """Whether the bucket is there (the provider's connectivity check: one request)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the client and its connections."""

    # -- the client and its failures ------------------------------------------------------

    async def _ready(self) -> Any:
        if self._guard is not None:
            await self._guard.check()
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await self._run(self._make_client)
        return self._handle(self._client)

    async def _run(self, fn: Callable[[], T], key: str | None = None) -> T:
        """``fn`` in a worker thread, its SDK's failures said for the object ``key`` (None:
        the bucket)."""
        try:
            result: T = await self._env.in_thread(fn)
        except ComponentError:
            raise
        except GuardRefused as e:
            raise ComponentRefused(str(e)) from None
        except self.sdk_errors as e:
            raise self._failure(e, key) from None
        return result

    def _what(self, key: str | None) -> str:
        return f"{key!r} in bucket {self.bucket!r}" if key else f"bucket {self.bucket!r}"

    def _no_file(self, key: str | None) -> ComponentFailed:
        return ComponentFailed(f"no such file: {key!r} (bucket {self.bucket!r})")

    def _no_bucket(self) -> ComponentFailed:
        return ComponentFailed(f"no such bucket {self.bucket!r} at {self._where}")

    def _denied(self, key: str | None) -> ComponentFailed:
        return ComponentFailed(f"access denied to {self._what(key)}")

    def _answered(self, code: object, message: object, key: str | None) -> ComponentFailed:
        """The store refused the call with an error the other mappings do not name."""
        said = f"{self.service} answered {code} for {self._what(key)}: {str(message)[:300]}"
        return ComponentFailed(said.rstrip(": "))

    def _unreachable(self) -> ComponentFailed:
        return ComponentFailed(
            f"could not connect to {self._where}: nothing answered (is it running and reachable?)"
        )

    def _too_slow(self, key: str | None) -> ComponentFailed:
        return ComponentFailed(f"{self._where} did not answer in time ({self._what(key)})")

    def _request_failed(self, e: Exception, key: str | None) -> ComponentFailed:
        return ComponentFailed(
            f"{self.service} request on {self._what(key)} failed ({type(e).__name__})"
        )

    # -- the operations -------------------------------------------------------------------

    async def _read(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key = clean_key(input.get("path"))
        handle = await self._ready()

        def read() -> tuple[bytes, str | None]:
            data, stored_type = self._get(handle, key)
            refuse_larger(key, len(data))
            return data, stored_type

        content, stored_type = await self._run(read, key)
        return {
            "path": key,
            "content": content,
            "size": len(content),
            "mimeType": mime_of(key, stored_type),
        }

    async def _write(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key = clean_key(input.get("path"))
        content = bytes(input.get("content") or b"")
        content_type = mime_of(key, input.get("contentType"))
        handle = await self._ready()
        await self._run(lambda: self._put(handle, key, content, content_type), key)
        return {"path": key, "size": len(content), "bucket": self.bucket}

    def _copy_sync(self, handle: Any, source: str, destination: str) -> int:
        if source == destination:  # a copy onto itself changes nothing (S3 refuses one)
            size = self._size(handle, source)
        else:
            size = self._copy_object(handle, source, destination)
        if size is None:
            raise self._no_file(source)
        return size

    async def _move(self, input: Mapping[str, Any]) -> dict[str, Any]:
        source = clean_key(input.get("source"))
        destination = clean_key(input.get("destination"))
        handle = await self._ready()

        def move() -> None:
            self._copy_sync(handle, source, destination)
            if source != destination:
                self._delete_object(handle, source)

        await self._run(move, source)
        return {"source": source, "destination": destination}

    async def _copy(self, input: Mapping[str, Any]) -> dict[str, Any]:
        source = clean_key(input.get("source"))
        destination = clean_key(input.get("destination"))
        handle = await self._ready()
        size = await self._run(lambda: self._copy_sync(handle, source, destination), source)
        return {"source": source, "destination": destination, "size": size}

    async def _delete(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key = clean_key(input.get("path"))
        handle = await self._ready()
        deleted = await self._run(lambda: self._delete_existing(handle, key), key)
        return {"path": key, "deleted": deleted}

    async def _exists(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key = clean_key(input.get("path"))
        handle = await self._ready()

        def exists() -> dict[str, Any]:
            size = self._size(handle, key)
            if size is not None:
                return {"path": key, "exists": True, "size": size, "isDirectory": False}
            under = self._objects(handle, f"{key}/", recursive=True, limit=1)
            if next(under, None) is not None:
                return {"path": key, "exists": True, "size": 0, "isDirectory": True}
            return {"path": key, "exists": False}

        return await self._run(exists, key)

    async def _list(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key = clean_key(input.get("path") or "", allow_root=True)
        pattern = str(input.get("pattern") or "*")
        recursive = bool(input.get("recursive"))
        handle = await self._ready()

        def listing() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            prefix = f"{key}/" if key else ""
            for name, size, modified in self._objects(handle, prefix, recursive=recursive):
                if listed(name, pattern):
                    found.append(entry(name, size, modified))
                    if len(found) >= MAX_LISTED:
                        return found
            return found

        files = sorted(await self._run(listing), key=lambda f: f["path"])
        return {"path": key, "files": files, "count": len(files)}

    async def _remove_tree(self, input: Mapping[str, Any]) -> dict[str, Any]:
        """Every object under the folder ``path`` deleted (a play's temporary directory)."""
        key = clean_key(input.get("path"))
        handle = await self._ready()
        await self._run(lambda: self._delete_under(handle, f"{key}/"), key)
        return {"path": key, "removed": True}

    async def _presign(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key, seconds, method = presign_args(input)
        if self._cannot_sign is not None:
            raise ComponentRefused(self._cannot_sign)
        handle = await self._ready()
        issued = datetime.now(UTC).replace(microsecond=0)
        url = await self._run(lambda: self._sign(handle, key, seconds, method), key)
        return {"url": url, "expiresAt": expires_at(issued, seconds)}

    # -- the provider ---------------------------------------------------------------------

    async def check(self) -> str:
        handle = await self._ready()
        if not await self._run(lambda: self._bucket_exists(handle)):
            raise self._no_bucket()
        return f"connected: bucket {self.bucket}"
