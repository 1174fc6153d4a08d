"""The sqlite backend: one file, WAL, a reader pool in worker threads and one group-committing
writer.

Reads run on a small pool of connections in worker threads, except point reads: a query that
names one document by ``_id`` (at most one row, found through the primary key index) runs
inline on the event loop's own connection. Such a read costs about 20 µs here, while the hop to
a worker thread and back costs several times that in CPU alone; the hop was most of the cost of
``GET /api/plays/{id}``. The inline connection never waits: its busy timeout is zero, and a read
that would block (a WAL recovery by another process) is retried in the pool, which waits.

Every write goes through a single writer task. It takes everything queued since its last commit
as one batch, runs the batch in a worker thread inside one ``BEGIN IMMEDIATE`` transaction (each
op in its own savepoint, so one op's error does not undo the others) and answers each op only
after the commit returned. Under ``durability="full"`` that commit is an fsync: concurrent
writers share it, which is where the throughput comes from. Several processes may open the same
file; ``busy_timeout`` arbitrates the write lock and nothing is cached across transactions.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import fcntl
import hashlib
import itertools
import os
import queue
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import attrs
import structlog
import trio

from ._catalog import Catalog, CollectionSpec
from ._filters import And, Cond, Node
from ._ops import InsertOp, Pending, PurgeOp, WriteOp
from ._port import Durability
from ._sqlcompile import index_columns
from ._sqlexec import (
    count,
    duplicate_from,
    execute,
    find,
    insert_together,
    storage_error,
    table,
)
from ._values import utcnow
from .exceptions import StoreClosed, StoreError, StoreUnavailable

log = structlog.get_logger("flow8.store")

T = TypeVar("T")

MAX_BATCH = 1024
# Upper bounds (seconds) of the commit latency histogram in `statistics()` (the metrics').
COMMIT_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PURGE_BATCH = 1000
_BATCH_FATAL = frozenset(
    {
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CANTOPEN,
    }
)


def sqlite_path(url: str, data_dir: str | os.PathLike[str] | None) -> Path:
    """``sqlite:///abs/path.db`` -> /abs/path.db; a relative path resolves under data_dir."""
    if not url.startswith("sqlite://"):
        raise StoreUnavailable(f"not a sqlite URL: {url!r}")
    rest = url[len("sqlite://") :].split("?", 1)[0]
    if not rest or rest in ("/", "/:memory:", ":memory:"):
        raise StoreUnavailable(f"sqlite URL {url!r} needs a file path (in-memory is not shared)")
    if rest.startswith("/"):
        return Path("/" + rest.lstrip("/"))
    return (Path(data_dir) if data_dir else Path.cwd()) / rest


def _private_files(path: Path) -> None:
    """The database holds every tenant's data: readable by its owner only. SQLite creates a
    new file with the process umask (0644 as a rule) and gives the -wal and -shm files the
    mode of the database file, so the file is created 0600 before SQLite opens it, and
    files an earlier version left readable by others are made private."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            info = file.stat()
            if info.st_mode & 0o077 and info.st_uid == os.getuid():
                file.chmod(0o600)


def _index_ddl(spec: CollectionSpec) -> dict[str, tuple[str, str]]:
    """sqlite index name -> (catalog index name, CREATE statement)."""
    out = {}
    for ix in spec.indexes:
        cols = index_columns(ix.fields)
        unique = "UNIQUE " if ix.unique else ""
        digest = hashlib.sha1(f"{unique}{cols}".encode()).hexdigest()[:8]
        name = f"ix_{spec.name}_{ix.name}_{digest}"
        out[name] = (
            ix.name,
            f'CREATE {unique}INDEX IF NOT EXISTS "{name}" ON {table(spec)} ({cols})',
        )
    return out


class _Busy:
    """The inline connection would have had to wait for a lock."""


_BUSY = _Busy()
_WOULD_WAIT = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def is_point_read(node: Node) -> bool:
    """True when the filter pins ``_id`` to one string (in a condition every match must meet,
    however deep the ``$and``s nest): at most one row, found by primary key."""
    if isinstance(node, Cond):
        return node.path == "_id" and node.op == "eq" and isinstance(node.value, str)
    return isinstance(node, And) and any(is_point_read(item) for item in node.items)


def _insert_run(batch: list[tuple[Pending, WriteOp]], start: int) -> list[InsertOp]:
    """The inserts into one collection that follow each other in ``batch`` from ``start``."""
    first = batch[start][1]
    if not isinstance(first, InsertOp):
        return []
    run = [first]
    for _, op in batch[start + 1 :]:
        if not isinstance(op, InsertOp) or op.spec is not first.spec:
            break
        run.append(op)
    return run


class _Retry(Exception):
    """The optimistic (savepoint-free) attempt at a batch hit a failing op."""


def _all_failed(results: list[Any]) -> bool:
    return all(isinstance(r, StoreError) for r in results)


@attrs.define
class SqliteBackend:
    path: Path
    catalog: Catalog
    durability: Durability = "full"
    busy_timeout: float = 5.0
    read_connections: int = 4
    ttl_interval: float = 60.0  # seconds between purges of expired (TTL) documents
    name: str = "sqlite"
    _writer: sqlite3.Connection | None = None
    # The host's write queue: an flock on `<db>-writer` taken around each write
    # transaction (see _attempt); -1 until opened.
    _writer_lock: int = -1
    _idle: queue.SimpleQueue[sqlite3.Connection] = attrs.field(factory=queue.SimpleQueue)
    _all: list[sqlite3.Connection] = attrs.field(factory=list)
    _limiter: trio.CapacityLimiter | None = None
    _inline: sqlite3.Connection | None = None  # point reads on the event loop (never waits)
    _queue: collections.deque[tuple[Pending, WriteOp]] = attrs.field(factory=collections.deque)
    _wake: trio.Event = attrs.field(factory=trio.Event)
    _closing: bool = False
    _closed: bool = False
    _writer_running: bool = False
    _index_names: dict[str, dict[str, str]] = attrs.field(factory=dict)
    commits: int = 0  # write transactions committed (one per group-commit batch)
    committed_ops: int = 0
    commit_seconds: float = 0.0  # the committed batches' time in SQLite, fsync included
    # How many commits took at most each of COMMIT_SECONDS_BUCKETS (not cumulative; the
    # last slot counts those slower than every bound).
    commit_buckets: list[int] = attrs.field(factory=lambda: [0] * (len(COMMIT_SECONDS_BUCKETS) + 1))
    lock_waits: int = 0  # write transactions that found another process writing
    lock_wait_seconds: float = 0.0  # and how long they waited for it

    # -- connections -----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        except sqlite3.Error as e:
            raise StoreUnavailable(f"cannot open sqlite database {str(self.path)!r}: {e}") from e
        self._all.append(conn)
        return conn

    def _open_sync(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _private_files(self.path)
        except OSError as e:
            raise StoreUnavailable(
                f"cannot create the directory of sqlite database {str(self.path)!r}: "
                f"{e.strerror or e}"
            ) from e
        try:
            lock = self.path.with_name(self.path.name + "-writer")
            self._writer_lock = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise StoreUnavailable(
                f"cannot open the writer lock of sqlite database {str(self.path)!r}: "
                f"{e.strerror or e}"
            ) from e
        conn = self._connect()
        try:
            mode = self._enable_wal(conn)
            if str(mode).lower() != "wal":
                raise StoreUnavailable(f"{str(self.path)!r}: cannot switch to WAL (got {mode})")
            sync = "FULL" if self.durability == "full" else "NORMAL"
            conn.execute(f"PRAGMA synchronous = {sync}")
            self._writer = conn
            self._ensure_schema(conn)
        except sqlite3.Error as e:
            raise storage_error(e, f"opening {str(self.path)!r}") from e

    def _enable_wal(self, conn: sqlite3.Connection) -> str:
        """Switch to WAL, retrying while another process holds the file.

        Changing the journal mode takes a lock that SQLite's busy handler does not wait for,
        so two processes opening one new file at the same moment would otherwise see
        'database is locked' at once instead of after the busy timeout.
        """
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.005
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)  # in a worker thread (open runs via to_thread)
                delay = min(delay * 2, 0.1)

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for spec in self.catalog:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {table(spec)} "
                    "(id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL, bulk TEXT)"
                )
                columns = {r[1] for r in conn.execute(f"PRAGMA table_info({table(spec)})")}
                if "bulk" not in columns:  # a database from before the column existed
                    conn.execute(f"ALTER TABLE {table(spec)} ADD COLUMN bulk TEXT")
                wanted = _index_ddl(spec)
                self._index_names[spec.name] = {k: v[0] for k, v in wanted.items()}
                existing = {
                    r[0]
                    for r in conn.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                        "AND name LIKE 'ix\\_%' ESCAPE '\\'",
                        (f"c_{spec.name}",),
                    )
                }
                for stale in existing - set(wanted):
                    conn.execute(f'DROP INDEX "{stale}"')
                for _name, (ix_name, ddl) in wanted.items():
                    try:
                        conn.execute(ddl)
                    except sqlite3.IntegrityError as e:
                        raise StoreError(
                            f"{spec.name}: cannot build unique index {ix_name!r}: existing "
                            "documents hold duplicate values"
                        ) from e
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def open(self) -> None:
        try:
            await trio.to_thread.run_sync(self._open_sync)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._close_sync)
            raise
        self._limiter = trio.CapacityLimiter(self.read_connections)
        self._inline = self._connect()
        self._inline.execute("PRAGMA query_only = 1")
        self._inline.execute("PRAGMA busy_timeout = 0")

    async def aclose(self) -> None:
        """Stop taking writes, let the queue drain, close every connection.

        A running writer drains and closes by itself; with none running (its actor already
        stopped) a last writer runs here, so no queued write is dropped.
        """
        self._closing = True
        self._wake.set()
        if not self._writer_running:
            await self.serve_writer()

    def _close_sync(self) -> None:
        for conn in self._all:
            conn.close()
        self._all.clear()
        if self._writer_lock >= 0:
            os.close(self._writer_lock)
            self._writer_lock = -1

    # -- reads ---------------------------------------------------------------------------

    def _with_reader(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
            conn.execute("PRAGMA query_only = 1")
        try:
            return fn(conn)
        except sqlite3.Error as e:
            raise storage_error(e, f"reading {str(self.path)!r}") from e
        finally:
            self._idle.put(conn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed or self._closing:
            raise StoreClosed("the store is closed")
        return await trio.to_thread.run_sync(self._with_reader, fn, limiter=self._limiter)

    def _read_inline(self, fn: Callable[[sqlite3.Connection], T]) -> T | _Busy:
        """Run a point read on the loop's connection; `_BUSY` when it would have to wait."""
        conn = self._inline
        if conn is None or self._closed or self._closing:
            return _BUSY  # the pool path raises the right error
        try:
            return fn(conn)
        except sqlite3.OperationalError as e:
            if getattr(e, "sqlite_errorcode", None) in _WOULD_WAIT:
                return _BUSY
            raise storage_error(e, f"reading {str(self.path)!r}") from e
        except sqlite3.Error as e:
            raise storage_error(e, f"reading {str(self.path)!r}") from e

    async def find(
        self,
        spec: CollectionSpec,
        filter: dict[str, Any],
        node: Node,
        sort: list[tuple[str, int]],
        skip: int,
        limit: int,
    ) -> list[dict[str, Any]]:
        now = utcnow()

        def run(c: sqlite3.Connection) -> list[dict[str, Any]]:
            return find(c, spec, node, now, sort, skip, limit)

        if skip == 0 and is_point_read(node):
            rows = self._read_inline(run)
            if not isinstance(rows, _Busy):
                await trio.lowlevel.checkpoint()  # a read is still a checkpoint, as in the pool
                return rows
        return await self._read(run)

    async def count(self, spec: CollectionSpec, filter: dict[str, Any], node: Node) -> int:
        now = utcnow()
        return await self._read(lambda c: count(c, spec, node, now))

    # -- writes --------------------------------------------------------------------------

    def statistics(self) -> dict[str, Any]:
        return {
            "backend": "sqlite",
            "location": f"sqlite:///{self.path}",
            "path": str(self.path),
            "durability": self.durability,
            "queued_writes": len(self._queue),
            "commits": self.commits,
            "committed_ops": self.committed_ops,
            "commit_seconds": self.commit_seconds,
            # Batches that waited for another process's (a worker's) write, and for how long.
            "lock_waits": self.lock_waits,
            "lock_wait_seconds": self.lock_wait_seconds,
            # Prometheus-shaped: commits that took at most each bound (+Inf: all commits).
            "commit_seconds_le": {
                str(bound): n
                for bound, n in zip(
                    COMMIT_SECONDS_BUCKETS, itertools.accumulate(self.commit_buckets), strict=False
                )
            },
        }

    def submit(self, op: WriteOp) -> Pending:
        """Queue ``op`` without waiting; ops run in submission order."""
        if self._closing:
            raise StoreClosed("the store is closed")
        pending = Pending()
        self._queue.append((pending, op))
        self._wake.set()
        return pending

    async def write(self, op: WriteOp) -> Any:
        return await self.submit(op).wait()

    def lane(self) -> SqliteBackend:
        return self  # the writer's queue is already ordered

    def _run_op(self, conn: sqlite3.Connection, op: WriteOp, now: datetime) -> Any:
        """Execute one op; a per-op failure comes back as a StoreError, batch-fatal ones raise."""
        try:
            return execute(conn, op, now)
        except sqlite3.IntegrityError as e:
            err: StoreError = duplicate_from(op.spec, e, self._index_names[op.spec.name])
            err.__cause__ = e
            return err
        except sqlite3.Error as e:
            if getattr(e, "sqlite_errorcode", None) in _BATCH_FATAL or not conn.in_transaction:
                raise
            err = StoreError(f"{op.spec.name}: sqlite refused the operation: {e}")
            err.__cause__ = e
            return err
        except StoreError as e:
            return e
        except Exception as e:
            # Anything else an op raises (a value the driver cannot encode, a bug in one op's
            # preparation) belongs to that op alone: it must never fail the rest of the batch,
            # other tenants' writes included, nor crash the writer.
            err = StoreError(f"{op.spec.name}: the write could not be made: {type(e).__name__}")
            err.__cause__ = e
            return err

    def _run_batch(self, batch: list[tuple[Pending, WriteOp]], now: datetime) -> list[Any]:
        conn = self._writer
        assert conn is not None
        try:
            return self._attempt(conn, batch, now, isolated=False)
        except _Retry:
            # Some op failed: redo the batch with one savepoint per op so only it is undone.
            return self._attempt(conn, batch, now, isolated=True)
        except Exception as e:
            # Nothing of this batch is committed: every op in it fails alike. (A per-op fault
            # never lands here; this is the database itself failing, or a bug in the batch
            # machinery, which must fail writes rather than crash the writer.)
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                fatal = storage_error(e, f"writing {str(self.path)!r}")
            else:
                fatal = StoreError(f"the write batch failed: {type(e).__name__}")
            fatal.__cause__ = e
            return [fatal] * len(batch)

    def _attempt(
        self,
        conn: sqlite3.Connection,
        batch: list[tuple[Pending, WriteOp]],
        now: datetime,
        isolated: bool,
    ) -> list[Any]:
        with self._host_write_turn():
            conn.execute("BEGIN IMMEDIATE")
            try:
                if isolated:
                    results = self._one_by_one(conn, batch, now)
                else:
                    results = self._all_at_once(conn, batch, now)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        return results

    @contextlib.contextmanager
    def _host_write_turn(self) -> Iterator[None]:
        """Wait in the kernel for this host's other writers, then write.

        SQLite lets one connection write at a time and makes the others poll: its busy
        handler sleeps 1, 2, 5, 10 ... up to 100 ms between tries, so with several processes
        (the workers of one ``flow8 serve``) a writer that lost once sleeps longer each time
        and keeps losing to the ones that just started to poll: throughput fell and p99 grew
        to seconds as processes were added. An flock on ``<db>-writer`` taken around each
        write transaction lines the processes' writers up instead: a waiter sleeps in the
        kernel and is woken the moment the holder lets go, with no polling interval, so
        SQLite's own lock is never contended between them (its busy timeout still arbitrates
        with anything else that writes to the file). The lock is the holder's for one batch
        and goes with its process if it dies.
        """
        if self._writer_lock < 0:
            yield
            return
        try:
            fcntl.flock(self._writer_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            began = time.perf_counter()
            fcntl.flock(self._writer_lock, fcntl.LOCK_EX)
            self.lock_waits += 1
            self.lock_wait_seconds += time.perf_counter() - began
        try:
            yield
        finally:
            fcntl.flock(self._writer_lock, fcntl.LOCK_UN)

    def _all_at_once(
        self, conn: sqlite3.Connection, batch: list[tuple[Pending, WriteOp]], now: datetime
    ) -> list[Any]:
        """The optimistic pass: no savepoints; any failing op raises _Retry. Consecutive
        inserts into one collection (plays, layers, audit entries of many requests) go in as
        one statement (see _ROWS_PER_INSERT in _sqlexec)."""
        results: list[Any] = []
        i = 0
        while i < len(batch):
            run = _insert_run(batch, i)
            if len(run) > 1:
                results.extend(self._insert_together(conn, run))
                i += len(run)
                continue
            value = self._run_op(conn, batch[i][1], now)
            if isinstance(value, StoreError):
                raise _Retry
            results.append(value)
            i += 1
        return results

    def _one_by_one(
        self, conn: sqlite3.Connection, batch: list[tuple[Pending, WriteOp]], now: datetime
    ) -> list[Any]:
        """After a failure: each op in its own savepoint, so only a failing op is undone."""
        results: list[Any] = []
        for _, op in batch:
            conn.execute("SAVEPOINT op")
            value = self._run_op(conn, op, now)
            if isinstance(value, StoreError):
                conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            results.append(value)
        return results

    def _insert_together(self, conn: sqlite3.Connection, run: list[InsertOp]) -> list[list[str]]:
        try:
            return insert_together(conn, run)
        except sqlite3.Error as e:
            if getattr(e, "sqlite_errorcode", None) in _BATCH_FATAL or not conn.in_transaction:
                raise
            raise _Retry from e  # e.g. a duplicate: one by one finds the op it belongs to
        except Exception as e:  # a StoreError, or a value the driver refused: find its op
            raise _Retry from e

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The group-commit writer, and beside it the batched purge of expired (TTL)
        documents every ``ttl_interval`` seconds, until :meth:`aclose`; restartable."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._purge_expired_forever)
            try:
                await self.serve_writer(task_status=task_status)
            finally:
                nursery.cancel_scope.cancel()

    async def _purge_expired_forever(self) -> None:
        while True:
            await trio.sleep(self.ttl_interval)
            try:
                await self.purge_expired()
            except StoreError as e:  # a locked or full database must not stop the writer
                log.warning("ttl_purge_failed", error=str(e))

    async def serve_writer(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The group-commit writer: runs queued writes in batches, one transaction each.

        Restartable: a writer that is cancelled (its actor stopped) or crashes leaves the
        queue to the next one; only :meth:`aclose` ends the backend, after the queue drained.
        """
        if self._writer_running:
            raise StoreError("the sqlite writer is already running")
        self._writer_running = True
        task_status.started()
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._wake = trio.Event()
                    await self._wake.wait()
                    continue
                batch: list[tuple[Pending, WriteOp]] = []
                while self._queue and len(batch) < MAX_BATCH:
                    batch.append(self._queue.popleft())
                try:
                    # Shielded: a batch handed to SQLite finishes and is answered even when
                    # the writer is being stopped; it is bounded by the busy timeout.
                    with trio.CancelScope(shield=True):
                        began = time.perf_counter()
                        results = await trio.to_thread.run_sync(self._run_batch, batch, utcnow())
                        took = time.perf_counter() - began
                except BaseException as e:
                    failure = StoreError(f"the write batch could not run: {e!r}")
                    for pending, _ in batch:
                        pending.fail(failure)
                    raise
                if not _all_failed(results):
                    self.commits += 1
                    self.committed_ops += len(batch)
                    self.commit_seconds += took
                    self.commit_buckets[bisect.bisect_left(COMMIT_SECONDS_BUCKETS, took)] += 1
                for (pending, _), result in zip(batch, results, strict=True):
                    if isinstance(result, StoreError):
                        pending.fail(result)
                    else:
                        pending.resolve(result)
        finally:
            self._writer_running = False
            if self._closing:
                await self._close_now()

    async def _close_now(self) -> None:
        if self._closed:
            return
        self._closed = True
        closed = StoreClosed("the store closed before this write was executed")
        while self._queue:
            self._queue.popleft()[0].fail(closed)
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._close_sync)

    async def purge_expired(self) -> int:
        total = 0
        for spec in self.catalog:
            if spec.ttl is None:
                continue
            while True:
                n = int(await self.write(PurgeOp(spec, PURGE_BATCH)))
                total += n
                if n < PURGE_BATCH:
                    break
        return total
