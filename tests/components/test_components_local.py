"""Local storage, SQLite and console components end to end: configured through the service,
used by a saved flow's steps, confined to their roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from components_kit import COMPANY, component_kit

from flow8.domain import PlayState
from flow8.services.components import InvalidComponent
from flow8.services.flows import FlowValidationError


async def test_storage_steps_write_read_list_move_and_delete_files_under_the_root(
    tmp_path: Path,
) -> None:
    async with component_kit(tmp_path) as kit:
        await kit.component("storage", "local", {"rootPath": "shared"})
        play, layers = await kit.run(
            [
                {"ref": "w", "appId": "storage-write",
                 "args": {"path": "in/a.txt", "content": "{{ $prev.args.text }}"}},
                {"ref": "r", "appId": "storage-read", "args": {"path": "in/a.txt"}},
                {"ref": "c", "appId": "storage-copy",
                 "args": {"source": "in/a.txt", "destination": "in/b.txt"}},
                {"ref": "m", "appId": "storage-move",
                 "args": {"source": "in/a.txt", "destination": "out/a.txt"}},
                {"ref": "l", "appId": "storage-list", "args": {"path": "", "recursive": True}},
                {"ref": "d", "appId": "storage-delete", "args": {"path": "in/b.txt"}},
                {"ref": "e", "appId": "storage-exists", "args": {"path": "in/b.txt"}},
            ],
            {"text": "hello, wörld"},
        )  # fmt: skip
        assert play.state is PlayState.DONE, play.error
        assert layers["w"].output == {"path": "in/a.txt", "size": len("hello, wörld".encode())}
        assert layers["r"].output["content"] == "hello, wörld"
        assert layers["r"].output["mimeType"] == "text/plain"
        assert [f["path"] for f in layers["l"].output["files"]] == ["in/b.txt", "out/a.txt"]
        assert layers["d"].output == {"path": "in/b.txt", "deleted": True}
        assert layers["e"].output == {"path": "in/b.txt", "exists": False}
        root = kit.files / COMPANY / "shared"
        assert (root / "out" / "a.txt").read_text() == "hello, wörld"
        assert not (root / "in" / "a.txt").exists()


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../escape.txt", "contains '..'"),
        ("a/../../escape.txt", "contains '..'"),
        ("/etc/passwd", "is absolute"),
        ("a\x00b", "NUL"),
        ("link/secret.txt", "leads outside"),
    ],
)
async def test_a_path_that_escapes_the_root_is_refused_and_touches_nothing(
    tmp_path: Path, path: str, why: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    async with component_kit(tmp_path) as kit:
        await kit.component("storage", "local", {"rootPath": "shared"})
        root = kit.files / COMPANY / "shared"
        os.symlink(outside, root / "link")
        play, layers = await kit.run(
            [{"ref": "r", "appId": "storage-read", "args": {"path": path}}]
        )
    assert play.state is PlayState.FAIL
    assert "COMPONENT_REFUSED" in (layers["r"].error or "")
    assert why in (layers["r"].error or "")
    assert "not yours" not in repr(layers["r"])
    assert (outside / "secret.txt").read_text() == "not yours"


async def test_a_root_outside_the_opened_directories_is_refused_when_saved(
    tmp_path: Path,
) -> None:
    async with component_kit(tmp_path) as kit:
        with pytest.raises(InvalidComponent) as refused:
            await kit.component("storage", "local", {"rootPath": "/etc"})
        assert "outside the directories this server opens" in str(refused.value)
        with pytest.raises(InvalidComponent):
            await kit.component("storage", "local", {"rootPath": "../other-company"})


async def test_sqlite_steps_insert_upsert_update_query_and_delete(tmp_path: Path) -> None:
    async with component_kit(tmp_path) as kit:
        await kit.component("db", "sqlite", {"path": "crm.db"})
        play, layers = await kit.run(
            [
                {"ref": "t", "appId": "db-query",
                 "args": {"sql": "CREATE TABLE people (email TEXT PRIMARY KEY, name TEXT)"}},
                {"ref": "i", "appId": "db-insert", "args": {"table": "people", "data": [
                    {"email": "a@x.example", "name": "Ada"},
                    {"email": "b@x.example", "name": "Bob"}]}},
                {"ref": "u", "appId": "db-upsert", "args": {
                    "table": "people", "data": {"email": "a@x.example", "name": "Ada L."},
                    "conflictKey": "email"}},
                {"ref": "p", "appId": "db-update", "args": {
                    "table": "people", "data": {"name": "Robert"},
                    "where": {"email": "b@x.example"}}},
                {"ref": "q", "appId": "db-query", "args": {
                    "sql": "SELECT email, name FROM people WHERE email LIKE ? ORDER BY email",
                    "params": ["%x.example"]}},
                {"ref": "d", "appId": "db-delete",
                 "args": {"table": "people", "where": {"email": "a@x.example"}}},
                {"ref": "n", "appId": "db-query",
                 "args": {"sql": "SELECT count(*) AS n FROM people"}},
            ]
        )  # fmt: skip
        assert play.state is PlayState.DONE, play.error
        assert layers["i"].output == {"count": 2}
        assert layers["q"].output["rows"] == [
            {"email": "a@x.example", "name": "Ada L."},
            {"email": "b@x.example", "name": "Robert"},
        ]
        assert layers["d"].output == {"count": 1}
        assert layers["n"].output["rows"] == [{"n": 1}]


async def test_values_are_parameters_and_names_are_checked(tmp_path: Path) -> None:
    async with component_kit(tmp_path) as kit:
        await kit.component("db", "sqlite", {"path": "crm.db"})
        evil = "x'); DROP TABLE people; --"
        play, layers = await kit.run(
            [
                {"ref": "t", "appId": "db-query",
                 "args": {"sql": "CREATE TABLE people (email TEXT, name TEXT)"}},
                {"ref": "i", "appId": "db-insert",
                 "args": {"table": "people", "data": {"email": evil, "name": evil}}},
                {"ref": "q", "appId": "db-query",
                 "args": {"sql": "SELECT name FROM people"}},
                {"ref": "bad", "appId": "db-insert",
                 "args": {"table": "people; DROP TABLE people", "data": {"email": "x"}}},
            ]
        )  # fmt: skip
        assert layers["q"].output["rows"] == [{"name": evil}]
        assert play.state is PlayState.FAIL
        assert "is not a table or column name" in (layers["bad"].error or "")


async def test_a_read_only_database_refuses_writes_and_answers_reads(tmp_path: Path) -> None:
    async with component_kit(tmp_path) as kit:
        writable = await kit.component("db", "sqlite", {"path": "ro.db"}, name="rw")
        await kit.component(
            "db", "sqlite", {"path": "ro.db", "readOnly": True}, name="ro", default=False
        )
        play, _ = await kit.run(
            [{"ref": "t", "appId": "db-query", "args": {"sql": "CREATE TABLE t (x INTEGER)"}}]
        )
        assert play.state is PlayState.DONE, (play.error, writable.id)
        play, layers = await kit.run(
            [
                {"ref": "q", "appId": "db-query", "componentConfigIds": {"db": "ro"},
                 "args": {"sql": "SELECT count(*) AS n FROM t"}},
                {"ref": "w", "appId": "db-query", "componentConfigIds": {"db": "ro"},
                 "args": {"sql": "INSERT INTO t VALUES (1)"}},
            ]
        )  # fmt: skip
        assert layers["q"].output["rows"] == [{"n": 0}]
        assert play.state is PlayState.FAIL
        assert "readonly" in (layers["w"].error or "").replace("-", "").lower()


async def test_a_flow_needing_a_kind_the_company_lacks_is_refused_when_saved(
    tmp_path: Path,
) -> None:
    async with component_kit(tmp_path) as kit:
        with pytest.raises(FlowValidationError) as refused:
            await kit.run([{"ref": "q", "appId": "db-query", "args": {"sql": "SELECT 1"}}])
        assert "needs a db component" in str(refused.value)
        with pytest.raises(FlowValidationError) as refused:
            await kit.run(
                [{"ref": "q", "appId": "db-query", "componentConfigIds": {"db": "nope"},
                  "args": {"sql": "SELECT 1"}}]
            )  # fmt: skip
        assert "no db component 'nope'" in str(refused.value)


async def test_console_lines_are_streamed_and_kept(tmp_path: Path) -> None:
    async with component_kit(tmp_path) as kit:
        play, layers = await kit.run(
            [{"ref": "log", "appId": "console-log",
              "args": {"level": "warning", "message": "low stock: {{ $prev.args.sku }}"}}],
            {"sku": "A-1"},
        )  # fmt: skip
        assert play.state is PlayState.DONE, play.error
        assert layers["log"].output["message"] == "low stock: A-1"
        lines = [e.data for e in kit.events if e.type == "play:log" and e.play_id == play.id]
        assert [(line["level"], line["ref"]) for line in lines] == [("warning", "log")]


async def test_a_plays_temporary_directory_is_removed_when_the_play_ends(
    tmp_path: Path,
) -> None:
    async with component_kit(tmp_path) as kit:
        await kit.component("storage", "local", {"rootPath": "shared"})
        root = kit.files / COMPANY / "shared"
        seen: dict[str, bool] = {}
        for outcome in ("done", "fail"):
            flowlets = [
                {"ref": "tmp", "appId": "storage-tempdir", "args": {}},
                {"ref": "w", "appId": "storage-write",
                 "args": {"path": "{{ $prev.tmp.path }}/x.csv", "content": "a,b"}},
                {"ref": "r", "appId": "storage-exists",
                 "args": {"path": "{{ $prev.tmp.path }}/x.csv"}},
            ]  # fmt: skip
            if outcome == "fail":
                flowlets.append({"ref": "boom", "appId": "fail", "args": {"message": "no"}})
            play, layers = await kit.run(flowlets)
            assert layers["tmp"].output == {"path": f"tmp/{play.id}"}
            seen[outcome] = layers["r"].output["exists"]
            assert not (root / "tmp" / play.id).exists(), outcome
        assert seen == {"done": True, "fail": True}


async def test_a_changed_component_takes_effect_for_the_next_step(tmp_path: Path) -> None:
    async with component_kit(tmp_path) as kit:
        made = await kit.component("storage", "local", {"rootPath": "before"})
        write = [{"ref": "w", "appId": "storage-write", "args": {"path": "f.txt", "content": "x"}}]
        await kit.run(write)
        await kit.components.update(COMPANY, made.id, {"config": {"rootPath": "after"}})
        await kit.run(write)
        company = kit.files / COMPANY
        assert (company / "before" / "f.txt").exists()
        assert (company / "after" / "f.txt").exists()
        # Deleted: a flow saved before fails its step clearly; a new one is refused.
        saved = await kit.flows.create(COMPANY, {"name": "saved", "flowlets": write})
        await kit.components.delete(COMPANY, made.id)
        started = await kit.engine.start_play(COMPANY, saved.id, None)
        play = await kit.engine.wait_play(COMPANY, started.id, timeout=30)
        assert play.state is PlayState.FAIL
        assert "has no default storage component" in (play.error or "")
        with pytest.raises(FlowValidationError):
            await kit.run(write)


async def test_a_provider_whose_library_is_missing_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if flow8 were installed without its `s3` extra: boto3 cannot be imported."""
    import sys

    monkeypatch.delitem(sys.modules, "flow8.components._storage_s3", raising=False)
    monkeypatch.setitem(sys.modules, "boto3", None)
    async with component_kit(tmp_path) as kit:
        with pytest.raises(InvalidComponent) as refused:
            await kit.component("storage", "s3", {"bucket": "b"})
    message = str(refused.value)
    assert "needs a library that is not installed (boto3)" in message
    assert "install flow8 with the 's3' extra" in message
