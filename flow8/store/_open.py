"""open_store: the one entry point that opens a backend for a URL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ._catalog import CATALOG, Catalog
from ._crypto import Keyring
from ._port import Durability, Store


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

    ``encryption`` defaults to ``load_keyring(os.environ["FLOW8_ENCRYPTION_KEYS"], data_dir)``.
    ``mongo_client`` injects a ready pymongo-compatible client (tests pass mongomock).
    Indexes in ``catalog`` are ensured before the store is yielded; a background task purges
    expired (TTL) documents every ``ttl_interval`` seconds on sqlite.
    """
    raise NotImplementedError("backends land in the next commit")
    yield  # type: ignore[unreachable]
