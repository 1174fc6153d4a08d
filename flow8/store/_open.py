"""open_store: the one entry point that opens a backend for a URL."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
import trio

from ._backend import Backend
from ._catalog import CATALOG, Catalog
from ._crypto import Keyring, load_keyring
from ._memory import MemoryBackend
from ._mongo import MongoBackend
from ._mongo_support import redact_url
from ._port import Durability, Store
from ._sqlite import SqliteBackend, sqlite_path
from ._store import StoreImpl
from .exceptions import StoreError, StoreUnavailable

log = structlog.get_logger("flow8.store")
_MONGO_DB = re.compile(r"^mongodb(?:\+srv)?://[^/]*/([^?]+)")


@asynccontextmanager
async def open_store(
    url: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    durability: Durability = "full",
    encryption: Keyring | None = None,
    catalog: Catalog = CATALOG,
    mongo_client: Any = None,
    read_connections: int = 4,
    busy_timeout: float = 5.0,
    ttl_interval: float = 60.0,
    serve: bool = True,
) -> AsyncIterator[Store]:
    """Open the store at ``url`` (``sqlite:///abs/path.db``, ``mongodb://...`` or
    ``memory://[label]``: a fresh, empty store held in this process, for tests).

    ``encryption`` defaults to ``load_keyring(os.environ["FLOW8_ENCRYPTION_KEYS"], data_dir)``
    (on sqlite ``data_dir`` defaults to the database file's directory).
    ``mongo_client`` injects a ready pymongo-compatible client (tests pass mongomock).
    Indexes in ``catalog`` are ensured before the store is yielded; on sqlite a background
    task purges expired (TTL) documents every ``ttl_interval`` seconds.

    With ``serve=False`` the store's own work (group-commit writer, TTL purge, write lanes)
    is left to the caller, who runs ``store.serve`` as a supervised child (the ``store``
    actor of the tree); writes wait until it runs. Leaving the block drains queued writes
    and closes the store either way.
    """
    if durability not in ("full", "normal"):
        raise StoreError(f"durability must be 'full' or 'normal', got {durability!r}")
    env_keys = os.environ.get("FLOW8_ENCRYPTION_KEYS")
    backend: Backend
    # Open (and fail) before any nursery exists, so start-up errors surface unwrapped.
    if url.startswith("sqlite:"):
        path = sqlite_path(url, data_dir)
        keyring = encryption or load_keyring(env_keys, data_dir or path.parent)
        backend = SqliteBackend(
            path, catalog, durability, busy_timeout, read_connections, ttl_interval=ttl_interval
        )
    elif url.startswith("memory://"):
        keyring = encryption or load_keyring(env_keys, None, backend="memory")
        backend = MemoryBackend(catalog, url[len("memory://") :], ttl_interval=ttl_interval)
    elif url.startswith(("mongodb://", "mongodb+srv://")):
        keyring = encryption or load_keyring(env_keys, None, backend="mongo")
        match = _MONGO_DB.match(url)
        client = mongo_client if mongo_client is not None else _mongo_client(url)
        backend = MongoBackend(client, match.group(1) if match else "flow8", catalog, url=url)
    else:
        raise StoreUnavailable(
            f"unsupported store URL {redact_url(url)!r}: use sqlite:///path, mongodb://... "
            "or memory://"
        )
    await backend.open()
    store = StoreImpl(backend, catalog, keyring)
    log.info("store_opened", **store.statistics())
    try:
        async with trio.open_nursery() as nursery:
            if serve:
                await nursery.start(store.serve)
            try:
                yield store
            finally:
                with trio.CancelScope(shield=True):  # bounded: the queue drains, then closes
                    await backend.aclose()
    except BaseExceptionGroup as group:
        # The nursery wraps whatever the caller's block raised; hand that back as it was.
        if len(group.exceptions) != 1:
            raise
        inner = group.exceptions[0]
        context, cause, suppress = inner.__context__, inner.__cause__, inner.__suppress_context__
        try:
            raise inner
        finally:
            # keep the caller's own chaining exactly as it was raised
            inner.__context__, inner.__cause__ = context, cause
            inner.__suppress_context__ = suppress


async def serve_store(
    url: str,
    *,
    task_status: trio.TaskStatus[Store] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """The store as a long-lived service: ``store = await nursery.start(serve_store, url)``.

    Runs until cancelled; pending writes are flushed before it returns.
    """
    async with open_store(url, **options) as store:
        task_status.started(store)
        await trio.sleep_forever()


def _mongo_client(url: str) -> Any:
    from pymongo import MongoClient
    from pymongo.errors import ConfigurationError, InvalidURI

    try:
        return MongoClient(
            url,
            tz_aware=True,
            retryWrites=True,
            w="majority",
            serverSelectionTimeoutMS=5000,
            maxPoolSize=16,
        )
    except (ConfigurationError, InvalidURI) as e:
        raise StoreUnavailable(f"invalid MongoDB URL {redact_url(url)}: {e}") from None
