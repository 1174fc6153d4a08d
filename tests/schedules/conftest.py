"""Schedule tests run on virtual time (tests/support/virtual_time.py) unless marked
``wall_clock`` (the real-process tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.virtual_time import default_to_virtual_time


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    default_to_virtual_time(Path(__file__).parent, items)
