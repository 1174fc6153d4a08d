"""The `flow8` command as a user runs it (a real process, a real data dir)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLOW8_", "SERVER_"))}
    clean["FLOW8_DATA_DIR"] = str(tmp_path / "data")
    return clean


def flow8(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flow8.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_init_creates_the_owner_once(env: dict[str, str], tmp_path: Path) -> None:
    first = flow8(env, tmp_path, "init", "--company", "Acme", "--email", "Owner@Example.com",
                  "--password", "correct horse battery")  # fmt: skip
    assert first.returncode == 0, first.stderr
    created = json.loads(first.stdout)
    assert created["email"] == "owner@example.com"
    assert created["companyId"]
    assert created["userId"]
    assert "correct horse battery" not in first.stdout + first.stderr

    again = flow8(env, tmp_path, "init", "--company", "Other", "--email", "x@example.com",
                  "--password", "another long password")  # fmt: skip
    assert again.returncode == 1
    assert "flow8:" in again.stderr
    assert "Traceback" not in again.stderr


def test_run_flow_file_prints_the_play_and_exit_code(env: dict[str, str], tmp_path: Path) -> None:
    flow = {
        "name": "double",
        "flowlets": [
            {"ref": "calc", "appId": "transform",
             "args": {"expression": "n * 2", "input": "{{ $prev.args }}"}},
        ],
    }  # fmt: skip
    path = tmp_path / "double.json"
    path.write_text(json.dumps(flow))
    done = flow8(env, tmp_path, "run", str(path), "--input", '{"n": 21}')
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["state"] == "DONE"
    assert result["out"] == 42
    assert result["error"] is None
    assert result["playId"]

    failing = {"name": "boom", "flowlets": [
        {"ref": "f", "appId": "fail", "args": {"message": "no invoices today"}}]}  # fmt: skip
    path.write_text(json.dumps(failing))
    failed = flow8(env, tmp_path, "run", str(path))
    assert failed.returncode == 1
    result = json.loads(failed.stdout)
    assert result["state"] == "FAIL"
    assert "no invoices today" in json.dumps(result["error"])


def test_run_rejects_bad_input_and_invalid_flows(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"name": "bad", "flowlets": [{"ref": "a", "appId": "nope"}]}))
    bad_input = flow8(env, tmp_path, "run", str(path), "--input", "{not json")
    assert bad_input.returncode == 2
    assert "--input is not valid JSON" in bad_input.stderr
    invalid = flow8(env, tmp_path, "run", str(path))
    assert invalid.returncode == 1
    assert "nope" in invalid.stderr
    assert "Traceback" not in invalid.stderr

    typed = {"name": "typed", "inputSchema": {"type": "object", "required": ["n"]},
             "flowlets": [{"ref": "a", "appId": "noop"}]}  # fmt: skip
    path.write_text(json.dumps(typed))
    wrong_input = flow8(env, tmp_path, "run", str(path), "--input", '{"m": 1}')
    assert wrong_input.returncode == 1
    assert "n" in wrong_input.stderr
    assert "Traceback" not in wrong_input.stderr
    unknown = flow8(env, tmp_path, "run", "--flow", "no-such-flow")
    assert unknown.returncode == 1
    assert "Traceback" not in unknown.stderr


def test_modules_list(env: dict[str, str], tmp_path: Path) -> None:
    listed = flow8(env, tmp_path, "modules", "list")
    assert listed.returncode == 0
    app_ids = {line.split()[0] for line in listed.stdout.splitlines()}
    assert {"set", "transform", "iterator", "aggregator", "kv-get", "delay"} <= app_ids
    as_json = json.loads(flow8(env, tmp_path, "modules", "list", "--json").stdout)
    by_id = {module["appId"]: module for module in as_json}
    assert by_id["kv-append"]["idempotent"] is False
    assert by_id["set"]["argsSchema"]["type"] == "object"


def test_keys_rotate_reports_what_it_rewrote(env: dict[str, str], tmp_path: Path) -> None:
    rotated = flow8(env, tmp_path, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert json.loads(rotated.stdout) == {"reencrypted": 0}
    assert (tmp_path / "data" / "encryption.key").exists()
