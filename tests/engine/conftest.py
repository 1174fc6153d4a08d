"""Fixtures: an engine running its dispatcher over an in-memory store, on virtual time unless a
test is marked ``wall_clock`` (see tests/support/virtual_time.py); ``sqlite_store`` and
``sqlite_engine`` for the tests about what sqlite keeps (they run on the real clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from engine_testkit import running_engine
from support.virtual_time import default_to_virtual_time, require_wall_clock

from flow8.engine import Engine
from flow8.store import Store, open_store


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    default_to_virtual_time(Path(__file__).parent, items)


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with open_store("memory://engine-tests") as s:
        yield s


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    require_wall_clock("the sqlite store")
    async with open_store(
        f"sqlite:///{tmp_path / 'flow8.db'}", data_dir=tmp_path, durability="normal"
    ) as s:
        yield s


@pytest.fixture(params=["memory", pytest.param("sqlite", marks=pytest.mark.wall_clock)])
async def each_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each store in turn, for the tests of recovery after an instance died: the engine's
    logic on virtual time (memory), and what sqlite's pipelined commits leave behind."""
    url = "memory://engine-tests" if request.param == "memory" else f"sqlite:///{tmp_path / 'f.db'}"
    async with open_store(url, data_dir=tmp_path, durability="normal") as s:
        yield s


@pytest.fixture
async def engine(store: Store) -> AsyncIterator[Engine]:
    async with running_engine(store) as eng:
        yield eng


@pytest.fixture
async def sqlite_engine(sqlite_store: Store) -> AsyncIterator[Engine]:
    async with running_engine(sqlite_store) as eng:
        yield eng
