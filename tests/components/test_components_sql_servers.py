"""PostgreSQL and MariaDB db components against real servers on loopback (started for the
session by ``support.sql_servers``; skipped, naming the binary, where they are not installed):
configured through the service, used by a saved flow's steps, checked from the API's
connectivity test, confined to the hosts the operator opened, and never showing a password."""

from __future__ import annotations

import contextlib
import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from components_kit import COMPANY, component_kit
from support.sql_servers import (  # noqa: F401 (the fixtures)
    SqlServer,
    free_port,
    mariadb_server,
    postgres_server,
)
from support.waits import wait_until

from flow8.domain import PlayState

SLEEP = {"postgres": "SELECT pg_sleep(5)", "mysql": "SELECT SLEEP(5)"}
MANY_ROWS = {
    "postgres": "SELECT n FROM generate_series(1, 5000000) AS n",
    "mysql": "SELECT seq AS n FROM seq_1_to_5000000",
}


@pytest.fixture(params=["postgres", "mysql"])
def server(request: pytest.FixtureRequest) -> SqlServer:
    name = "postgres_server" if request.param == "postgres" else "mariadb_server"
    found: SqlServer = request.getfixturevalue(name)
    return found


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> SqlServer:
    found: SqlServer = request.getfixturevalue("postgres_server")
    return found


def fresh_table() -> str:
    return f"people_{uuid.uuid4().hex[:10]}"


def admin_sql(server: SqlServer, *statements: str) -> list[Any]:
    """Run statements as the server's superuser; the last one's rows."""
    conn = server.admin()
    try:
        rows: list[Any] = []
        for statement in statements:
            cursor = conn.cursor()
            cursor.execute(statement)
            rows = list(cursor.fetchall()) if cursor.description else []
            cursor.close()
        return rows
    finally:
        conn.close()


async def test_db_steps_insert_upsert_update_query_and_delete(
    tmp_path: Path, server: SqlServer
) -> None:
    table = fresh_table()
    async with component_kit(tmp_path) as kit:
        await kit.component("db", server.kind, server.config())
        play, layers = await kit.run(
            [
                {"ref": "t", "appId": "db-query", "args": {"sql":
                    f"CREATE TABLE {table} (email VARCHAR(100) PRIMARY KEY, name VARCHAR(100), "
                    "amount NUMERIC(10, 2))"}},
                {"ref": "i", "appId": "db-insert", "args": {"table": table, "data": [
                    {"email": "a@x.example", "name": "Ada", "amount": 12.5},
                    {"email": "b@x.example", "name": "Bob", "amount": 3}]}},
                {"ref": "u", "appId": "db-upsert", "args": {
                    "table": table, "data": {"email": "a@x.example", "name": "Ada L."},
                    "conflictKey": "email"}},
                {"ref": "n", "appId": "db-upsert", "args": {
                    "table": table, "data": {"email": "c@x.example", "name": "Cy"},
                    "conflictKey": ["email"]}},
                {"ref": "p", "appId": "db-update", "args": {
                    "table": table, "data": {"name": "Robert"},
                    "where": {"email": "b@x.example"}}},
                {"ref": "q", "appId": "db-query", "args": {
                    "sql": f"SELECT email, name, amount FROM {table} "
                           "WHERE email LIKE %s ORDER BY email",
                    "params": ["%x.example"]}},
                {"ref": "d", "appId": "db-delete",
                 "args": {"table": table, "where": {"email": "a@x.example"}}},
                {"ref": "c", "appId": "db-query",
                 "args": {"sql": f"SELECT count(*) AS n FROM {table} WHERE name <> %(skip)s",
                          "params": {"skip": "nobody"}}},
            ]
        )  # fmt: skip
        assert play.state is PlayState.DONE, play.error
        assert layers["i"].output == {"count": 2}
        assert layers["p"].output == {"count": 1}
        assert layers["q"].output["rows"] == [
            {"email": "a@x.example", "name": "Ada L.", "amount": 12.5},
            {"email": "b@x.example", "name": "Robert", "amount": 3},
            {"email": "c@x.example", "name": "Cy", "amount": None},
        ]
        assert layers["q"].output["truncated"] is False
        assert layers["d"].output == {"count": 1}
        assert layers["c"].output["rows"] == [{"n": 2}]
    assert admin_sql(server, f"SELECT name FROM {table} ORDER BY email") == [
        ("Robert",),
        ("Cy",),
    ]


async def test_values_stay_data_and_names_are_checked(tmp_path: Path, server: SqlServer) -> None:
    table = fresh_table()
    evil = "x'); DROP TABLE " + table + "; -- \\' \" ` %s"
    async with component_kit(tmp_path) as kit:
        await kit.component("db", server.kind, server.config())
        play, layers = await kit.run(
            [
                {"ref": "t", "appId": "db-query", "args": {
                    "sql": f"CREATE TABLE {table} (email VARCHAR(200), name VARCHAR(200))"}},
                {"ref": "i", "appId": "db-insert",
                 "args": {"table": table, "data": {"email": evil, "name": evil}}},
                {"ref": "q", "appId": "db-query", "args": {
                    "sql": f"SELECT name FROM {table} WHERE email = %s", "params": [evil]}},
                {"ref": "or", "appId": "db-query", "args": {
                    "sql": f"SELECT name FROM {table} WHERE email = %s",
                    "params": ["nobody' OR '1'='1"]}},
                {"ref": "bad", "appId": "db-insert",
                 "args": {"table": f"{table}; DROP TABLE {table}", "data": {"email": "x"}}},
            ]
        )  # fmt: skip
        assert layers["q"].output["rows"] == [{"name": evil}]
        assert layers["or"].output["rows"] == []
        assert play.state is PlayState.FAIL
        assert "is not a table or column name" in (layers["bad"].error or "")
        play, layers = await kit.run(
            [{"ref": "col", "appId": "db-update", "args": {
                "table": table, "data": {"name = 'x', email": "y"}, "where": {"email": evil}}}]
        )  # fmt: skip
        assert play.state is PlayState.FAIL
        assert "is not a table or column name" in (layers["col"].error or "")
    assert admin_sql(server, f"SELECT email FROM {table}") == [(evil,)]


async def test_rows_past_the_limit_are_cut_and_said_to_be(
    tmp_path: Path, server: SqlServer
) -> None:
    table = fresh_table()
    async with component_kit(tmp_path) as kit:
        await kit.component("db", server.kind, server.config(maxRows=25))
        play, layers = await kit.run(
            [
                {"ref": "t", "appId": "db-query",
                 "args": {"sql": f"CREATE TABLE {table} (n INTEGER PRIMARY KEY)"}},
                {"ref": "i", "appId": "db-insert",
                 "args": {"table": table, "data": [{"n": n} for n in range(1, 31)]}},
                {"ref": "ten", "appId": "db-query",
                 "args": {"sql": f"SELECT n FROM {table} ORDER BY n", "limit": 10}},
                {"ref": "max", "appId": "db-query",
                 "args": {"sql": f"SELECT n FROM {table} ORDER BY n", "limit": 1000}},
                {"ref": "fit", "appId": "db-query",
                 "args": {"sql": f"SELECT n FROM {table} WHERE n <= 25 ORDER BY n"}},
                # Millions of rows: the read stops at the limit instead of fetching them all.
                {"ref": "huge", "appId": "db-query",
                 "args": {"sql": MANY_ROWS[server.kind], "limit": 3}},
                {"ref": "after", "appId": "db-query",
                 "args": {"sql": f"SELECT count(*) AS c FROM {table}"}},
                # A write whose rows pass the limit still runs to its end.
                {"ref": "del", "appId": "db-query", "args": {
                    "sql": f"DELETE FROM {table} WHERE n > 20 RETURNING n", "limit": 2}},
                {"ref": "left", "appId": "db-query",
                 "args": {"sql": f"SELECT count(*) AS c FROM {table}"}},
            ]
        )  # fmt: skip
        assert play.state is PlayState.DONE, play.error
        assert layers["i"].output == {"count": 30}
        assert [r["n"] for r in layers["ten"].output["rows"]] == list(range(1, 11))
        assert layers["ten"].output["truncated"] is True
        assert layers["max"].output["count"] == 25  # the component's maxRows caps the limit
        assert layers["max"].output["truncated"] is True
        assert layers["fit"].output["count"] == 25
        assert layers["fit"].output["truncated"] is False
        assert [r["n"] for r in layers["huge"].output["rows"]] == [1, 2, 3]
        assert layers["huge"].output["truncated"] is True
        assert layers["after"].output["rows"] == [{"c": 30}]
        assert layers["del"].output["count"] == 2
        assert layers["del"].output["truncated"] is True
        assert layers["left"].output["rows"] == [{"c": 20}]


async def test_a_statement_past_the_timeout_is_stopped_with_a_clear_error(
    tmp_path: Path, server: SqlServer
) -> None:
    async with component_kit(tmp_path) as kit:
        await kit.component("db", server.kind, server.config(statementTimeoutMs=300))
        play, layers = await kit.run(
            [{"ref": "slow", "appId": "db-query", "args": {"sql": SLEEP[server.kind]}}]
        )
        assert play.state is PlayState.FAIL
        error = layers["slow"].error or ""
        assert "COMPONENT_FAILED" in error
        assert "ran longer than 300 ms" in error
        # The component still works: the stopped statement left nothing behind.
        play, layers = await kit.run(
            [{"ref": "q", "appId": "db-query", "args": {"sql": "SELECT 1 AS one"}}]
        )
        assert play.state is PlayState.DONE, play.error
        assert layers["q"].output["rows"] == [{"one": 1}]


async def test_a_read_only_component_refuses_writes_itself_and_through_the_database(
    tmp_path: Path, server: SqlServer
) -> None:
    table = fresh_table()
    admin_sql(
        server,
        f"CREATE TABLE {table} (email VARCHAR(100), name VARCHAR(100))",
        f"INSERT INTO {table} VALUES ('a@x.example', 'Ada')",
    )
    if server.kind == "postgres":
        admin_sql(server, f"ALTER TABLE {table} OWNER TO {server.user}")
    async with component_kit(tmp_path) as kit:
        await kit.component("db", server.kind, server.config(readOnly=True))
        play, layers = await kit.run(
            [{"ref": "q", "appId": "db-query",
              "args": {"sql": f"SELECT name FROM {table}"}}]
        )  # fmt: skip
        assert play.state is PlayState.DONE, play.error
        assert layers["q"].output["rows"] == [{"name": "Ada"}]
        refused_by_us = [
            {"appId": "db-insert", "args": {"table": table, "data": {"email": "b"}}},
            {"appId": "db-upsert",
             "args": {"table": table, "data": {"email": "b"}, "conflictKey": "email"}},
            {"appId": "db-update",
             "args": {"table": table, "data": {"name": "X"}, "where": {"email": "a@x.example"}}},
            {"appId": "db-delete", "args": {"table": table, "where": {"email": "a@x.example"}}},
        ]  # fmt: skip
        for step in refused_by_us:
            play, layers = await kit.run([{"ref": "w", **step}])
            assert play.state is PlayState.FAIL
            assert "COMPONENT_REFUSED" in (layers["w"].error or "")
            assert "read-only" in (layers["w"].error or "")
        refused_by_the_database = [
            f"INSERT INTO {table} VALUES ('b@x.example', 'Bob')",
            f"UPDATE {table} SET name = 'X'",
            f"DELETE FROM {table}",
            f"CREATE TABLE {table}_new (x INTEGER)",
            f"DROP TABLE {table}",
        ]
        for sql in refused_by_the_database:
            play, layers = await kit.run([{"ref": "w", "appId": "db-query", "args": {"sql": sql}}])
            assert play.state is PlayState.FAIL, sql
            error = (layers["w"].error or "").replace("-", " ").lower()
            assert "read only" in error, (sql, error)
        # Ending the read-only transaction inside the statement does not open a writable one:
        # a statement is one statement.
        escape = f"COMMIT; INSERT INTO {table} VALUES ('c@x.example', 'Cy')"
        play, layers = await kit.run([{"ref": "w", "appId": "db-query", "args": {"sql": escape}}])
        assert play.state is PlayState.FAIL
        assert "COMPONENT_FAILED" in (layers["w"].error or "")
    assert admin_sql(server, f"SELECT email, name FROM {table}") == [("a@x.example", "Ada")]


async def test_the_connectivity_check_says_what_answered(tmp_path: Path, server: SqlServer) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    async with component_kit(tmp_path) as kit:
        good = await kit.component("db", server.kind, server.config(), name="good")
        bad = await kit.component(
            "db", server.kind, server.config(password=wrong), name="bad", default=False
        )
        nothing = await kit.component(
            "db", server.kind, server.config(port=free_port()), name="off", default=False
        )
        answer = await kit.components.test(COMPANY, good.id)
        assert answer["ok"] is True, answer
        assert answer["message"].startswith("connected: ")
        assert server.product.split(".")[0] in answer["message"]  # e.g. "PostgreSQL 15"
        assert f"database {server.database!r} as {server.user!r}" in answer["message"]

        answer = await kit.components.test(COMPANY, bad.id)
        assert answer["ok"] is False
        assert answer["message"].startswith("COMPONENT_FAILED: authentication failed")
        assert repr(server.user) in answer["message"]
        assert wrong not in repr(answer)

        answer = await kit.components.test(COMPANY, nothing.id)
        assert answer["ok"] is False
        assert answer["message"].startswith("COMPONENT_FAILED: cannot connect to ")
        assert server.password not in repr(answer)


def sessions(server: SqlServer) -> list[Any]:
    """The ids of the server's sessions of the test account (the components' connections)."""
    if server.kind == "postgres":
        sql = f"SELECT pid FROM pg_stat_activity WHERE usename = '{server.user}'"
    else:
        sql = f"SELECT id FROM information_schema.processlist WHERE user = '{server.user}'"
    return [row[0] for row in admin_sql(server, sql)]


def end_sessions(server: SqlServer) -> None:
    """What a server restart or an idle timeout does to the components' idle connections."""
    for session in sessions(server):
        if server.kind == "postgres":
            admin_sql(server, f"SELECT pg_terminate_backend({session})")
        else:
            with contextlib.suppress(Exception):  # gone already
                admin_sql(server, f"KILL CONNECTION {session}")


async def test_a_connection_the_server_closed_is_replaced_and_closing_releases_them(
    tmp_path: Path, server: SqlServer
) -> None:
    table = fresh_table()
    async with component_kit(tmp_path) as kit:
        await kit.component("db", server.kind, server.config())
        play, _ = await kit.run(
            [{"ref": "t", "appId": "db-query",
              "args": {"sql": f"CREATE TABLE {table} (n INTEGER)"}}]
        )  # fmt: skip
        assert play.state is PlayState.DONE, play.error
        assert sessions(server), "the component keeps its connection for the next step"
        end_sessions(server)
        await wait_until(lambda: not sessions(server), what="the server ending the sessions")
        play, layers = await kit.run(
            [
                {"ref": "i", "appId": "db-insert", "args": {"table": table, "data": {"n": 1}}},
                {"ref": "q", "appId": "db-query",
                 "args": {"sql": f"SELECT count(*) AS c FROM {table}"}},
            ]
        )  # fmt: skip
        assert play.state is PlayState.DONE, play.error
        assert layers["q"].output["rows"] == [{"c": 1}]  # inserted once, not retried twice
    await wait_until(lambda: not sessions(server), what="the closed component's sessions ending")


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port on loopback that accepts connections nobody answers; asserts at the end that
    nothing connected to it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing is waiting: no connection was ever made


@pytest.mark.parametrize("provider", ["postgres", "mysql"])
async def test_a_host_the_operator_did_not_open_is_refused_before_any_connection(
    tmp_path: Path, provider: str
) -> None:
    pytest.importorskip("psycopg" if provider == "postgres" else "pymysql")
    with silent_listener() as port:
        async with component_kit(tmp_path, allowed_hosts=()) as kit:
            config = {"host": "127.0.0.1", "port": port, "database": "d", "user": "u",
                      "password": "pw-not-shown"}  # fmt: skip
            component = await kit.component("db", provider, config)
            play, layers = await kit.run(
                [{"ref": "q", "appId": "db-query", "args": {"sql": "SELECT 1"}}]
            )
            assert play.state is PlayState.FAIL
            error = layers["q"].error or ""
            assert error.startswith("COMPONENT_REFUSED: ")
            assert "host '127.0.0.1'" in error
            assert "loopback" in error
            answer = await kit.components.test(COMPANY, component.id)
            assert answer["ok"] is False
            assert "host '127.0.0.1'" in answer["message"]
            assert "pw-not-shown" not in repr(answer) + repr(layers)


async def test_a_password_is_never_shown_stored_plain_or_logged(
    tmp_path: Path,
    pg: SqlServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    canary = f"canary-{uuid.uuid4().hex}"
    wrong = f"canary-{uuid.uuid4().hex}"  # a second one, that the server refuses
    role = f"role_{uuid.uuid4().hex[:10]}"
    admin_sql(
        pg,
        f"CREATE ROLE {role} LOGIN PASSWORD '{canary}'",
        f"GRANT ALL ON DATABASE {pg.database} TO {role}",
    )
    async with component_kit(tmp_path) as kit:
        good = await kit.component("db", "postgres", pg.config(user=role, password=canary))
        bad = await kit.component(
            "db", "postgres", pg.config(user=role, password=wrong),
            name="wrong", default=False,
        )  # fmt: skip
        play, layers = await kit.run(
            [
                {"ref": "ok", "appId": "db-query",
                 "args": {"sql": "SELECT current_user AS who, %s AS echo", "params": ["hi"]}},
                {"ref": "bad", "appId": "db-query",
                 "args": {"sql": "SELEC nothing FROM nowhere"}},
            ],
            record=True,
        )  # fmt: skip
        assert play.state is PlayState.FAIL
        assert layers["ok"].output["rows"] == [{"who": role, "echo": "hi"}]
        assert layers["ok"].calls, "the flow records its calls"
        assert "syntax error" in (layers["bad"].error or "")
        refused, refused_layers = await kit.run(
            [{"ref": "auth", "appId": "db-query", "componentConfigIds": {"db": "wrong"},
              "args": {"sql": "SELECT 1"}}],
            record=True,
        )  # fmt: skip
        assert refused.state is PlayState.FAIL
        assert "authentication failed" in (refused_layers["auth"].error or "")
        layers.update(refused_layers)
        checks = [await kit.components.test(COMPANY, c.id) for c in (good, bad)]
        assert [c["ok"] for c in checks] == [True, False]
        shown = [
            repr(play),
            repr(refused),
            repr(layers),
            repr([(la.args, la.output, la.error, la.calls) for la in layers.values()]),
            repr(kit.events),
            repr(await kit.components.get(COMPANY, good.id)),
            repr(await kit.components.list(COMPANY)),
            repr(checks),
        ]
        assert (await kit.components.get(COMPANY, good.id)).secret_fields == ("password",)
        assert "password" not in (await kit.components.get(COMPANY, good.id)).config
    captured = capsys.readouterr()
    shown += [captured.out, captured.err, caplog.text]
    for secret in (canary, wrong):
        for text in shown:
            assert secret not in text
    # Encrypted at rest: the store's file (and its write-ahead log) never holds it plain.
    stored = b"".join(
        (tmp_path / name).read_bytes()
        for name in ("flow8.db", "flow8.db-wal")
        if (tmp_path / name).exists()
    )
    assert role.encode() in stored  # the config's plain fields are there: the right file
    assert canary.encode() not in stored
    assert wrong.encode() not in stored
