"""Channel listener tests run on the real clock: real sockets on loopback, a real sqlite
store in tmp_path, the channels subtree in a real actor runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from channel_fixtures import ChannelEnv, open_channel_env

from flow8.store import Keyring, Store, open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(
        f"sqlite:///{tmp_path / 'flow8.db'}",
        data_dir=tmp_path,
        durability="normal",
        encryption=Keyring.generate(),
    ) as s:
        yield s


@pytest.fixture
async def env(store: Store) -> AsyncIterator[ChannelEnv]:
    async with open_channel_env(store) as e:
        yield e
