"""``db/sqlite``: a SQLite file. A relative ``path`` lives in the company's own files
directory; an absolute one only inside a root the operator opened (``_paths``).

One connection per call, in a worker thread: SQLite opens in microseconds and a connection
never outlives its statement, so nothing is shared between steps. ``readOnly`` opens the
file read-only (SQLite itself refuses writes, whatever the statement); the statement
timeout is a progress handler that interrupts a statement running too long.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._paths import root_directory
from ._provider import ProviderEnv
from ._sql import Dialect, Result, SqlProvider, on_conflict_update
from .exceptions import ComponentConfigError, ComponentFailed

SQLITE = Dialect("sqlite", '"', "?", on_conflict_update)


class SqliteProvider(SqlProvider):
    dialect = SQLITE

    def __init__(self, config: Mapping[str, Any], env: ProviderEnv, file: Path) -> None:
        super().__init__(config, env)
        self.file = file

    def _connect(self, read_only: bool) -> sqlite3.Connection:
        mode = "ro" if read_only else "rwc"
        uri = f"file:{urllib.parse.quote(str(self.file))}?mode={mode}"
        conn = sqlite3.connect(uri, uri=True, timeout=self.timeout_ms / 1000, isolation_level=None)
        deadline = time.monotonic() + self.timeout_ms / 1000
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        return conn

    def execute_sync(
        self, sql: str, params: Any, *, many: bool, fetch: int, read_only: bool
    ) -> Result:
        try:
            conn = self._connect(read_only)
        except sqlite3.Error as e:
            raise ComponentFailed(f"cannot open the database: {e}") from None
        try:
            conn.execute("BEGIN")
            cursor = conn.executemany(sql, params) if many else conn.execute(sql, params)
            result = Result(rowcount=max(cursor.rowcount, 0))
            if cursor.description:
                result.columns = [d[0] for d in cursor.description]
                rows = cursor.fetchmany(fetch + 1) if fetch else []
                result.truncated = len(rows) > fetch
                result.rows = rows[:fetch]
            conn.execute("COMMIT")
            return result
        except sqlite3.OperationalError as e:
            if "interrupted" in str(e):
                raise ComponentFailed(
                    f"the statement ran longer than {self.timeout_ms} ms and was stopped"
                ) from None
            raise ComponentFailed(f"sqlite: {e}") from None
        except sqlite3.Error as e:
            raise ComponentFailed(f"sqlite: {e}") from None
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()


def open_sqlite(config: Mapping[str, Any], env: ProviderEnv) -> SqliteProvider:
    raw = str(config["path"])
    path = Path(raw)
    if path.name in ("", ".", ".."):
        raise ComponentConfigError(f"path {raw!r} does not name a database file")
    directory = root_directory(str(path.parent), env.files_dir, env.allowed_roots)
    return SqliteProvider(config, env, directory / path.name)
