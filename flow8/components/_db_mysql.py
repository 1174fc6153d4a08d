"""``db/mysql``: MySQL or MariaDB through PyMySQL (the ``mysql`` extra).

Connects to the host's checked address after the network policy allowed it
(``_sql_server``). Each call is one transaction on a pooled connection: the session's
statement time limit and read-only mode set again (MariaDB ``max_statement_time``, MySQL
``max_execution_time``, which MySQL applies to ``SELECT`` only; a client-side read timeout
of the limit plus ``READ_TIMEOUT_SLACK`` seconds backs both), ``START TRANSACTION [READ
ONLY]``, the statement, ``COMMIT``. The database itself refuses a write on a read-only
component, DDL included (the session is read-only too).

One statement per call (multi-statements are off), values escaped by PyMySQL as parameters
(``%s`` / ``%(name)s``); ``LOAD DATA LOCAL`` is off, so a server cannot ask for this
server's files. Rows are read unbuffered: a read (``SELECT``, ``VALUES``, ``TABLE``,
``SHOW``) past the row limit drops its connection instead of reading the rest; any other
statement's rows (MariaDB's ``RETURNING``) are read to the end so that it completes.

TLS (``sslMode``): ``disable``; ``prefer`` (the default: TLS when the server offers it,
unverified); ``require`` (TLS or fail, unverified); ``verify-ca``; ``verify-full`` (the
certificate must name ``host``, although the connection goes to its checked address).
"""

from __future__ import annotations

import contextlib
import re
import ssl
from collections.abc import Mapping
from typing import Any

import attrs
import pymysql  # type: ignore[import-untyped]
import pymysql.cursors  # type: ignore[import-untyped]

from ._provider import ProviderEnv
from ._sql import Dialect, Result, on_duplicate_key_update
from ._sql_server import (
    CONNECT_TIMEOUT_SECONDS,
    READ_STATEMENTS,
    ServerSqlProvider,
    StaleConnection,
    first_keyword,
    one_line,
)
from .exceptions import ComponentError, ComponentFailed

MYSQL = Dialect("mysql", "`", "%s", on_duplicate_key_update)
READ_TIMEOUT_SLACK = 10
MARIADB_VERSION = re.compile(r"(\d+)\.(\d+)\.\d+-MariaDB")

ACCESS_DENIED = 1045
TIMEOUTS = (1969, 3024)  # MariaDB max_statement_time, MySQL max_execution_time
GONE = (2006, 2013, 2055)  # server has gone away, lost connection, lost connection at reading


@attrs.define
class Connection:
    """A PyMySQL connection and how its server names the per-call session settings."""

    raw: Any
    session_sql: str
    timeout_value: float | int


class _NamedContext(ssl.SSLContext):
    """Verifies the certificate against ``host`` while PyMySQL connects to an address."""

    server_name: str = ""

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)


def _reading(cursor: Any) -> bool:
    """Whether an unbuffered cursor's result still has rows on the wire."""
    pending = getattr(cursor, "_result", None)
    return bool(pending is not None and getattr(pending, "unbuffered_active", False))


def _params(params: Any) -> Any:
    """None for no parameters: a statement without any keeps its ``%`` characters."""
    return params if params else None


class MysqlProvider(ServerSqlProvider[Connection]):
    dialect = MYSQL
    product = "MySQL"
    default_port = 3306
    version_sql = "SELECT VERSION()"

    def _tls(self) -> ssl.SSLContext | None:
        if self.ssl_mode in ("disable", "prefer"):
            return None  # prefer: PyMySQL's own preferred mode (TLS when offered)
        if self.ssl_mode == "require":
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        context = _NamedContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_default_certs()
        context.server_name = self.host
        context.check_hostname = self.ssl_mode == "verify-full"
        return context

    def connect(self, address: str) -> Connection:
        raw = pymysql.connect(
            host=address,
            port=self.port,
            user=self.user,
            password=self.password.reveal(),
            database=self.database,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=self.timeout_ms / 1000 + READ_TIMEOUT_SLACK,
            write_timeout=self.timeout_ms / 1000 + READ_TIMEOUT_SLACK,
            autocommit=True,
            charset="utf8mb4",
            ssl=self._tls(),
            ssl_disabled=self.ssl_mode == "disable",
            local_infile=False,
            program_name="flow8",
        )
        if self.ssl_mode not in ("prefer", "disable") and not isinstance(raw._sock, ssl.SSLSocket):
            raw.close()
            raise ComponentFailed(
                f"MySQL at {self.where} does not offer TLS (sslMode {self.ssl_mode})"
            )
        info = str(raw.get_server_info())
        mariadb = MARIADB_VERSION.search(info)
        if mariadb is not None:
            version = (int(mariadb.group(1)), int(mariadb.group(2)))
            read_only = "transaction_read_only" if version >= (11, 1) else "tx_read_only"
            sql = f"SET @@SESSION.max_statement_time = %s, @@SESSION.{read_only} = %s"
            return Connection(raw, sql, self.timeout_ms / 1000)
        sql = "SET @@SESSION.max_execution_time = %s, @@SESSION.transaction_read_only = %s"
        return Connection(raw, sql, self.timeout_ms)

    def transaction(
        self, conn: Connection, sql: str, params: Any, *, many: bool, fetch: int, read_only: bool
    ) -> tuple[Result, bool]:
        raw = conn.raw
        try:
            with raw.cursor() as cursor:
                cursor.execute(conn.session_sql, (conn.timeout_value, int(read_only)))
        except pymysql.err.OperationalError as e:
            if e.args and e.args[0] in GONE:
                raise StaleConnection(one_line(str(e.args[-1]))) from None
            raise
        raw.query("START TRANSACTION READ ONLY" if read_only else "START TRANSACTION")
        if many:
            with raw.cursor() as cursor:
                cursor.executemany(sql, params)
                result = Result(rowcount=max(cursor.rowcount, 0))
            raw.commit()
            return result, True
        cursor = pymysql.cursors.SSCursor(raw)
        try:
            cursor.execute(sql, _params(params))
            result = Result()
            if cursor.description:
                result.columns = [d[0] for d in cursor.description]
                rows = list(cursor.fetchmany(fetch + 1)) if fetch else []
                result.truncated = len(rows) > fetch
                result.rows = rows[:fetch]
                if result.truncated and first_keyword(sql) in READ_STATEMENTS:
                    self._abandon(conn, cursor)  # the server stops sending: nothing to keep
                    return result, False
            else:
                result.rowcount = max(cursor.rowcount, 0)
            cursor.close()  # reads what is left, so the statement completes
        except BaseException:
            if _reading(cursor):  # failed mid-result: the connection's state is unknown
                self._abandon(conn, cursor)
            raise
        raw.commit()
        return result, True

    def _abandon(self, conn: Connection, cursor: Any) -> None:
        """Drop ``conn`` in the middle of a result. PyMySQL would read every remaining row
        when the cursor is closed or collected; it is told the result is over first."""
        pending = getattr(cursor, "_result", None)
        if pending is not None:
            pending.unbuffered_active = False
        cursor.connection = None
        self.close(conn)

    def rollback(self, conn: Connection) -> None:
        try:
            if conn.raw.open:
                conn.raw.rollback()
        except pymysql.err.MySQLError:
            self.close(conn)

    def usable(self, conn: Connection) -> bool:
        return bool(conn.raw.open)

    def close(self, conn: Connection) -> None:
        with contextlib.suppress(pymysql.err.Error):
            conn.raw.close()

    def failure(self, error: Exception, *, connecting: bool) -> ComponentError | None:
        if not isinstance(error, pymysql.err.MySQLError):
            return None
        args = error.args
        code = args[0] if args and isinstance(args[0], int) else None
        text = one_line(str(args[1] if len(args) > 1 else error))
        if connecting:
            if code == ACCESS_DENIED:
                return ComponentFailed(
                    f"authentication failed: MySQL at {self.where} refused user "
                    f"{self.user!r} (wrong user or password): {text}"
                )
            return ComponentFailed(f"cannot connect to MySQL at {self.where}: {text}")
        if code in TIMEOUTS:
            return ComponentFailed(
                f"the statement ran longer than {self.timeout_ms} ms (statementTimeoutMs) "
                f"and was stopped: {text}"
            )
        if code in GONE:
            return ComponentFailed(
                f"MySQL at {self.where} did not answer in time or dropped the connection: {text}"
            )
        suffix = f" (error {code})" if code is not None else ""
        return ComponentFailed(f"mysql: {text}{suffix}")

    def describe(self, version: str) -> str:
        if "MariaDB" in version:
            return f"MariaDB {version.split('-')[0]}"
        return f"MySQL {version}"


def open_mysql(config: Mapping[str, Any], env: ProviderEnv) -> MysqlProvider:
    return MysqlProvider(config, env)
