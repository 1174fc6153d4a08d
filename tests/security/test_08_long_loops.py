"""Attack 8: one play stalls the rest.

An `iterator` over 100,000 items ran its loop without ever giving the event loop back: while
it ran (5 s) the server answered nobody, `/healthz` included. Reading such a play's layers
decoded all 100,000 of them for every page.

What holds now: the engine yields between items and steps, so the play runs to its end (DONE,
every iteration recorded) while other requests are answered; its 100,002 layers page through
`GET /api/plays/{id}/layers?page=N&size=100` in execution order, one page read at a time,
without stalling anybody either.

The victim company is answered within 100 ms throughout (the strict test below): the engine
keeps no finished iteration in memory and hands the GIL over every millisecond while it works
in the background. The slowest answer was 45-96 ms in 31 runs of 31 alone on the 2-core
machine (a session before), 27-56 ms on 2026-12-07 (alone, in a whole-suite run, and beside a
process keeping one core busy); over 100 ms only in one of three whole-suite runs before the
bound's calibration moved to around each attack. It was 100-180 ms in about one run in
five some changes earlier, 100-400 ms before that, and before the writes were paced per play
1.5-2.7 s, `/healthz` ~200 ms.

100,000 integers in a play's input are 589 KB, within the 1 MB a step's arguments may hold,
so the iterator takes them from the input (`$prev.args.items`); the strict test builds the
same 100,000 items with an `enumeration` step instead.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

from attack_kit import Target, Tenant

ITEMS = 100_000
PAGE = 100
LAYERS = ITEMS + 2  # the iterator, one `square` per item, the aggregator
LOOP_SECONDS = 120  # the loop takes 5-12 s on the shared 2-core machine

FROM_INPUT = [
    {"ref": "each", "appId": "iterator", "args": {"items": "{{ $prev.args.items }}"}},
    {"ref": "square", "appId": "set", "args": {"value": "{{ $prev.each.item }}"}},
    {"ref": "collect", "appId": "aggregator", "args": {"sourceRef": "each"}},
]
FROM_ENUMERATION = [
    {"ref": "numbers", "appId": "enumeration", "args": {"from": 0, "to": ITEMS - 1}},
    {"ref": "each", "appId": "iterator", "args": {"items": "{{ $prev.numbers.items }}"}},
    {"ref": "square", "appId": "set", "args": {"value": "{{ $prev.each.item }}"}},
    {"ref": "collect", "appId": "aggregator", "args": {"sourceRef": "each"}},
]


@contextlib.contextmanager
def _database(target: Target) -> Iterator[sqlite3.Connection]:
    con = sqlite3.connect(target.data_dir / "flow8.db", timeout=10)
    try:
        yield con
    finally:
        con.close()


def _layer_states(target: Target, play_id: str) -> dict[str, int]:
    """Every layer of the play as stored, counted by state (a read beside the server)."""
    with _database(target) as con:
        rows = con.execute(
            "SELECT json_extract(doc, '$.state'), count(*) FROM c_play_layers "
            "WHERE json_extract(doc, '$.play_id') = ? GROUP BY 1",
            (play_id,),
        ).fetchall()
    return dict(rows)


def _page(tenant: Tenant, play_id: str, page: int) -> dict[str, Any]:
    r = tenant.client.get(f"/api/plays/{play_id}/layers?page={page}&size={PAGE}")
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _count(tenant: Tenant, query: str) -> int:
    r = tenant.client.get(f"/api/plays?{query}&size=1")
    assert r.status_code == 200, r.text
    total: int = r.json()["total"]
    return total


def _expected(seq: int) -> tuple[str, list[int]]:
    """The layer recorded `seq`-th (from 1): the iterator, the steps in order, the end."""
    if seq == 1:
        return "each", []
    if seq == LAYERS:
        return "collect", []
    return "square", [seq - 2]


def _assert_page_in_order(answer: dict[str, Any], page: int) -> None:
    assert (answer["total"], answer["page"], answer["size"]) == (LAYERS, page, PAGE)
    assert answer["pages"] == -(-LAYERS // PAGE)
    first = page * PAGE + 1
    seqs = list(range(first, min(first + PAGE, LAYERS + 1)))
    assert [la["seq"] for la in answer["data"]] == seqs, page
    for layer in answer["data"]:
        ref, iteration = _expected(layer["seq"])
        assert (layer["ref"], layer["iteration"], layer["state"]) == (ref, iteration, "DONE")
        if ref == "square":
            assert layer["output"] == iteration[0]


def _start(tenant: Tenant, flow_id: str, body: Any) -> str:
    r = tenant.client.post(f"/api/flows/{flow_id}/run", json=body)
    assert r.status_code == 202, r.text
    play_id: str = r.json()["id"]
    return play_id


def test_a_loop_of_100000_items_runs_to_its_end_and_pages_in_order(target: Target) -> None:
    """The attack, with everything but the bystander's 100 ms (asserted by the strict test
    below; here within a second, where it used to wait up to 3 s): the loop ends DONE with
    every iteration, and the layers page in order."""
    a = target.attacker
    flow = a.flow(FROM_INPUT, name="long loop")
    with target.bystander(limit_ms=1000):
        started = time.monotonic()
        play_id = _start(a, flow, {"items": list(range(ITEMS))})
        # Others are answered while it runs: a play of the attacker's own, too.
        small = a.flow([{"ref": "ok", "appId": "noop", "args": {"value": 1}}])
        assert a.run_done(small)["out"] == 1
        play = a.wait_play(play_id, timeout=LOOP_SECONDS)
        elapsed = time.monotonic() - started
        # Pages of its layers are read while the bystander is served: the first, two
        # that join in the middle, and the last two.
        pages = -(-LAYERS // PAGE)
        for page in (0, 1, pages // 2, pages // 2 + 1, pages - 2, pages - 1):
            _assert_page_in_order(_page(a, play_id, page), page)
        assert _page(a, play_id, pages)["data"] == []
    assert play["state"] == "DONE", play
    assert play["out"] == {"items": list(range(ITEMS)), "count": ITEMS}
    assert play["error"] is None
    assert elapsed < LOOP_SECONDS
    # Nothing lost or half-written: every layer of the play is stored, and DONE.
    assert _layer_states(target, play_id) == {"DONE": LAYERS}
    assert _count(a, "state=DONE") == 2
    victim_plays = _count(target.victim, f"flowId={target.victim_flow}")
    assert victim_plays > 0
    assert _count(target.victim, "state=DONE") == victim_plays


def test_a_loop_of_100000_items_keeps_everyone_served(target: Target) -> None:
    a = target.attacker
    flow = a.flow(FROM_ENUMERATION, name="long loop")
    with target.bystander(strict=True):
        play_id = _start(a, flow, None)
        play = a.wait_play(play_id, timeout=LOOP_SECONDS)
    assert play["state"] == "DONE", play
    assert play["out"]["count"] == ITEMS
    assert _layer_states(target, play_id) == {"DONE": LAYERS + 1}
