"""The `flow8` command as a user runs it: a real data dir, each command with its own environment
and working directory (in the test's process, see support.cli; the entry point itself is run
as a real process once, by the first test)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.cli import run_cli

from flow8.services.audit import os_user


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLOW8_", "SERVER_"))}
    clean["FLOW8_DATA_DIR"] = str(tmp_path / "data")
    return clean


def flow8(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, cwd, *args)


def flow8_process(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as a process of its own: ``python -m flow8.cli``."""
    return subprocess.run(
        [sys.executable, "-m", "flow8.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_init_creates_the_owner_once(env: dict[str, str], tmp_path: Path) -> None:
    first = flow8_process(env, tmp_path, "init", "--company", "Acme",
                          "--email", "Owner@Example.com",
                          "--password", "correct horse battery")  # fmt: skip
    assert first.returncode == 0, first.stderr
    created = json.loads(first.stdout)
    assert created["email"] == "owner@example.com"
    assert created["companyId"]
    assert created["userId"]
    # which store it wrote to: the one serve reads from the same data dir
    assert created["store"] == f"sqlite:///{(tmp_path / 'data' / 'flow8.db').resolve()}"
    assert "correct horse battery" not in first.stdout + first.stderr

    again = flow8_process(env, tmp_path, "init", "--company", "Other",
                          "--email", "x@example.com",
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
    lone = flow8(env, tmp_path, "run", str(path), "--input", '{"a": ["\\udfff"]}')
    assert lone.returncode == 2
    assert "--input a[0]: text is not valid Unicode" in lone.stderr
    path.write_text('{"name": "x\\udfff", "flowlets": []}')
    lone_file = flow8(env, tmp_path, "run", str(path))
    assert lone_file.returncode == 1
    assert "name: text is not valid Unicode" in lone_file.stderr
    assert "Traceback" not in lone_file.stderr
    path.write_text(json.dumps({"name": "bad", "flowlets": [{"ref": "a", "appId": "nope"}]}))
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


def _install(env: dict[str, str], cwd: Path, company: str = "Acme") -> str:
    """`flow8 init` with owner o@example.com; the new company's id."""
    owner = flow8(env, cwd, "init", "--company", company, "--email", "o@example.com",
                  "--password", "correct horse battery")  # fmt: skip
    assert owner.returncode == 0, owner.stderr
    company_id: str = json.loads(owner.stdout)["companyId"]
    return company_id


def in_store(env: dict[str, str], cwd: Path, body: str, *args: str) -> Any:
    """Run ``body`` in another process on the same data dir, with ``store`` the store as
    configured and ``argv`` the ``args``; what it prints as JSON comes back."""
    script = (
        "import json, sys, trio\n"
        "from flow8.configured import open_configured_store\n"
        "from flow8.config import load_settings\n"
        "from flow8.logs import configure_logging\n"
        "configure_logging('warning', 'json')\n"
        "argv = sys.argv[1:]\n"
        "async def main():\n"
        "    async with open_configured_store(load_settings()) as store:\n"
        + textwrap.indent(textwrap.dedent(body).strip() + "\n", " " * 8)
        + "trio.run(main)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _audit_of(env: dict[str, str], cwd: Path, company: str) -> list[dict[str, Any]]:
    """The company's audit trail, read from the same data dir by another process."""
    rows: list[dict[str, Any]] = in_store(env, cwd, """
        from flow8.services.audit import AuditFilter, AuditQueries
        rows, _ = await AuditQueries(store).page(argv[0], AuditFilter(), skip=0, limit=50)
        print(json.dumps(rows, default=str))
    """, company)  # fmt: skip
    return rows


def test_flows_export_imports_unchanged_and_import_versions(
    env: dict[str, str], tmp_path: Path
) -> None:
    company = _install(env, tmp_path)
    source = tmp_path / "double.json"
    source.write_text(json.dumps({"name": "double", "flowlets": [
        {"ref": "calc", "appId": "transform",
         "args": {"expression": "n * 2", "input": "{{ $prev.args }}"}}]}))  # fmt: skip

    created = flow8(env, tmp_path, "flows", "import", str(source), "--company", company)
    assert created.returncode == 0, created.stderr
    first = json.loads(created.stdout)
    assert first["name"] == "double"
    assert first["version"] == 1

    exported = tmp_path / "exported.json"
    done = flow8(env, tmp_path, "flows", "export", first["id"], "--company", company,
                 "--output", str(exported))  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The export is an import body: stored again it makes an identical flow.
    copy = json.loads(flow8(env, tmp_path, "flows", "import", str(exported),
                            "--company", company).stdout)  # fmt: skip
    assert copy["id"] != first["id"]
    again = flow8(env, tmp_path, "flows", "export", copy["id"], "--company", company)
    assert json.loads(again.stdout) == json.loads(exported.read_text())

    # --flow stores the file as the next version; the old version stays exportable.
    edited = json.loads(exported.read_text())
    edited["name"] = "triple"
    edited["flowlets"][0]["args"]["expression"] = "n * 3"
    exported.write_text(json.dumps(edited))
    updated = flow8(env, tmp_path, "flows", "import", str(exported), "--company", company,
                    "--flow", first["id"])  # fmt: skip
    assert json.loads(updated.stdout) == {"id": first["id"], "name": "triple", "version": 2}
    old = flow8(env, tmp_path, "flows", "export", first["id"], "--company", company,
                "--version", "1")  # fmt: skip
    assert json.loads(old.stdout)["flowlets"][0]["args"]["expression"] == "n * 2"
    ran = flow8(env, tmp_path, "run", "--flow", first["id"], "--company", company,
                "--input", '{"n": 5}')  # fmt: skip
    assert json.loads(ran.stdout)["out"] == 15, ran.stderr

    listed = json.loads(flow8(env, tmp_path, "flows", "list", "--company", company,
                              "--json").stdout)  # fmt: skip
    assert {(row["id"], row["name"], row["version"]) for row in listed} == {
        (first["id"], "triple", 2), (copy["id"], "double", 1)}  # fmt: skip

    # Each import is in the company's audit trail, with before and after state.
    trail = {(row["action"], row["target_id"]): row for row in _audit_of(env, tmp_path, company)}
    made = trail[("flow_created", first["id"])]
    assert made["user_agent"] == "flow8-cli"
    assert made["after"]["name"] == "double"
    changed = trail[("flow_updated", first["id"])]
    assert changed["before"]["name"] == "double"
    assert changed["after"]["name"] == "triple"
    assert changed["details"] == {"via": "cli", "osUser": os_user(), "version": 2}


def test_flows_import_refuses_bad_files_and_unknown_targets(
    env: dict[str, str], tmp_path: Path
) -> None:
    company = _install(env, tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "flowlets": [
        {"ref": "a", "appId": "nope"}, {"ref": "a", "appId": "noop"}]}))  # fmt: skip
    refused = flow8(env, tmp_path, "flows", "import", str(bad), "--company", company)
    assert refused.returncode == 1
    problems = refused.stderr.strip().splitlines()
    assert len(problems) >= 2, refused.stderr  # every problem, one line each
    assert all(line.startswith("flow8: invalid flow: ") for line in problems)
    assert any("nope" in line for line in problems)
    assert any("ref" in line for line in problems)

    bad.write_text("{not json")
    unreadable = flow8(env, tmp_path, "flows", "import", str(bad), "--company", company)
    assert unreadable.returncode == 1
    assert "cannot read flow file" in unreadable.stderr
    listed = flow8(env, tmp_path, "flows", "list", "--company", company, "--json")
    assert json.loads(listed.stdout) == []  # nothing half-stored

    good = tmp_path / "good.json"
    good.write_text(json.dumps({"name": "ok", "flowlets": [{"ref": "a", "appId": "noop"}]}))
    for args, message in (
        (("flows", "import", str(good), "--company", "no-such"), "company 'no-such' not found"),
        (("flows", "import", str(good), "--company", company, "--flow", "nope"), "not found"),
        (("flows", "export", "nope", "--company", company), "not found"),
    ):
        failed = flow8(env, tmp_path, *args)
        assert failed.returncode == 1, args
        assert message in failed.stderr, failed.stderr
        assert "Traceback" not in failed.stderr
    assert json.loads(flow8(env, tmp_path, "flows", "list", "--company", company,
                            "--json").stdout) == []  # fmt: skip


def test_run_flow_uses_the_keys_set_in_config_yml(env: dict[str, str], tmp_path: Path) -> None:
    """Keys configured only in conf/config.yml (not in the environment) are the keys
    `flow8 run --flow` encrypts with: the server must be able to read what the run stored."""
    key = base64.b64encode(b"k" * 32).decode()
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yml").write_text(f"security:\n  encryption_keys: 'cfg1:{key}'\n")
    company = _install(env, tmp_path)
    flow = tmp_path / "remember.json"
    flow.write_text(json.dumps({"name": "remember", "flowlets": [
        {"ref": "s", "appId": "kv-set", "args": {"key": "colour", "value": "teal"}}]}))  # fmt: skip
    flow_id = json.loads(flow8(env, tmp_path, "flows", "import", str(flow),
                               "--company", company).stdout)["id"]  # fmt: skip
    ran = flow8(env, tmp_path, "run", "--flow", flow_id, "--company", company)
    assert ran.returncode == 0, ran.stderr
    assert not (tmp_path / "data" / "encryption.key").exists()  # no key of its own

    stored = in_store(env, tmp_path, """
        kv = store.tenant(argv[0]).collection("kv")
        print(json.dumps([doc["value"] for doc in await kv.find({"key": "colour"})]))
    """, company)  # fmt: skip
    assert stored == ["teal"]


def _add_company(env: dict[str, str], cwd: Path, name: str) -> None:
    """A second company, created as POST /api/companies would (the owner signs in)."""
    in_store(env, cwd, """
        from flow8.services.identity import IdentityService
        ids = IdentityService(store)
        login = await ids.login("o@example.com", "correct horse battery",
                                ip="127.0.0.1", user_agent="test")
        await ids.create_company(login.principal, argv[0])
        print("null")
    """, name)  # fmt: skip


def test_the_company_is_named_by_id_or_slug_or_is_the_only_one(
    env: dict[str, str], tmp_path: Path
) -> None:
    none_yet = flow8(env, tmp_path, "flows", "list")
    assert none_yet.returncode == 1
    assert "run flow8 init" in none_yet.stderr

    acme = _install(env, tmp_path, "Acme Corp")
    flow = tmp_path / "ok.json"
    flow.write_text(json.dumps({"name": "ok", "flowlets": [{"ref": "a", "appId": "noop"}]}))
    # One company: it need not be named.
    stored = json.loads(flow8(env, tmp_path, "flows", "import", str(flow)).stdout)
    ran = flow8(env, tmp_path, "run", "--flow", stored["id"])
    assert json.loads(ran.stdout)["state"] == "DONE", ran.stderr

    _add_company(env, tmp_path, "Globex")
    several = flow8(env, tmp_path, "flows", "list")
    assert several.returncode == 1
    assert "several companies" in several.stderr
    by_slug = flow8(env, tmp_path, "flows", "list", "--company", "acme-corp", "--json")
    by_id = flow8(env, tmp_path, "flows", "list", "--company", acme, "--json")
    assert json.loads(by_slug.stdout) == json.loads(by_id.stdout)
    assert [row["id"] for row in json.loads(by_id.stdout)] == [stored["id"]]
    other = flow8(env, tmp_path, "flows", "list", "--company", "globex", "--json")
    assert json.loads(other.stdout) == []  # tenants stay apart on the command line too
    elsewhere = flow8(env, tmp_path, "run", "--flow", stored["id"], "--company", "globex")
    assert elsewhere.returncode == 1
    assert "not found" in elsewhere.stderr


def test_a_data_dir_that_cannot_be_made_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data dir's parent should be")
    env["FLOW8_DATA_DIR"] = str(blocker / "data")
    for args in (
        ("init", "--company", "Acme", "--email", "o@example.com", "--password", "long enough pw"),
        ("flows", "list"),
        ("keys", "rotate"),
    ):
        failed = flow8(env, tmp_path, *args)
        assert failed.returncode == 1, args
        assert failed.stderr.startswith("flow8: cannot create the data directory"), failed.stderr
        assert "FLOW8_DATA_DIR" in failed.stderr
        assert "Traceback" not in failed.stderr


def test_times_are_printed_in_iso_8601_utc_as_the_api_does(
    env: dict[str, str], tmp_path: Path
) -> None:
    company = _install(env, tmp_path)
    flow = tmp_path / "ok.json"
    flow.write_text(json.dumps({"name": "ok", "flowlets": [{"ref": "a", "appId": "noop"}]}))
    before = datetime.now(UTC).replace(microsecond=0)
    stored = json.loads(flow8(env, tmp_path, "flows", "import", str(flow)).stdout)
    listed = flow8(env, tmp_path, "flows", "list", "--company", company, "--json")
    [row] = json.loads(listed.stdout)
    updated = row["updatedAt"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", updated), updated
    moment = datetime.fromisoformat(updated.replace("Z", "+00:00"))
    assert before <= moment <= datetime.now(UTC)
    text = flow8(env, tmp_path, "flows", "list", "--company", company)
    assert text.stdout.split() == [stored["id"], "v1", updated, "ok"]
