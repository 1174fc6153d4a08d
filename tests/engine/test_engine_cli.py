"""The function behind `flow8 modules list` (`flow8 run` is tested as a user runs it, in
tests/test_cli*.py)."""

from __future__ import annotations

from flow8.services.modules import module_catalog


def test_module_catalog() -> None:
    ids = [m["appId"] for m in module_catalog()]
    assert "transform" in ids
    assert len(ids) == len(set(ids))
