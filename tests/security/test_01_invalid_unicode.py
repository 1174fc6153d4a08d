"""Attack 1: text that is not valid Unicode.

A lone UTF-16 surrogate (`"\\udfff"`) is valid JSON for Python's parser, but no UTF-8 encoder
accepts it. It used to pass validation and fail inside the store's writer thread, crashing
the writer: the HTTP port went down for 15-20 s and every other write in the same batch
(other tenants' included) failed. Now it is refused at the boundary, naming the field, and
the store refuses such a document alone even when something lets one through.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

from attack_kit import Target

LONE = '"\\udfff"'  # the JSON text of a lone low surrogate


def _post_raw(target: Target, path: str, body: str) -> tuple[int, dict[str, Any]]:
    """POST a JSON text as it is (a client library would re-encode it)."""
    headers = {"Content-Type": "application/json"}
    r = target.attacker.client.post(path, content=body.encode(), headers=headers)
    return r.status_code, r.json()


def test_lone_surrogates_are_refused_naming_the_field(target: Target) -> None:
    flow = target.attacker.flow([{"ref": "a", "appId": "set", "args": {"value": 1}}])
    cases = [
        (f"/api/flows/{flow}/run", '{"note": ' + LONE + "}", "note"),
        ("/api/kv", '{"key": ' + LONE + ', "value": 1, "scope": "global"}', "key"),
        ("/api/flows", '{"name": "x' + LONE[1:-1] + '", "flowlets": []}', "name"),
        (f"/api/flows/{flow}/run", '{"deep": [{"x": [' + LONE + "]}]}", "deep[0].x[0]"),
        (f"/api/flows/{flow}/run", "{" + LONE + ": 1}", ""),
    ]
    with target.bystander():
        for path, body, field in cases:
            status, answer = _post_raw(target, path, body)
            assert status in (400, 422), (path, body, status, answer)
            assert "Unicode" in answer["message"], answer
            if field:
                assert field in answer["message"], answer
        # A surrogate in a login email: refused, not a 500.
        r = target.attacker.client.post(
            "/api/auth/login",
            content=('{"email": "a' + LONE[1:-1] + '@x.example", "password": "p"}').encode(),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code in (400, 422), r.text
    # The attacker's own good writes and the server are fine.
    assert target.attacker.run_done(flow, {"note": "fine \U0001f600"})["out"] == 1


def test_a_flood_of_bad_writes_never_fails_another_tenants_write(target: Target) -> None:
    """Bad bodies sent concurrently with the victim's writes: every victim play completes."""
    flow = target.attacker.flow([{"ref": "a", "appId": "set", "args": {"value": 1}}])
    victim_plays: list[str] = []

    def attack() -> None:
        for _ in range(60):
            status, _ = _post_raw(target, f"/api/flows/{flow}/run", '{"x": ' + LONE + "}")
            assert status == 422
            body = '{"key": "k", "value": ' + LONE + ', "scope": "global"}'
            assert _post_raw(target, "/api/kv", body)[0] == 422

    def victim() -> None:
        for i in range(30):
            victim_plays.append(target.victim.run_done(target.victim_flow, {"i": i})["id"])

    with target.bystander(), concurrent.futures.ThreadPoolExecutor(4) as pool:
        for f in [pool.submit(attack), pool.submit(attack), pool.submit(victim)]:
            f.result()
    assert len(victim_plays) == 30
    for play_id in victim_plays:
        assert target.victim.play(play_id)["state"] == "DONE"
