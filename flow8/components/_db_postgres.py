"""``db/postgres``: PostgreSQL through psycopg 3 (the ``postgres`` extra).

Connects to the host's checked address (``hostaddr``; ``host`` stays the name, for TLS
verification) after the network policy allowed it (``_sql_server``). Each call is one
transaction on a pooled connection: ``BEGIN [READ ONLY]`` with ``SET LOCAL
statement_timeout`` (PostgreSQL itself refuses a write on a read-only component and stops a
statement past the timeout), the statement, ``COMMIT``.

The statement always travels on the extended protocol: one statement per call, values as
parameters (``%s`` / ``%(name)s``), so a statement cannot end the read-only transaction and
write after it. A read (``SELECT``, ``VALUES``, ``TABLE``, ``SHOW``) is streamed: rows are
pulled as they come and the statement is cancelled past the row limit, so a query on a huge
table costs ``limit`` rows of memory; any other statement's rows (``RETURNING``) are buffered
and cut at the limit, the statement having run to its end. A statement that cannot run in a
transaction block (``VACUUM``, ``CREATE DATABASE``) is refused by PostgreSQL.

libpq never reads the server's own credentials for a tenant's host: the password is always
given (empty when the config has none) and the password file is ``/dev/null``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator, Mapping
from typing import Any, cast

import psycopg
from psycopg import errors, pq

from ._provider import ProviderEnv
from ._sql import Dialect, Result, on_conflict_update
from ._sql_server import (
    CONNECT_TIMEOUT_SECONDS,
    READ_STATEMENTS,
    ServerSqlProvider,
    StaleConnection,
    first_keyword,
    one_line,
)
from .exceptions import ComponentError, ComponentFailed

POSTGRES = Dialect("postgres", '"', "%s", on_conflict_update)
MAX_CHUNK = 1000

Connection = psycopg.Connection[tuple[Any, ...]]


def _params(params: Any) -> Any:
    """None for no parameters: a statement without any keeps its ``%`` characters."""
    return params if params else None


class PostgresProvider(ServerSqlProvider[Connection]):
    dialect = POSTGRES
    product = "PostgreSQL"
    default_port = 5432
    version_sql = "SHOW server_version"

    def connect(self, address: str) -> Connection:
        return psycopg.connect(
            host=self.host,
            hostaddr=address,
            port=self.port,
            dbname=self.database,
            user=self.user,
            password=self.password.reveal(),
            passfile=os.devnull,
            sslmode=self.ssl_mode,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="flow8",
            autocommit=True,
        )

    def _begin(self, conn: Connection, read_only: bool) -> None:
        begin = "BEGIN READ ONLY" if read_only else "BEGIN"
        try:
            # Our own text, no parameters: one round trip for both.
            conn.execute(f"{begin}; SET LOCAL statement_timeout = {int(self.timeout_ms)}")
        except psycopg.OperationalError as e:
            if conn.closed or conn.broken:
                raise StaleConnection(one_line(str(e))) from None
            raise

    def transaction(
        self, conn: Connection, sql: str, params: Any, *, many: bool, fetch: int, read_only: bool
    ) -> tuple[Result, bool]:
        self._begin(conn, read_only)
        if not many and fetch and first_keyword(sql) in READ_STATEMENTS:
            result = self._stream(conn, sql, _params(params), fetch)
            if conn.info.transaction_status == pq.TransactionStatus.INERROR:
                conn.rollback()  # the read was cancelled past the limit: nothing to keep
            else:
                conn.commit()
            return result, True
        with conn.cursor() as cursor:
            with conn.pipeline():  # the statement and COMMIT in one round trip
                if many:
                    cursor.executemany(sql, params)
                else:
                    cursor.execute(sql, _params(params))
                conn.execute("COMMIT")
            result = Result(rowcount=max(cursor.rowcount, 0))
            if cursor.description:
                result.columns = [c.name for c in cursor.description]
                rows = cursor.fetchmany(fetch + 1) if fetch else []
                result.truncated = len(rows) > fetch
                result.rows = list(rows[:fetch])
        return result, True

    def _stream(self, conn: Connection, sql: str, params: Any, fetch: int) -> Result:
        size = min(fetch + 1, MAX_CHUNK) if psycopg.capabilities.has_stream_chunked() else 1
        result = Result()
        rows: list[tuple[Any, ...]] = []
        with conn.cursor() as cursor:
            # A generator: closing it early cancels the statement's remaining rows.
            stream = cast(
                "Generator[tuple[Any, ...], None, None]", cursor.stream(sql, params, size=size)
            )
            try:
                for row in stream:
                    if not rows and cursor.description:
                        result.columns = [c.name for c in cursor.description]
                    rows.append(row)
                    if len(rows) > fetch:
                        break  # closing the stream cancels the rest
            finally:
                stream.close()
        result.truncated = len(rows) > fetch
        result.rows = list(rows[:fetch])
        return result

    def rollback(self, conn: Connection) -> None:
        try:
            if not conn.closed:
                conn.rollback()
        except psycopg.Error:
            self.close(conn)

    def usable(self, conn: Connection) -> bool:
        return not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE

    def close(self, conn: Connection) -> None:
        with contextlib.suppress(psycopg.Error):
            conn.close()

    def failure(self, error: Exception, *, connecting: bool) -> ComponentError | None:
        if not isinstance(error, psycopg.Error):
            return None
        text = one_line(str(error)).removeprefix("connection failed: ")
        if connecting:
            if "authentication failed" in text:
                return ComponentFailed(
                    f"authentication failed: PostgreSQL at {self.where} refused user "
                    f"{self.user!r} (wrong user or password): {text}"
                )
            return ComponentFailed(f"cannot connect to PostgreSQL at {self.where}: {text}")
        if isinstance(error, errors.QueryCanceled) and "statement timeout" in text:
            return ComponentFailed(
                f"the statement ran longer than {self.timeout_ms} ms (statementTimeoutMs) "
                f"and was stopped: {text}"
            )
        diag = error.diag.message_primary if error.sqlstate else None
        code = f" ({error.sqlstate})" if error.sqlstate else ""
        return ComponentFailed(f"postgres: {one_line(diag or text)}{code}")


def open_postgres(config: Mapping[str, Any], env: ProviderEnv) -> PostgresProvider:
    return PostgresProvider(config, env)
