"""What the SQL providers that talk to a server (PostgreSQL, MySQL/MariaDB) share: reaching
only a host the operator opened, a small pool of connections, and messages that never carry
the password.

* **The host is checked before any connection**: the first call (and again after
  ``ADDRESS_TTL`` seconds) resolves ``host`` through ``flow8.outbound.resolve_checked``
  against the server's network policy (``ProviderEnv.network``): an internal address the
  operator did not open (``components.allowedHosts``) is refused, naming the host, and no
  socket is opened. The driver then connects to the *checked address* (never resolving the
  name again), so a DNS answer that changes between the check and the connection (rebinding)
  cannot aim it elsewhere.
* **Connections**: made in worker threads (``ProviderEnv.in_thread``) with a bounded connect
  timeout, kept idle for the next call (at most ``MAX_IDLE``), dropped when broken, when the
  checked address changes or when the provider closes. A call on an idle connection the
  server has since closed is retried once on a new one, before the statement is sent.
* **Every call is one transaction** that the provider opens with the component's statement
  timeout (and read-only mode) set again, so a statement that changed its session's settings
  cannot carry that into the next call.
* **Secrets**: the password is held in a :class:`Secret` (its repr is ``***``) and every
  message a provider raises passes through :meth:`ServerSqlProvider.scrub`; no message names
  the config beyond host, port, database and user.
"""

from __future__ import annotations

import abc
import re
import threading
import time
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from flow8.outbound import OutboundFailed, OutboundRefused, resolve_checked

from ._provider import ProviderEnv
from ._sql import Result, SqlProvider
from .exceptions import ComponentError, ComponentFailed, ComponentRefused

C = TypeVar("C")

CONNECT_TIMEOUT_SECONDS = 10
MAX_IDLE = 4
ADDRESS_TTL = 30.0

_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/|\()*", re.S)
_WORD = re.compile(r"[A-Za-z]+")
READ_STATEMENTS = frozenset({"SELECT", "VALUES", "TABLE", "SHOW"})


def first_keyword(sql: str) -> str:
    """The statement's first keyword, upper case, past comments and parentheses."""
    start = _LEADING.match(sql)
    found = _WORD.match(sql, start.end() if start else 0)
    return found.group(0).upper() if found else ""


def one_line(text: str) -> str:
    return " ".join(text.split())


class Secret:
    """A config secret: its repr and str are ``***`` (a traceback showing locals, a log line
    rendering an object, an f-string by mistake), its value only through :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__


class StaleConnection(Exception):
    """An idle connection turned out to be closed before the statement was sent (retried)."""


class ServerSqlProvider(SqlProvider, Generic[C]):
    """A SQL provider whose database is a server. Subclasses supply the driver's part:
    ``connect``, ``transaction`` (one call, start to commit, on one connection),
    ``rollback``, ``usable``, ``close`` and ``failure`` (a driver error as a component
    error)."""

    product: str  # "PostgreSQL", "MySQL"
    default_port: int

    def __init__(self, config: Mapping[str, Any], env: ProviderEnv) -> None:
        super().__init__(config, env)
        self.host = str(config["host"])
        self.port = int(config.get("port") or self.default_port)
        self.database = str(config["database"])
        self.user = str(config["user"])
        self.password = Secret(str(config.get("password") or ""))
        self.ssl_mode = str(config.get("sslMode") or "prefer")
        self._address: tuple[str, float] | None = None
        self._idle: list[tuple[str, C]] = []
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.where}>"

    @property
    def where(self) -> str:
        """Where the database is, as messages name it (never the password)."""
        return f"{self.host}:{self.port}"

    def scrub(self, message: str) -> str:
        """``message`` (one line) without the password, should a driver ever quote it."""
        text = one_line(message)
        secret = self.password.reveal()
        return text.replace(secret, "***") if secret else text

    # -- the driver's part --------------------------------------------------------------------

    @abc.abstractmethod
    def connect(self, address: str) -> C:
        """A new connection to ``address`` (the checked IP), or a driver error."""

    @abc.abstractmethod
    def transaction(
        self, conn: C, sql: str, params: Any, *, many: bool, fetch: int, read_only: bool
    ) -> tuple[Result, bool]:
        """Run one call as one transaction; (result, whether ``conn`` can be reused). Raise
        :class:`StaleConnection` if the connection was found closed before ``sql`` was
        sent."""

    @abc.abstractmethod
    def rollback(self, conn: C) -> None:
        """End a failed call's transaction (errors ignored)."""

    @abc.abstractmethod
    def usable(self, conn: C) -> bool:
        """Whether ``conn`` is open and idle, fit for the next call."""

    @abc.abstractmethod
    def close(self, conn: C) -> None:
        """Close ``conn`` (errors ignored)."""

    @abc.abstractmethod
    def failure(self, error: Exception, *, connecting: bool) -> ComponentError | None:
        """The component error for a driver ``error`` (message unscrubbed: the caller
        scrubs it), or None when ``error`` is not the driver's."""

    # -- calls --------------------------------------------------------------------------------

    async def checked_address(self) -> str:
        """The address to connect to: ``host`` resolved and checked against the network
        policy (cached ``ADDRESS_TTL`` seconds)."""
        cached = self._address
        now = time.monotonic()
        if cached is not None and now - cached[1] < ADDRESS_TTL:
            return cached[0]
        try:
            addresses = await resolve_checked(
                self.host, self.port, self.env.network, self.env.resolver
            )
        except OutboundRefused as e:
            raise ComponentRefused(
                f"{self.product} host {self.host!r} {e.reason}: this server does not connect "
                "there unless an operator opens it (components.allowedHosts)"
            ) from None
        except OutboundFailed as e:
            raise ComponentFailed(
                f"cannot reach {self.product} at {self.where}: {e.detail}"
            ) from None
        address = str(addresses[0])
        self._address = (address, now)
        return address

    async def _run(self, sql: str, params: Any, *, many: bool = False, fetch: int = 0) -> Result:
        address = await self.checked_address()
        read_only = self.read_only
        result: Result = await self.env.in_thread(
            lambda: self.call_sync(
                address, sql, params, many=many, fetch=fetch, read_only=read_only
            )
        )
        return result

    def execute_sync(
        self, sql: str, params: Any, *, many: bool, fetch: int, read_only: bool
    ) -> Result:
        """One call on the last checked address (:meth:`_run` checks it first)."""
        if self._address is None:
            raise ComponentFailed(f"{self.product} host {self.host!r} has not been checked yet")
        return self.call_sync(
            self._address[0], sql, params, many=many, fetch=fetch, read_only=read_only
        )

    def call_sync(
        self, address: str, sql: str, params: Any, *, many: bool, fetch: int, read_only: bool
    ) -> Result:
        conn, reused = self._acquire(address)
        keep = False
        try:
            try:
                result, keep = self.transaction(
                    conn, sql, params, many=many, fetch=fetch, read_only=read_only
                )
            except StaleConnection:
                if not reused:
                    raise
                self.close(conn)
                conn = self._new(address)
                result, keep = self.transaction(
                    conn, sql, params, many=many, fetch=fetch, read_only=read_only
                )
            return result
        except Exception as e:
            if isinstance(e, StaleConnection):
                error: ComponentError | None = ComponentFailed(
                    f"{self.product} at {self.where} closed the connection: {e}"
                )
            elif isinstance(e, ComponentError):
                error = e
            else:
                error = self.failure(e, connecting=False)
            if error is None:
                raise
            self.rollback(conn)
            keep = self.usable(conn)
            raise type(error)(self.scrub(error.detail)) from None
        finally:
            self._release(address, conn, keep)

    def _new(self, address: str) -> C:
        try:
            return self.connect(address)
        except Exception as e:
            error = self.failure(e, connecting=True)
            if error is None:
                raise
            raise type(error)(self.scrub(error.detail)) from None

    def _acquire(self, address: str) -> tuple[C, bool]:
        stale: list[C] = []
        found: C | None = None
        with self._lock:
            while self._idle:
                idle_address, conn = self._idle.pop()
                if idle_address == address:
                    found = conn
                    break
                stale.append(conn)
        for conn in stale:
            self.close(conn)
        if found is not None:
            return found, True
        return self._new(address), False

    def _release(self, address: str, conn: C, keep: bool) -> None:
        if keep:
            with self._lock:
                if not self._closed and len(self._idle) < MAX_IDLE:
                    self._idle.append((address, conn))
                    return
        self.close(conn)

    async def check(self) -> str:
        result = await self._run(self.version_sql, [], fetch=1)
        version = str(result.rows[0][0]) if result.rows else "?"
        return (
            f"connected: {self.describe(version)} at {self.where}, database "
            f"{self.database!r} as {self.user!r}"
        )

    version_sql = "SELECT version()"

    def describe(self, version: str) -> str:
        """The server as the connectivity check names it, from its version string."""
        return f"{self.product} {version.split()[0] if version.split() else version}"

    async def aclose(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        if idle:
            await self.env.in_thread(lambda: [self.close(conn) for _, conn in idle])
