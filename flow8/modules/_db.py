"""Database modules: db-query, db-insert, db-update, db-upsert, db-delete, on the step's db
component (PostgreSQL, MySQL/MariaDB, SQLite: the same arguments for each).

Values travel as parameters only, never inside the SQL text; table and column names are
checked and quoted; every call has the component's statement timeout and row limit; a
read-only component refuses every write (``flow8.components._sql``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._registry import ModuleContext, ModuleSpec

_TABLE = {"type": "string", "minLength": 1, "maxLength": 127}
_ROW = {"type": "object", "minProperties": 1}
_WHERE = {"type": "object", "minProperties": 1, "description": "column -> value (null: IS NULL)"}
_COUNT = {"type": "object", "properties": {"count": {"type": "integer"}}}


def _operation(name: str, fields: tuple[str, ...]) -> Any:
    async def run(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        db = await ctx.component("db")
        return await db.call(name, {f: args.get(f) for f in fields if f in args})

    return run


def _spec(
    app_id: str,
    description: str,
    properties: Mapping[str, Any],
    required: list[str],
    output: Mapping[str, Any],
    operation: str,
    example: Mapping[str, Any],
    *,
    idempotent: bool,
) -> ModuleSpec:
    return ModuleSpec(
        app_id=app_id,
        category="database",
        description=description,
        args_schema={
            "type": "object",
            "properties": dict(properties),
            "required": required,
            "additionalProperties": False,
        },
        output_schema=output,
        idempotent=idempotent,
        run=_operation(operation, tuple(properties)),
        components=("db",),
        example=example,
    )


def db_modules() -> list[ModuleSpec]:
    return [
        _spec(
            "db-query",
            "Run one SQL statement with parameters (`params`: a list for positional "
            "placeholders, an object for named ones, in the database's own style: `?` / "
            "`:name` on SQLite, `%s` / `%(name)s` on PostgreSQL and MySQL). Answers at most "
            "`limit` rows (and the component's maxRows); `truncated` says more came.",
            {
                "sql": {"type": "string", "minLength": 1, "maxLength": 100_000},
                "params": {"type": ["array", "object"]},
                "limit": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
            },
            ["sql"],
            {
                "type": "object",
                "properties": {
                    "rows": {"type": "array"},
                    "count": {"type": "integer"},
                    "rowCount": {"type": "integer"},
                    "truncated": {"type": "boolean"},
                },
            },
            "query",
            {"sql": "SELECT id, email FROM users WHERE team = ?", "params": ["{{ $prev.team }}"]},
            idempotent=False,  # a statement may write; a read-only component makes it safe
        ),
        _spec(
            "db-insert",
            "Insert a row (an object of column values) or rows (a list of them).",
            {"table": _TABLE, "data": {"type": ["object", "array"]}},
            ["table", "data"],
            _COUNT,
            "insert",
            {"table": "orders", "data": {"id": "{{ $prev.id }}", "total": "{{ $prev.total }}"}},
            idempotent=False,
        ),
        _spec(
            "db-update",
            "Set columns (`data`) of the rows matching `where` (column -> value, all equal).",
            {"table": _TABLE, "data": _ROW, "where": _WHERE},
            ["table", "data", "where"],
            _COUNT,
            "update",
            {"table": "orders", "data": {"status": "shipped"}, "where": {"id": 42}},
            idempotent=True,  # setting the same values again changes nothing
        ),
        _spec(
            "db-upsert",
            "Insert rows, or update the row whose `conflictKey` column(s) match.",
            {
                "table": _TABLE,
                "data": {"type": ["object", "array"]},
                "conflictKey": {"type": ["string", "array"], "items": {"type": "string"}},
            },
            ["table", "data", "conflictKey"],
            _COUNT,
            "upsert",
            {
                "table": "customers",
                "data": {"email": "a@example.com", "name": "Ada"},
                "conflictKey": "email",
            },
            idempotent=True,
        ),
        _spec(
            "db-delete",
            "Delete the rows matching `where` (column -> value, all equal).",
            {"table": _TABLE, "where": _WHERE},
            ["table", "where"],
            _COUNT,
            "delete",
            {"table": "sessions", "where": {"user_id": "{{ $prev.userId }}"}},
            idempotent=True,
        ),
    ]
