"""What a company's owner sees of the instance-wide actor tree on `/admin/actors` (the UI's
page): structure and statistics, its own plays and channels, other companies' only counted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from flow8.http import HttpDeps, HttpSettings, create_app
from flow8.http._api import SESSION_COOKIE
from flow8.http.ui._audit_pages import play_ids, tenant_tree

Serve = Callable[[Any], Awaitable[str]]
TOKEN = "an-admin-token-for-these-tests"


def _node(name: str, *children: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "supervisor" if children else "task",
        "state": "running",
        "restarts": 0,
        "path": f"root/{name}",
        "registeredName": None,
        "children": list(children),
        **extra,
    }


TREE = _node(
    "root",
    _node("engine", _node("plays", _node("play-mine"), _node("play-theirs"), childCount=2)),
    _node(
        "channels",
        _node(
            "listeners",
            _node("channel-a", info={"companyId": "acme", "requests": 3}),
            _node("channel-b", info={"companyId": "globex", "requests": 9}),
        ),
    ),
    _node("jobs", _node("scheduler", info={"fired": 4})),
)


def _names(node: dict[str, Any]) -> list[str]:
    return [node["name"], *(n for c in node["children"] for n in _names(c))]


def test_play_ids_are_found_at_any_depth() -> None:
    assert sorted(play_ids(TREE)) == ["mine", "theirs"]


def test_a_company_sees_its_own_plays_and_channels_and_counts_the_others() -> None:
    shown = tenant_tree(TREE, "acme", {"mine"})
    names = _names(shown)
    assert "play-mine" in names
    assert "channel-a" in names
    assert "play-theirs" not in names
    assert "channel-b" not in names
    assert "globex" not in repr(shown)
    assert "theirs" not in repr(shown)
    engine = shown["children"][0]
    plays = engine["children"][0]
    assert plays["hiddenChildren"] == 1
    assert plays["childCount"] == 2
    listeners = shown["children"][1]["children"][0]
    assert listeners["hiddenChildren"] == 1
    assert listeners["children"][0]["info"] == {"companyId": "acme", "requests": 3}
    scheduler = shown["children"][2]["children"][0]
    assert scheduler["info"] == {"fired": 4}
    assert scheduler["hiddenChildren"] == 0
    assert "path" not in shown
    assert "registeredName" not in shown


def test_no_tree_shows_nothing() -> None:
    assert tenant_tree({}, "acme", set()) == {}


@pytest.mark.wall_clock
async def test_an_operator_token_wins_over_a_session_cookie(serve: Serve) -> None:
    deps = HttpDeps(settings=HttpSettings(admin_token=TOKEN), actor_tree=lambda: TREE)
    url = await serve(create_app(deps))
    cookies = {SESSION_COOKIE: "a-session-of-someone"}
    async with httpx.AsyncClient(base_url=url, cookies=cookies) as client:
        answer = await client.get("/admin/actors", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert answer.json() == TREE  # the operator's whole tree, as before
