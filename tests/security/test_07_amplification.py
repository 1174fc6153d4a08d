"""Attack 7: play amplification.

A flow whose three parallel steps each start the flow itself as an async subflow turned one
request into 3 + 9 + 27 + ... plays: 9,841 in 15 s, stopped only by the subflow depth limit
(8), while the server served nobody else. A client flooding the run route started as many
plays as it could send requests.

What holds now:

* a play and all the plays descending from it may start at most `max_descendant_plays`
  (1000) plays in all: the subflow step that would start one more fails with
  `PLAY_TREE_LIMIT` (its siblings are cancelled, the play fails as its flow says), so the
  attack above ends with exactly 1 + 1000 plays, every one finished, within seconds;
* a company starts at most `FLOW8_COMPANY_PLAYS_PER_SECOND` plays a second from outside:
  beyond it the run route answers `429 PLAY_RATE_LIMIT` with `Retry-After`, and starts
  nothing; every start it accepted runs to its end;
* a company runs at most `FLOW8_COMPANY_RUNNING_PLAYS` plays at once: the rest are queued
  (NEW), never dropped, and run as others end.

Meanwhile `/healthz` and the victim company are served within 100 ms:

* play starts pass a gate that holds at most 16 starts of one company (64 in all) and takes
  companies in turn, so the attacker's thousand starts neither queue the victim's nor hold
  the slot it needs (with one gate of 16 for all, the victim's run spent 30-70 ms starting;
  with its own slots, 14-21 ms on average);
* a company with 64 starts waiting there holds its plays back before their subflow steps
  until its queue has room (`FairGate.hold_back`). Left to run, every play of the growing
  tree queued its three subflow steps at the gate: ~1,300 parked chains of coroutines,
  task, cancel scope, layer and arguments, ~110,000 objects that the garbage collector's
  middle generation walked in 55-78 ms pauses of the whole event loop, and a victim's answer
  that met one took 100-170 ms (the strict test below failed in about one run in three).
  A play held back is a quarter of that, and the tree ends sooner (8-12 s for this test
  instead of 11-16): no collection over 15 ms in the attack, and the victim's slowest answer
  was 41-99 ms in 42 runs of 43 and 100.5 ms in one (2-core box, a session before), and 17-39 ms
  in 17 runs of 17 on 2026-12-07 (3 of them beside a process that kept one of the two cores
  busy). Over 100 ms it was seen in whole-suite runs only (108 and 117 ms in one of two
  `.ci/run`s), where the bound was calibrated once for the whole run: it is now measured
  around each attack (`slowness()` in attack_kit.py), and each attack's report says what
  else used the cores (`hostwatch.py`);
* a failed play's run is freed at once (it used to be a reference cycle: 1,000 failed plays
  left 83,000 objects to a full garbage collection, a 160 ms pause).
"""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path
from typing import Any

import pytest
from attack_kit import Target, Tenant, launch

TREE_LIMIT = 1000  # the default max_descendant_plays
UNFINISHED = ("NEW", "RUN", "WAIT", "DEFERRED")

AMPLIFIER = [
    {
        "ref": f"spawn{i}",
        "appId": "subflow",
        "index": 0,  # the three run in parallel
        "args": {
            "flowId": "{{ $flowId }}",  # the flow itself
            "async": True,
            "args": {"generation": "{{ $prev.args.generation + 1 }}"},
        },
    }
    for i in range(3)
]


def _count(tenant: Tenant, query: str) -> int:
    r = tenant.client.get(f"/api/plays?{query}&size=1")
    assert r.status_code == 200, r.text
    total: int = r.json()["total"]
    return total


def _plays(tenant: Tenant, query: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    page = 0
    while True:
        r = tenant.client.get(f"/api/plays?{query}&size=100&page={page}")
        assert r.status_code == 200, r.text
        found.extend(r.json()["data"])
        page += 1
        if page >= r.json()["pages"]:
            return found


def _settled(tenant: Tenant, flow_id: str, timeout: float) -> float:
    """Seconds until no play of the flow is unfinished (fails the test after `timeout`)."""
    started = time.monotonic()
    while True:
        left = {s: _count(tenant, f"flowId={flow_id}&state={s}") for s in UNFINISHED}
        if not any(left.values()):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            pytest.fail(f"plays still unfinished after {timeout} s: {left}")
        time.sleep(0.2)


def _assert_victim_intact(target: Target) -> None:
    victim_plays = _count(target.victim, f"flowId={target.victim_flow}")
    assert victim_plays > 0
    assert _count(target.victim, "state=DONE") == victim_plays


def _tree_limit_error(root: str) -> str:
    return (
        f"PLAY_TREE_LIMIT: play {root} and its subflows have started {TREE_LIMIT} plays, "
        "the most one play may start"
    )


def _amplify(target: Target) -> tuple[str, str]:
    """Run the self-starting flow once; returns (flow id, root play id)."""
    a = target.attacker
    flow = a.flow(AMPLIFIER, name="amplifier")
    root = a.run_done(flow, {"generation": 0})
    return flow, root["id"]


def _assert_the_tree_is_whole(target: Target, flow: str, root: str) -> None:
    """Exactly 1 + 1000 plays, each finished: DONE having started its three children, or
    FAIL because a subflow step met the tree limit (the others cancelled or refused)."""
    a = target.attacker
    plays = _plays(a, f"flowId={flow}")
    assert len(plays) == 1 + TREE_LIMIT
    by_id = {p["id"]: p for p in plays}
    assert by_id[root]["state"] == "DONE"
    assert by_id[root]["parentPlayId"] is None
    refused = _tree_limit_error(root)
    states = {"DONE": 0, "FAIL": 0}
    for play in plays:
        states[play["state"]] += 1  # a KeyError here is a play neither DONE nor FAIL
        if play["id"] != root:
            assert play["parentPlayId"] in by_id, play
            assert play["trigger"] == "subflow"
        layers = {la["ref"]: la for la in a.layers(play["id"])}
        assert sorted(layers) == ["spawn0", "spawn1", "spawn2"], play
        if play["state"] == "DONE":
            for layer in layers.values():
                assert layer["state"] == "DONE", layer
                assert layer["output"]["playId"] in by_id, layer
        else:
            assert play["error"] in {f"step '{ref}': {refused}" for ref in layers}, play
            errors = {la["error"] for la in layers.values() if la["state"] == "FAIL"}
            assert refused in errors, layers
            siblings = {f"cancelled: sibling '{ref}' failed" for ref in layers}
            assert errors <= {refused} | siblings, errors
            for layer in layers.values():
                assert layer["state"] in ("DONE", "FAIL"), layer
    # Every play but the root was started by a DONE play's step, or by a step of a failed
    # play that got its child started before the limit: at most 3 children each.
    children: dict[str, int] = {}
    for play in plays:
        if play["parentPlayId"]:
            children[play["parentPlayId"]] = children.get(play["parentPlayId"], 0) + 1
    assert max(children.values()) <= 3
    assert states["DONE"] + states["FAIL"] == 1 + TREE_LIMIT


def test_a_flow_starting_itself_stops_at_the_tree_limit(target: Target) -> None:
    """The attack: the tree stops at 1 + 1000 plays within seconds (no play waits for a
    lease), the refused steps say PLAY_TREE_LIMIT, every play ends, every child is named by
    the step that started it, and everybody else is served (within a second here; within
    100 ms in the test below)."""
    a = target.attacker
    with target.bystander(limit_ms=1000):
        flow, root = _amplify(target)
        _settled(a, flow, timeout=15)
    _assert_the_tree_is_whole(target, flow, root)
    started = set()
    for play in _plays(a, f"flowId={flow}"):
        for layer in a.layers(play["id"]):
            if layer["output"]:
                started.add(layer["output"]["playId"])
    children = {p["id"] for p in _plays(a, f"flowId={flow}") if p["parentPlayId"]}
    assert children == started, f"children no step says it started: {children - started}"
    assert root not in children
    _assert_victim_intact(target)
    # The attacker's company is not blocked afterwards: its plays run as before.
    assert a.run_done(a.flow([{"ref": "ok", "appId": "noop", "args": {"value": 1}}]))["out"] == 1


def test_a_flow_starting_itself_keeps_everyone_served_within_100_ms(target: Target) -> None:
    with target.bystander(strict=True):
        flow, _ = _amplify(target)
        _settled(target.attacker, flow, timeout=15)


def test_flooding_the_run_route_is_refused_with_429_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    rate = 50
    target = launch(tmp_path, {"FLOW8_COMPANY_PLAYS_PER_SECOND": str(rate)})
    try:
        a = target.attacker
        flow = a.flow([{"ref": "echo", "appId": "set", "args": {"value": "{{ $prev.args.n }}"}}])
        answers: list[tuple[int, int, dict[str, Any], str | None]] = []

        def flood(worker: int) -> None:
            for i in range(100):
                n = worker * 1000 + i
                r = a.client.post(f"/api/flows/{flow}/run", json={"n": n})
                answers.append((n, r.status_code, r.json(), r.headers.get("retry-after")))

        with target.bystander():
            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                for f in [pool.submit(flood, w) for w in range(4)]:
                    f.result()
            elapsed = time.monotonic() - started
        accepted = {n: body["id"] for n, status, body, _ in answers if status == 202}
        refused = [(body, after) for _, status, body, after in answers if status == 429]
        assert len(accepted) + len(refused) == len(answers) == 400
        # At most a second's worth at once, then `rate` a second (with a second of margin).
        assert 0 < len(accepted) <= rate * (elapsed + 2), (len(accepted), elapsed)
        assert refused, "nothing was refused"
        for body, after in refused:
            assert body["error"] == "PLAY_RATE_LIMIT"
            assert body["statusCode"] == 429
            assert body["message"] == (
                f"this company starts more than {rate} plays a second; retry shortly"
            )
            assert after is not None
            assert int(after) == 1  # a token comes back every 1/50 s
        # Every accepted play runs to its end with its own input; no refused one exists.
        for n, play_id in accepted.items():
            play = a.wait_play(play_id)
            assert (play["state"], play["out"]) == ("DONE", n)
        assert _count(a, f"flowId={flow}") == len(accepted)
        # Waiting as told works.
        time.sleep(1.0)
        assert a.run_done(flow, {"n": -1})["out"] == -1
        _assert_victim_intact(target)
    finally:
        target.logs()


def test_plays_over_the_running_limit_are_queued_not_dropped(tmp_path: Path) -> None:
    running = 5
    target = launch(tmp_path, {"FLOW8_COMPANY_RUNNING_PLAYS": str(running)})
    try:
        a = target.attacker
        flow = a.flow(
            [
                {"ref": "hold", "appId": "delay", "args": {"ms": 1000}},
                {"ref": "echo", "appId": "set", "args": {"value": "{{ $prev.args.n }}"}},
            ]
        )
        seen_running = 0
        with target.bystander():
            ids = []
            for n in range(20):
                r = a.client.post(f"/api/flows/{flow}/run", json={"n": n})
                assert r.status_code == 202, r.text
                ids.append(r.json()["id"])
            deadline = time.monotonic() + 60
            while _count(a, f"flowId={flow}&state=DONE") < len(ids):
                now_running = _count(a, f"flowId={flow}&state=RUN")
                assert now_running <= running, now_running
                seen_running = max(seen_running, now_running)
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert seen_running == running
        for n, play_id in enumerate(ids):
            play = a.play(play_id)
            assert (play["state"], play["out"]) == ("DONE", n)
        # The other company was never queued behind the attacker's plays.
        _assert_victim_intact(target)
    finally:
        target.logs()
