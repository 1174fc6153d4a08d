"""open_store: the one entry point that opens a backend for a URL."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
import trio

from ._catalog import CATALOG, Catalog
from ._crypto import Keyring, load_keyring
from ._mongo import MongoBackend, redact_url
from ._port import Durability, Store
from ._sqlite import SqliteBackend, sqlite_path
from ._store import StoreImpl
from .exceptions import StoreError, StoreUnavailable

log = structlog.get_logger("flow8.store")
_MONGO_DB = re.compile(r"^mongodb(?:\+srv)?://[^/]*/([^?]+)")


async def _ttl_loop(store: StoreImpl, interval: float) -> None:
    while True:
        await trio.sleep(interval)
        try:
            await store.purge_expired()
        except StoreError as e:  # a locked or full database must not kill the store
            log.warning("ttl_purge_failed", error=str(e))


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
) -> AsyncIterator[Store]:
    """Open the store at ``url`` (``sqlite:///abs/path.db`` or ``mongodb://...``).

    ``encryption`` defaults to ``load_keyring(os.environ["FLOW8_ENCRYPTION_KEYS"], data_dir)``
    (on sqlite ``data_dir`` defaults to the database file's directory).
    ``mongo_client`` injects a ready pymongo-compatible client (tests pass mongomock).
    Indexes in ``catalog`` are ensured before the store is yielded; on sqlite a background
    task purges expired (TTL) documents every ``ttl_interval`` seconds.
    """
    if durability not in ("full", "normal"):
        raise StoreError(f"durability must be 'full' or 'normal', got {durability!r}")
    env_keys = os.environ.get("FLOW8_ENCRYPTION_KEYS")
    async with trio.open_nursery() as nursery:
        engine: SqliteBackend | MongoBackend
        if url.startswith("sqlite:"):
            path = sqlite_path(url, data_dir)
            keyring = encryption or load_keyring(env_keys, data_dir or path.parent)
            engine = SqliteBackend(path, catalog, durability, busy_timeout, read_connections)
            await engine.open()
            await nursery.start(engine.serve_writer)
        elif url.startswith(("mongodb://", "mongodb+srv://")):
            keyring = encryption or load_keyring(env_keys, None, backend="mongo")
            match = _MONGO_DB.match(url)
            client = mongo_client
            if client is None:
                client = _mongo_client(url)
            engine = MongoBackend(client, match.group(1) if match else "flow8", catalog, url=url)
            await engine.open(nursery)
        else:
            raise StoreUnavailable(
                f"unsupported store URL {redact_url(url)!r}: use sqlite:///path or mongodb://..."
            )
        store = StoreImpl(engine, catalog, keyring)
        ttl_scope = trio.CancelScope()

        async def ttl() -> None:
            with ttl_scope:
                await _ttl_loop(store, ttl_interval)

        if engine.name == "sqlite":
            nursery.start_soon(ttl)
        try:
            yield store
        finally:
            ttl_scope.cancel()
            await engine.aclose()


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
