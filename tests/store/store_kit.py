"""What the store tests share: a catalog with test collections, a key ring, and
``open_test_store`` for each backend (sqlite in tmp_path, memory, mongomock, a real MongoDB at
MONGO_URI). The fixtures over them are in conftest.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import mongomock

from flow8.store import CATALOG, CollectionSpec, Keyring, Store, index, open_store

TEST_CATALOG = CATALOG.extended(
    # unindexed: full MongoDB semantics (arrays, mixed types) on every path
    CollectionSpec("docs", "tenant", cross_tenant=True),
    CollectionSpec("sys_docs", "system"),
    # indexed scalar paths: the compiler's index-friendly branch, no array membership
    CollectionSpec(
        "scalars", "tenant", (index("company_id", "a"), index("sub.x"), index("b", "a"))
    ),
    CollectionSpec(
        "things",
        "tenant",
        (
            index("company_id", "k", unique=True),
            index("company_id", "n"),
            index("tags", multikey=True),
        ),
    ),
    CollectionSpec(
        "leases",
        "tenant",
        (index("expires_at", expire_after_seconds=0), index("company_id", "key", unique=True)),
    ),
    CollectionSpec(
        "records",
        "tenant",
        (index("company_id", "n"),),
        frozenset({"secret"}),
        bulk_fields=frozenset({"payload"}),
    ),
    CollectionSpec(
        "vault",
        "tenant",
        (index("company_id", "name", unique=True),),
        frozenset({"secret", "other"}),
        cross_tenant=True,
    ),
)

KEYS = Keyring.generate("k1")


def backend_of(store: Store) -> Any:
    """The backend behind a store, for tests that inspect raw storage."""
    return cast(Any, store).backend


def mongo_uri() -> str | None:
    return os.environ.get("MONGO_URI") or None


@asynccontextmanager
async def open_test_store(kind: str, tmp_path: Path, **kw: Any) -> AsyncIterator[Store]:
    kw.setdefault("catalog", TEST_CATALOG)
    kw.setdefault("encryption", KEYS)
    if kind == "sqlite":
        async with open_store(f"sqlite://{tmp_path}/flow8.db", data_dir=tmp_path, **kw) as s:
            yield s
    elif kind == "memory":
        async with open_store(f"memory://{tmp_path.name}", **kw) as s:
            yield s
    elif kind == "mongomock":
        mock: Any = mongomock.MongoClient(tz_aware=True)
        async with open_store("mongodb://mock/flow8test", mongo_client=mock, **kw) as s:
            yield s
    else:
        uri = mongo_uri()
        assert uri is not None
        import pymongo

        name = f"flow8test_{uuid.uuid4().hex[:8]}"
        client: Any = pymongo.MongoClient(uri, tz_aware=True)  # the real server
        try:
            base = uri.split("?")[0].rstrip("/")
            async with open_store(f"{base}/{name}", mongo_client=client, **kw) as s:
                yield s
        finally:
            client.drop_database(name)
            client.close()
