"""The attack suite's fixture: a fresh `flow8 serve` per test (see attack_kit.py). The helpers
live in attack_kit, not here: a test module that imported them from "conftest" would get
another directory's conftest when pytest runs several test directories in one command."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from attack_kit import Target, launch


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    """A fresh server for one test, stopped (and required to exit 0) afterwards."""
    server = launch(tmp_path)
    yield server
    if server.process.returncode is None:
        server.logs()
