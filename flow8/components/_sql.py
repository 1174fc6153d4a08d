"""What every SQL provider shares: statements built from a flow's table, data and where,
with parameters only (never a value in the text), checked and quoted identifiers, a row
limit and a statement timeout on every call, and read-only components.

A provider supplies a :class:`Dialect` (how it quotes, its placeholder, its upsert) and
``execute_sync`` (one statement on its driver, in a worker thread); :class:`SqlProvider`
does the rest, the same for PostgreSQL, MySQL/MariaDB and SQLite.

Operations: ``query {sql, params, limit}`` -> ``{rows, count, truncated}``;
``insert {table, data}`` (an object or a list of them), ``update {table, data, where}``,
``upsert {table, data, conflictKey}``, ``delete {table, where}`` -> ``{count}``.
``where`` is an object of column -> value (``null`` matches NULL); an update or delete
without one is refused (a statement touching every row is written as a query, on purpose).
"""

from __future__ import annotations

import abc
import datetime
import decimal
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ._provider import Operation, ProviderEnv
from .exceptions import ComponentRefused

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
DEFAULT_MAX_ROWS = 1000
DEFAULT_TIMEOUT_MS = 30_000
MAX_BATCH_ROWS = 10_000


@attrs.frozen
class Dialect:
    name: str
    quote_char: str  # '"' (PostgreSQL, SQLite) or '`' (MySQL)
    placeholder: str  # '?' (sqlite3) or '%s' (psycopg, PyMySQL)
    # The clause after INSERT ... VALUES (...) that turns it into an upsert on `conflict`.
    upsert_clause: Callable[[Dialect, Sequence[str], Sequence[str]], str]

    def quote(self, name: str) -> str:
        """``schema.table`` or ``column``, each part checked, then quoted."""
        parts = name.split(".") if isinstance(name, str) else []
        if not parts or len(parts) > 2 or not all(IDENTIFIER.fullmatch(p) for p in parts):
            raise ComponentRefused(
                f"{str(name)[:80]!r} is not a table or column name (letters, digits, _ and $, "
                "starting with a letter or _; at most one '.')"
            )
        q = self.quote_char
        return ".".join(f"{q}{p}{q}" for p in parts)


def on_conflict_update(dialect: Dialect, columns: Sequence[str], conflict: Sequence[str]) -> str:
    """PostgreSQL and SQLite: ``ON CONFLICT (k) DO UPDATE SET c = excluded.c``."""
    keys = ", ".join(dialect.quote(c) for c in conflict)
    rest = [c for c in columns if c not in conflict]
    if not rest:
        return f" ON CONFLICT ({keys}) DO NOTHING"
    sets = ", ".join(f"{dialect.quote(c)} = excluded.{dialect.quote(c)}" for c in rest)
    return f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"


def on_duplicate_key_update(
    dialect: Dialect, columns: Sequence[str], conflict: Sequence[str]
) -> str:
    """MySQL and MariaDB: the conflict is whichever unique key the row hits."""
    rest = [c for c in columns if c not in conflict] or list(conflict)
    sets = ", ".join(f"{dialect.quote(c)} = VALUES({dialect.quote(c)})" for c in rest)
    return f" ON DUPLICATE KEY UPDATE {sets}"


def _rows(data: Any) -> list[Mapping[str, Any]]:
    rows = data if isinstance(data, list) else [data]
    if not rows or not all(isinstance(r, Mapping) and r for r in rows):
        raise ComponentRefused("data must be an object of column values, or a list of them")
    if len(rows) > MAX_BATCH_ROWS:
        raise ComponentRefused(f"data holds more than {MAX_BATCH_ROWS} rows")
    columns = list(rows[0])
    if any(list(r) != columns for r in rows[1:]):
        raise ComponentRefused("every row of data must have the same columns, in one order")
    return rows


def _where(dialect: Dialect, where: Any) -> tuple[str, list[Any]]:
    if not isinstance(where, Mapping) or not where:
        raise ComponentRefused(
            "where must be an object naming at least one column (to touch every row, "
            "write the statement with db-query)"
        )
    parts: list[str] = []
    params: list[Any] = []
    for column, value in where.items():
        if value is None:
            parts.append(f"{dialect.quote(column)} IS NULL")
        else:
            parts.append(f"{dialect.quote(column)} = {dialect.placeholder}")
            params.append(value)
    return " AND ".join(parts), params


def insert_statement(dialect: Dialect, table: str, data: Any) -> tuple[str, list[list[Any]]]:
    rows = _rows(data)
    columns = list(rows[0])
    names = ", ".join(dialect.quote(c) for c in columns)
    marks = ", ".join([dialect.placeholder] * len(columns))
    sql = f"INSERT INTO {dialect.quote(table)} ({names}) VALUES ({marks})"
    return sql, [[r[c] for c in columns] for r in rows]


def upsert_statement(
    dialect: Dialect, table: str, data: Any, conflict_key: Any
) -> tuple[str, list[list[Any]]]:
    keys = [conflict_key] if isinstance(conflict_key, str) else conflict_key
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise ComponentRefused("conflictKey must be a column name or a list of them")
    sql, params = insert_statement(dialect, table, data)
    columns = list(_rows(data)[0])
    missing = [k for k in keys if k not in columns]
    if missing:
        raise ComponentRefused(f"conflictKey {missing[0]!r} is not a column of data")
    return sql + dialect.upsert_clause(dialect, columns, keys), params


def update_statement(dialect: Dialect, table: str, data: Any, where: Any) -> tuple[str, list[Any]]:
    if not isinstance(data, Mapping) or not data:
        raise ComponentRefused("data must be an object of the column values to set")
    sets = ", ".join(f"{dialect.quote(c)} = {dialect.placeholder}" for c in data)
    condition, params = _where(dialect, where)
    sql = f"UPDATE {dialect.quote(table)} SET {sets} WHERE {condition}"
    return sql, [*data.values(), *params]


def delete_statement(dialect: Dialect, table: str, where: Any) -> tuple[str, list[Any]]:
    condition, params = _where(dialect, where)
    return f"DELETE FROM {dialect.quote(table)} WHERE {condition}", params


def json_cell(value: Any) -> Any:
    """A database value as JSON: dates as ISO text, decimals as numbers (text when they
    would lose digits), bytes as base64 (the seam's rule), UUIDs as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        as_float = float(value)
        return as_float if decimal.Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        import base64

        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, list | tuple):
        return [json_cell(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): json_cell(v) for k, v in value.items()}
    return str(value)


@attrs.define
class Result:
    """What one statement answered: rows (``columns`` names them) when it returns any,
    ``rowcount`` when it changed rows, ``truncated`` when more rows than the limit came."""

    columns: list[str] = attrs.Factory(list)
    rows: list[Sequence[Any]] = attrs.Factory(list)
    rowcount: int = 0
    truncated: bool = False


def _table(input: Mapping[str, Any]) -> str:
    table = input.get("table")
    if not isinstance(table, str):
        raise ComponentRefused("table must be a table name")
    return table


class SqlProvider(abc.ABC):
    """The operations of every SQL provider over its driver's ``execute_sync``."""

    dialect: Dialect

    def __init__(self, config: Mapping[str, Any], env: ProviderEnv) -> None:
        self.env = env
        self.read_only = bool(config.get("readOnly", False))
        self.max_rows = int(config.get("maxRows") or DEFAULT_MAX_ROWS)
        self.timeout_ms = int(config.get("statementTimeoutMs") or DEFAULT_TIMEOUT_MS)
        self.operations: Mapping[str, Operation] = {
            "query": self._query,
            "insert": self._insert,
            "update": self._update,
            "upsert": self._upsert,
            "delete": self._delete,
        }

    @abc.abstractmethod
    def execute_sync(
        self, sql: str, params: Any, *, many: bool, fetch: int, read_only: bool
    ) -> Result:
        """Run one statement (``many``: once per parameter row) in one transaction, under
        the component's statement timeout, fetching at most ``fetch`` rows (and noting
        whether there were more). ``read_only`` asks the database itself to refuse writes.
        Raise :class:`ComponentFailed` with the database's own message (never the config's
        secrets) when it refuses."""

    async def _run(self, sql: str, params: Any, *, many: bool = False, fetch: int = 0) -> Result:
        read_only = self.read_only
        result: Result = await self.env.in_thread(
            lambda: self.execute_sync(sql, params, many=many, fetch=fetch, read_only=read_only)
        )
        return result

    def _writable(self, operation: str) -> None:
        if self.read_only:
            raise ComponentRefused(f"this db component is read-only: {operation} refused")

    async def _query(self, input: Mapping[str, Any]) -> dict[str, Any]:
        sql = input.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            raise ComponentRefused("sql must be a statement")
        params = input.get("params")
        if params is None:
            params = []
        if not isinstance(params, list | Mapping):
            raise ComponentRefused("params must be a list (positional) or an object (named)")
        limit = min(int(input.get("limit") or self.max_rows), self.max_rows)
        result = await self._run(sql, params, fetch=limit)
        rows = [
            {c: json_cell(v) for c, v in zip(result.columns, row, strict=False)}
            for row in result.rows
        ]
        return {
            "rows": rows,
            "count": len(rows),
            "rowCount": result.rowcount,
            "truncated": result.truncated,
        }

    async def _insert(self, input: Mapping[str, Any]) -> dict[str, Any]:
        self._writable("insert")
        sql, rows = insert_statement(self.dialect, _table(input), input.get("data"))
        result = await self._run(sql, rows, many=True)
        return {"count": result.rowcount}

    async def _upsert(self, input: Mapping[str, Any]) -> dict[str, Any]:
        self._writable("upsert")
        sql, rows = upsert_statement(
            self.dialect, _table(input), input.get("data"), input.get("conflictKey")
        )
        result = await self._run(sql, rows, many=True)
        return {"count": result.rowcount}

    async def _update(self, input: Mapping[str, Any]) -> dict[str, Any]:
        self._writable("update")
        sql, params = update_statement(
            self.dialect, _table(input), input.get("data"), input.get("where")
        )
        return {"count": (await self._run(sql, params)).rowcount}

    async def _delete(self, input: Mapping[str, Any]) -> dict[str, Any]:
        self._writable("delete")
        sql, params = delete_statement(self.dialect, _table(input), input.get("where"))
        return {"count": (await self._run(sql, params)).rowcount}

    async def check(self) -> str:
        result = await self._run("SELECT 1", [], fetch=1)
        if not result.rows:
            return "connected"
        return f"connected: {self.dialect.name} answered"

    async def aclose(self) -> None:
        return None
