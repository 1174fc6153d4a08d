"""Throwaway database servers on loopback, the way pytest-postgresql runs them: a fresh data
directory in a temporary directory, the server's own binaries, a free port, gone at the end.

* PostgreSQL: ``initdb`` + ``postgres`` from the Debian packages (``/usr/lib/postgresql/*/bin``,
  else ``PATH``). TCP on 127.0.0.1 only (no Unix socket), password (scram) authentication.
* MariaDB: ``mariadb-install-db`` + ``mariadbd`` (or the ``mysql_install_db`` / ``mysqld``
  names). TCP on 127.0.0.1, a Unix socket in its data directory for the bootstrap only.

Neither server runs as root: under root (CI containers) both run as ``nobody``, their data
directories chowned to it. Durability is switched off (fsync, doublewrite): these servers
hold test data for a few seconds.

As pytest fixtures (session-scoped; a test that needs a binary that is missing is skipped,
saying which one)::

    from support.sql_servers import mariadb_server, postgres_server  # noqa: F401 (fixtures)

    async def test_x(postgres_server: SqlServer) -> None:
        config = postgres_server.config(readOnly=True)  # a db component's config

Outside pytest (the benchmarks)::

    with running_postgres() as server: ...
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

STARTUP_SECONDS = 60.0
UNPRIVILEGED = "nobody"


class MissingBinary(Exception):
    """A server binary is not installed (the message names it and how to install it)."""


@attrs.frozen
class SqlServer:
    """A running server: where it listens and the account tests use (it owns ``database``)."""

    kind: str  # "postgres" or "mysql" (the db component's provider)
    host: str
    port: int
    database: str
    user: str
    password: str
    product: str  # e.g. "PostgreSQL 15.14", "MariaDB 10.11.14"
    admin_user: str  # a superuser, for tests that create roles
    admin_password: str

    def config(self, **overrides: Any) -> dict[str, Any]:
        """A db component config that reaches this server (``overrides`` replace fields)."""
        config: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "user": self.user,
            "password": self.password,
            "sslMode": "disable",
        }
        config.update(overrides)
        return config

    def admin(self) -> Any:
        """A superuser connection (autocommit) to ``database``: close it when done."""
        if self.kind == "postgres":
            import psycopg

            return psycopg.connect(
                host=self.host, port=self.port, user=self.admin_user,
                password=self.admin_password, dbname=self.database, autocommit=True,
            )  # fmt: skip
        import pymysql

        return pymysql.connect(
            host=self.host, port=self.port, user=self.admin_user,
            password=self.admin_password, database=self.database, autocommit=True,
        )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run_as() -> dict[str, Any]:
    """Popen arguments that drop root (both servers refuse root, or should)."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(UNPRIVILEGED)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _owned_tempdir(prefix: str) -> Path:
    """A directory the server's user owns (pytest's tmp_path is root's alone under root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(UNPRIVILEGED)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _check_call(cmd: list[str], *, cwd: Path, what: str) -> None:
    done = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=STARTUP_SECONDS, **_run_as()
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr or done.stdout}")


def _stop(process: subprocess.Popen[bytes], sig: int) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return "(no log)"


# -- PostgreSQL ---------------------------------------------------------------------------------


def postgres_binaries() -> Path:
    """The directory holding ``initdb`` and ``postgres`` (the newest Debian version first)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for directory in candidates:
        if all(os.access(Path(directory) / b, os.X_OK) for b in ("initdb", "postgres")):
            return Path(directory)
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(os.path.realpath(found)).parent
    raise MissingBinary(
        "PostgreSQL server binaries not found (initdb, postgres in /usr/lib/postgresql/*/bin "
        "or on PATH): apt-get install postgresql"
    )


@contextlib.contextmanager
def running_postgres() -> Iterator[SqlServer]:
    bindir = postgres_binaries()
    root = _owned_tempdir("flow8-pg-")
    data = root / "data"
    superpass = secrets.token_urlsafe(16)
    pwfile = root / "pw"
    pwfile.write_text(superpass + "\n")
    if os.geteuid() == 0:
        entry = pwd.getpwnam(UNPRIVILEGED)
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    process: subprocess.Popen[bytes] | None = None
    try:
        _check_call(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            cwd=root,
            what="initdb",
        )  # fmt: skip
        log = root / "postgres.log"
        for _ in range(5):  # a free port can be taken between finding it and binding it
            port = free_port()
            with log.open("ab") as out:
                process = subprocess.Popen(
                    [str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                     "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                     "-c", "fsync=off", "-c", "synchronous_commit=off",
                     "-c", "full_page_writes=off", "-c", "max_connections=50"],
                    cwd=root, stdout=out, stderr=subprocess.STDOUT, **_run_as(),
                )  # fmt: skip
            admin = _wait_postgres(process, port, superpass, log)
            if admin is not None:
                break
            _stop(process, signal.SIGINT)
        else:
            raise RuntimeError(f"postgres did not start:\n{_tail(log)}")
        password = secrets.token_urlsafe(16)
        with admin:
            admin.execute(f"CREATE ROLE flow8 LOGIN PASSWORD '{password}'")
            admin.execute("CREATE DATABASE flow8 OWNER flow8")
            version = str(admin.execute("SHOW server_version").fetchone()[0]).split()[0]  # type: ignore[index]
        yield SqlServer(
            "postgres", "127.0.0.1", port, "flow8", "flow8", password, f"PostgreSQL {version}",
            "postgres", superpass,
        )  # fmt: skip
    finally:
        if process is not None:
            _stop(process, signal.SIGINT)  # fast shutdown
        shutil.rmtree(root, ignore_errors=True)


def _wait_postgres(
    process: subprocess.Popen[bytes], port: int, password: str, log: Path
) -> Any | None:
    import psycopg

    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if "could not bind" in _tail(log) or "Address already in use" in _tail(log):
                return None
            raise RuntimeError(f"postgres exited ({process.returncode}):\n{_tail(log)}")
        try:
            return psycopg.connect(
                host="127.0.0.1", port=port, user="postgres", password=password,
                dbname="postgres", autocommit=True, connect_timeout=2,
            )  # fmt: skip
        except psycopg.OperationalError:
            time.sleep(0.1)
    raise RuntimeError(f"postgres did not answer within {STARTUP_SECONDS:g} s:\n{_tail(log)}")


# -- MariaDB ------------------------------------------------------------------------------------


def mariadb_binaries() -> tuple[str, str]:
    """(install-db, server) binaries: the MariaDB names first, then the MySQL ones."""
    extra = os.pathsep.join(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"])
    path = os.environ.get("PATH", "") + os.pathsep + extra
    install = shutil.which("mariadb-install-db", path=path) or shutil.which(
        "mysql_install_db", path=path
    )
    server = shutil.which("mariadbd", path=path) or shutil.which("mysqld", path=path)
    if install is None or server is None:
        missing = "mariadb-install-db" if install is None else "mariadbd"
        raise MissingBinary(
            f"MariaDB server binary not found ({missing}, or its mysql name): "
            "apt-get install mariadb-server"
        )
    return install, server


@contextlib.contextmanager
def running_mariadb() -> Iterator[SqlServer]:
    install, server = mariadb_binaries()
    root = _owned_tempdir("flow8-my-")
    data = root / "data"
    sock = root / "mysql.sock"
    user = pwd.getpwuid(_run_as().get("user", os.geteuid())).pw_name
    process: subprocess.Popen[bytes] | None = None
    try:
        _check_call(
            [install, "--no-defaults", f"--datadir={data}", f"--user={user}",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            cwd=root,
            what="mariadb-install-db",
        )  # fmt: skip
        log = root / "mariadb.log"
        for _ in range(5):
            port = free_port()
            process = subprocess.Popen(
                [server, "--no-defaults", f"--datadir={data}", f"--port={port}",
                 "--bind-address=127.0.0.1", f"--socket={sock}", f"--pid-file={root / 'pid'}",
                 f"--log-error={log}", f"--tmpdir={root}", f"--user={user}",
                 "--skip-log-bin", "--innodb-flush-log-at-trx-commit=0",
                 "--innodb-doublewrite=0", "--innodb-buffer-pool-size=32M",
                 "--skip-name-resolve"],
                cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **_run_as(),
            )  # fmt: skip
            admin = _wait_mariadb(process, sock, log)
            if admin is not None:
                break
            _stop(process, signal.SIGTERM)
        else:
            raise RuntimeError(f"mariadbd did not start:\n{_tail(log)}")
        password = secrets.token_urlsafe(16)
        with admin, admin.cursor() as c:
            c.execute("CREATE DATABASE flow8 CHARACTER SET utf8mb4")
            c.execute("CREATE USER 'flow8'@'127.0.0.1' IDENTIFIED BY %s", (password,))
            c.execute("GRANT ALL ON flow8.* TO 'flow8'@'127.0.0.1'")
            c.execute("CREATE USER 'admin'@'127.0.0.1' IDENTIFIED BY %s", (password,))
            c.execute("GRANT ALL ON *.* TO 'admin'@'127.0.0.1' WITH GRANT OPTION")
            c.execute("SELECT VERSION()")
            version = str(c.fetchone()[0]).split("-")[0]
        yield SqlServer(
            "mysql", "127.0.0.1", port, "flow8", "flow8", password, f"MariaDB {version}",
            "admin", password,
        )  # fmt: skip
    finally:
        if process is not None:
            _stop(process, signal.SIGTERM)
        shutil.rmtree(root, ignore_errors=True)


def _wait_mariadb(process: subprocess.Popen[bytes], sock: Path, log: Path) -> Any | None:
    import pymysql

    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if "Address already in use" in _tail(log):
                return None
            raise RuntimeError(f"mariadbd exited ({process.returncode}):\n{_tail(log)}")
        try:
            with socket.socket(socket.AF_UNIX) as probe:  # PyMySQL leaks a failed one
                probe.connect(str(sock))
        except OSError:
            time.sleep(0.1)
            continue
        try:
            return pymysql.connect(
                unix_socket=str(sock), user="root", password="", autocommit=True,
                connect_timeout=2,
            )  # fmt: skip
        except pymysql.err.OperationalError:
            time.sleep(0.1)
    raise RuntimeError(f"mariadbd did not answer within {STARTUP_SECONDS:g} s:\n{_tail(log)}")


# -- pytest fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[SqlServer]:
    """A PostgreSQL server for the session (skipped, naming the binary, when absent)."""
    try:
        postgres_binaries()
    except MissingBinary as e:
        pytest.skip(str(e))
    pytest.importorskip("psycopg", reason="psycopg is not installed (the postgres extra)")
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[SqlServer]:
    """A MariaDB server for the session (skipped, naming the binary, when absent)."""
    try:
        mariadb_binaries()
    except MissingBinary as e:
        pytest.skip(str(e))
    pytest.importorskip("pymysql", reason="PyMySQL is not installed (the mysql extra)")
    with running_mariadb() as server:
        yield server
