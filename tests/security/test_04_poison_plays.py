"""Attack 4: poison plays that crash-loop forever.

A step could produce a value the store refuses: an integer beyond 64 bits (the expression
`99999999999999999999*99999999999999999999`), JSON nested 2,000 levels deep (`json-parse`).
Writing its layer raised inside the PlayActor instead of failing the step: the actor crashed,
the play stayed RUN, its lease lapsed, another round claimed it and crashed again, every ~30 s,
across restarts, for ever. `cancel` answered 200 and changed nothing.

What holds now:

* a value the store refuses, in a step's arguments or in its output, fails that step at once
  (seconds, not a lease) with an error naming the step, what cannot be stored and why; the
  play then goes on as its flow says (here: it fails, later steps are SKIP, a parallel
  sibling is cancelled);
* a play whose actor crashes for any other reason (here a layer record corrupted in the
  database under the running server) is run again after 1 s, then 2 s, and on the third crash
  ends FAIL with `PLAY_CRASHED: the play crashed 3 times; last error: ...`;
* `cancel` ends a play between two crashes: it stays CANCEL and is never run again.

Meanwhile `/healthz` and the victim company are served within 100 ms, and afterwards every play
is finished with its layers consistent.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

from attack_kit import Target, Tenant

BIG = "{{ 99999999999999999999*99999999999999999999 }}"
BIG_TEXT = "integer 10000000000000000303786028427003666890752 does not fit in 64 bits"
DEEP = "[" * 2000 + "]" * 2000
PROMPT_SECONDS = 5.0  # a failed step ends its play at once: far below the 30 s lease
FINAL = ("DONE", "FAIL", "CANCEL")


@contextlib.contextmanager
def _database(target: Target) -> Iterator[sqlite3.Connection]:
    """The server's own SQLite file, opened beside it (WAL mode lets both write)."""
    con = sqlite3.connect(target.data_dir / "flow8.db", timeout=10, isolation_level=None)
    try:
        yield con
    finally:
        con.close()


def _set_layer_state(target: Target, play_id: str, ref: str, state: str) -> None:
    with _database(target) as con:
        changed = con.execute(
            "UPDATE c_play_layers SET doc = json_set(doc, '$.state', ?) WHERE id = ?",
            (state, f"{play_id}:{ref}:"),
        ).rowcount
    assert changed == 1


def _crashes(target: Target, play_id: str) -> int:
    with _database(target) as con:
        row = con.execute(
            "SELECT json_extract(doc, '$.crashes') FROM c_plays WHERE id = ?", (play_id,)
        ).fetchone()
    return int(row[0] or 0)


def _count(tenant: Tenant, query: str) -> int:
    r = tenant.client.get(f"/api/plays?{query}&size=1")
    assert r.status_code == 200, r.text
    total: int = r.json()["total"]
    return total


def _assert_nothing_left_running(target: Target) -> None:
    """No play of either company is left unfinished, and every victim play is DONE."""
    for tenant in (target.attacker, target.victim):
        for state in ("NEW", "RUN", "WAIT", "DEFERRED"):
            assert _count(tenant, f"state={state}") == 0, (tenant.name, state)
    victim_plays = _count(target.victim, f"flowId={target.victim_flow}")
    assert victim_plays > 0
    assert _count(target.victim, "state=DONE") == victim_plays


def _by_ref(layers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {la["ref"]: la for la in layers}


def _deep_list(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def _poisoned(step: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"ref": "poison", **step}, {"ref": "after", "appId": "noop", "args": {"value": 1}}]


ARGS = re.escape("step 'poison': its arguments cannot be stored: ")
OUTPUT = re.escape("step 'poison': its output cannot be stored: ")
TOO_DEEP = r".*: nested deeper than 100 levels"  # (the long path is shortened in the middle)

CASES: list[tuple[str, list[dict[str, Any]], Any, str]] = [
    # (what, flowlets, play input, the play's error: a regular expression it must match)
    (
        "an integer beyond 64 bits from an expression",
        _poisoned({"appId": "set", "args": {"value": BIG}}),
        None,
        ARGS + re.escape(f"args.value: {BIG_TEXT}"),
    ),
    (
        "2,000-deep JSON from json-parse",
        _poisoned({"appId": "json-parse", "args": {"text": DEEP}}),
        None,
        OUTPUT + re.escape("output[0][0]") + TOO_DEEP,
    ),
    (
        "an integer beyond 64 bits parsed from text",
        _poisoned({"appId": "json-parse", "args": {"text": '{"n": 99999999999999999999}'}}),
        None,
        OUTPUT + re.escape("output.n: integer 99999999999999999999 does not fit in 64 bits"),
    ),
    (
        "arguments nested too deep, built by an expression",
        _poisoned(
            {
                "appId": "noop",
                "args": {
                    "value": "{{ $reduce([1..2000], function($acc, $v) { {'a': $acc} }, {}) }}"
                },
            }
        ),
        None,
        ARGS + re.escape("args.value.a.a") + TOO_DEEP,
    ),
    (
        "a 99-deep input (stored as the play's input) wrapped two levels deeper by a step",
        _poisoned({"appId": "set", "args": {"value": {"x": "{{ $prev.args }}"}}}),
        _deep_list(99),  # the store takes up to 100 levels
        ARGS + re.escape("args.value.x[0][0]") + TOO_DEEP,
    ),
    (
        "arguments over the 1 MB limit, built by an expression",
        _poisoned({"appId": "noop", "args": {"value": "{{ $pad('', 1500000, 'x') }}"}}),
        None,
        re.escape("step 'poison': arguments are larger than the 1000000 bytes allowed"),
    ),
    (
        "an output over the 1 MB limit, built by an expression",
        _poisoned({"appId": "transform", "args": {"expression": "$pad('', 1500000, 'x')"}}),
        None,
        re.escape("step 'poison': output is larger than the 1000000 bytes allowed"),
    ),
]


def test_a_value_the_store_refuses_fails_its_step_at_once(target: Target) -> None:
    a = target.attacker
    flows = [(what, a.flow(steps, name=what[:60]), body, said) for what, steps, body, said in CASES]
    plays: list[tuple[str, str, str]] = []
    with target.bystander():
        for what, flow_id, body, said in flows:
            started = time.monotonic()
            r = a.run(flow_id, body)
            elapsed = time.monotonic() - started
            assert r.status_code == 200, (what, r.text)
            play = r.json()
            assert play["state"] == "FAIL", (what, play)
            assert elapsed < PROMPT_SECONDS, (what, elapsed)
            assert re.fullmatch(said, play["error"], re.S), (what, play["error"])
            plays.append((what, play["id"], said))
        # The same poison in a step running beside a slow one: the sibling is cancelled.
        parallel = a.flow(
            [
                {"ref": "slow", "appId": "delay", "index": 0, "args": {"ms": 3000}},
                {"ref": "poison", "appId": "set", "index": 0, "args": {"value": BIG}},
                {"ref": "after", "appId": "noop"},
            ],
            name="parallel poison",
        )
        started = time.monotonic()
        r = a.run(parallel)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "FAIL"
        assert time.monotonic() - started < PROMPT_SECONDS
        sibling_play = r.json()["id"]
        # The attacker's good plays still run, during the attack.
        good = a.flow([{"ref": "ok", "appId": "set", "args": {"value": "{{ 6*7 }}"}}])
        assert a.run_done(good)["out"] == 42
    # Nothing lost or half-written: each play is FAIL as it answered, the poisoned step's
    # layer is FAIL holding neither the refused value nor a half-written output, and the
    # step after it is SKIP; the plays stay ended (nothing re-claims them).
    for what, play_id, said in plays:
        play = a.play(play_id)
        assert play["state"] == "FAIL", (what, play)
        assert play["out"] is None
        layers = _by_ref(a.layers(play_id))
        assert set(layers) == {"poison", "after"}, what
        poison = layers["poison"]
        assert poison["state"] == "FAIL", (what, poison)
        assert poison["output"] is None, what
        if "cannot be stored" in said:
            assert poison["args"] is None, what  # the refused value is kept nowhere
        # The layer says it without the "step 'poison': " the play's error adds.
        assert f"step 'poison': {poison['error']}" == play["error"], (what, poison)
        assert poison["finishedAt"] is not None
        assert (layers["after"]["state"], layers["after"]["output"]) == ("SKIP", None), what
    layers = _by_ref(a.layers(sibling_play))
    assert layers["poison"]["state"] == "FAIL"
    assert (layers["slow"]["state"], layers["slow"]["error"]) == (
        "FAIL",
        "cancelled: sibling 'poison' failed",
    )
    assert layers["after"]["state"] == "SKIP"
    assert _count(a, "state=FAIL") == len(plays) + 1
    _assert_nothing_left_running(target)
    assert target.healthy()


def test_arguments_the_store_refuses_stop_the_step_before_it_runs(target: Target) -> None:
    """A step's input is checked at the step boundary: a kv-set whose arguments hold a value
    the store refuses fails before it writes anything, and says its arguments are at fault."""
    a = target.attacker
    flow = a.flow(
        _poisoned(
            {
                "appId": "kv-set",
                "args": {"key": "planted", "value": 1, "scope": "global", "note": BIG},
            }
        )
    )
    with target.bystander():
        r = a.run(flow)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "FAIL"
    assert r.json()["error"] == (
        f"step 'poison': its arguments cannot be stored: args.note: {BIG_TEXT}"
    )
    r = a.client.get("/api/kv?scope=global")
    assert r.status_code == 200, r.text
    assert [e["key"] for e in r.json()["data"]] == []


def _parked_for_approval(tenant: Tenant, flow_id: str) -> str:
    """A play that ran `first` and now waits (no actor) for the approval of `gate`."""
    r = tenant.run(flow_id, {"order": 1}, wait=0)
    assert r.status_code == 202, r.text
    play_id: str = r.json()["id"]
    deadline = time.monotonic() + 10
    while (play := tenant.play(play_id))["state"] != "WAIT":
        assert play["state"] == "RUN", play
        assert time.monotonic() < deadline, play
        time.sleep(0.05)
    assert (play["waitReason"], play["waitRef"]) == ("approval", "gate")
    return play_id


APPROVAL_FLOW = [
    {"ref": "first", "appId": "set", "args": {"value": "{{ $prev.args.order }}"}},
    {"ref": "gate", "appId": "noop", "needsApproval": True},
    {"ref": "after", "appId": "noop"},
]


def test_a_play_whose_actor_keeps_crashing_fails_with_play_crashed(target: Target) -> None:
    a = target.attacker
    flow = a.flow(APPROVAL_FLOW)
    play_id = _parked_for_approval(a, flow)
    # A real fault: the record of `first` is corrupted in the database under the running
    # server; loading the play to resume it now raises, outside any step.
    _set_layer_state(target, play_id, "first", "NOT-A-STATE")
    with target.bystander():
        started = time.monotonic()
        r = a.client.post(f"/api/plays/{play_id}/approve")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "RUN"
        ended = a.wait_play(play_id, timeout=30)
        elapsed = time.monotonic() - started
    assert ended["state"] == "FAIL", ended
    assert ended["error"] == (
        "PLAY_CRASHED: the play crashed 3 times; last error: "
        "ValueError: 'NOT-A-STATE' is not a valid LayerState"
    )
    assert ended["out"] is None
    assert ended["finishedAt"] is not None
    # Run three times, backed off 1 s then 2 s (each resumed by a dispatcher poll).
    assert 3.0 <= elapsed < 15.0, elapsed
    assert _crashes(target, play_id) == 3
    # It stays ended: nothing claims it again once its last back-off would have passed.
    time.sleep(2.5)
    assert a.play(play_id) == ended
    # Layers: `first` is the corrupted record; once an operator repairs it, the play reads
    # back consistent: `gate` (the step it was resuming) failed with the play's error.
    _set_layer_state(target, play_id, "first", "DONE")
    layers = _by_ref(a.layers(play_id))
    assert (layers["first"]["state"], layers["first"]["output"]) == ("DONE", 1)
    assert (layers["gate"]["state"], layers["gate"]["error"]) == ("FAIL", ended["error"])
    assert "after" not in layers or layers["after"]["state"] == "SKIP"
    _assert_nothing_left_running(target)
    # The company's other plays run as before.
    again = _parked_for_approval(a, flow)
    assert a.client.post(f"/api/plays/{again}/approve").status_code == 200
    assert a.wait_play(again)["state"] == "DONE"
    assert a.play(again)["out"] is None  # noop without a value


def test_cancel_ends_a_play_between_crashes(target: Target) -> None:
    a = target.attacker
    flow = a.flow(APPROVAL_FLOW)
    play_id = _parked_for_approval(a, flow)
    _set_layer_state(target, play_id, "first", "NOT-A-STATE")
    with target.bystander():
        r = a.client.post(f"/api/plays/{play_id}/approve")
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 10
        while _crashes(target, play_id) < 1:  # crashed once, waiting for its back-off
            assert time.monotonic() < deadline, a.play(play_id)
            time.sleep(0.02)
        assert a.play(play_id)["state"] == "RUN"
        r = a.client.post(f"/api/plays/{play_id}/cancel")
        assert r.status_code == 200, r.text
        cancelled = r.json()
        assert (cancelled["state"], cancelled["error"]) == ("CANCEL", "cancelled")
        # Past the back-off (1 s) and a dispatcher poll: it was not run again.
        time.sleep(2.5)
    assert a.play(play_id) == cancelled
    assert _crashes(target, play_id) == 1
    _set_layer_state(target, play_id, "first", "DONE")
    layers = _by_ref(a.layers(play_id))
    assert layers["first"]["state"] == "DONE"
    assert (layers["gate"]["state"], layers["gate"]["error"]) == ("FAIL", "cancelled")
    assert "after" not in layers or layers["after"]["state"] == "SKIP"
    # Cancelling it again is a conflict, not a silent 200.
    r = a.client.post(f"/api/plays/{play_id}/cancel")
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "PLAY_STATE_CONFLICT"
    _assert_nothing_left_running(target)
