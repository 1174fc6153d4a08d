"""Fixtures: a real sqlite store in tmp_path and an engine running its dispatcher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from engine_testkit import running_engine

from flow8.engine import Engine
from flow8.store import Store, open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(
        f"sqlite:///{tmp_path / 'flow8.db'}", data_dir=tmp_path, durability="normal"
    ) as s:
        yield s


@pytest.fixture
async def engine(store: Store) -> AsyncIterator[Engine]:
    async with running_engine(store) as eng:
        yield eng
