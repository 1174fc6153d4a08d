"""The functions behind `flow8 run` and `flow8 modules list`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flow8.domain import FlowValidationError
from flow8.engine import module_catalog, run_flow_file, run_stored_flow


async def test_run_flow_file_returns_the_result(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    path.write_text(
        json.dumps(
            {
                "name": "cli",
                "flowlets": [
                    {"ref": "a", "appId": "set", "args": {"value": "{{ $prev.args.n + 1 }}"}}
                ],
            }
        )
    )
    result = await run_flow_file(path, {"n": 41}, data_dir=tmp_path)
    assert result["state"] == "DONE"
    assert result["out"] == 42
    assert result["error"] is None
    assert result["playId"]


async def test_failed_flow_reports_state_and_error(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    path.write_text(
        json.dumps(
            {"name": "f", "flowlets": [{"ref": "x", "appId": "fail", "args": {"message": "nope"}}]}
        )
    )
    result = await run_flow_file(path, data_dir=tmp_path)
    assert result["state"] == "FAIL"
    assert "nope" in result["error"]


async def test_bad_flow_files_raise_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    path.write_text("{not json")
    with pytest.raises(FlowValidationError):
        await run_flow_file(path, data_dir=tmp_path)
    path.write_text(json.dumps({"name": "b", "flowlets": [{"ref": "a", "appId": "ghost"}]}))
    with pytest.raises(FlowValidationError, match="ghost"):
        await run_flow_file(path, data_dir=tmp_path)


async def test_run_stored_flow(tmp_path: Path) -> None:
    from flow8.domain import parse_flow_definition
    from flow8.engine import Engine, EventBus
    from flow8.store import open_store

    async with open_store(f"sqlite:///{tmp_path / 'flow8.db'}", data_dir=tmp_path) as store:
        flow = await Engine(store, EventBus()).flows.create(
            "local",
            parse_flow_definition(
                {
                    "name": "s",
                    "flowlets": [{"ref": "a", "appId": "set", "args": {"value": "stored"}}],
                }
            ),
        )
    result = await run_stored_flow(flow.id, data_dir=tmp_path)
    assert result["out"] == "stored"


def test_module_catalog() -> None:
    ids = [m["appId"] for m in module_catalog()]
    assert "transform" in ids
    assert len(ids) == len(set(ids))


async def test_run_stored_flow_unknown_id(tmp_path: Path) -> None:
    from flow8.engine import FlowNotFound

    with pytest.raises(FlowNotFound):
        await run_stored_flow("missing", data_dir=tmp_path)


async def test_input_not_matching_the_schema_is_reported(tmp_path: Path) -> None:
    from flow8.engine import InvalidInput

    path = tmp_path / "flow.json"
    path.write_text(
        json.dumps(
            {
                "name": "s",
                "inputSchema": {"type": "object", "required": ["n"]},
                "flowlets": [{"ref": "a", "appId": "noop"}],
            }
        )
    )
    with pytest.raises(InvalidInput, match="'n' is a required property"):
        await run_flow_file(path, {}, data_dir=tmp_path)
