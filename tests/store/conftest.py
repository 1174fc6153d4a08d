"""Store fixtures: one parametrized ``store`` runs every contract test on sqlite (a real file in
tmp_path), on the memory backend, on mongomock (the oracle) and on a real MongoDB when
MONGO_URI is set. What the tests import is in store_kit.py: a test module that imported it
from "conftest" would get another directory's conftest when pytest runs several test
directories in one command."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_kit import mongo_uri, open_test_store

from flow8.store import Store


@pytest.fixture(params=["sqlite", "memory", "mongomock", "mongo"])
def backend_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "mongo" and mongo_uri() is None:
        pytest.skip("MONGO_URI not set: real MongoDB contract run skipped")
    return kind


@pytest.fixture
async def store(backend_kind: str, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_test_store(backend_kind, tmp_path) as s:
        yield s


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_test_store("sqlite", tmp_path) as s:
        yield s
