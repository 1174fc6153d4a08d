"""Attack 6: unbounded retries.

A step's `retry.count` had no upper limit and `delayMs: 0` was allowed: a step that always fails
was attempted 1,025 times back to back (holding its play, and with it the event loop), until
`2.0 ** n` overflowed and crashed the play. Its layer kept every attempt.

What holds now:

* a retry policy is bounded when the flow is saved: `count` at most 10, `delayMs` and
  `maxDelayMs` at most one hour, `backoffMultiplier` between 1 and 10. A flow asking for more
  is refused with 422 listing each bad field, whether it is created, updated or has a step
  added, and the stored flow is left as it was;
* a policy at the limits (10 retries without delay) makes at most 11 attempts, and the
  step's layer lists exactly those 11;
* a back-off longer than a few seconds parks the play (WAIT, `waitReason: retry`) instead of
  holding it; it is resumed when due, attempts numbered across the park, and can be
  cancelled meanwhile.

Meanwhile `/healthz` and the victim company are served within 100 ms.
"""

from __future__ import annotations

import concurrent.futures
import time
from datetime import datetime
from typing import Any

from attack_kit import Target, Tenant

HOUR_MS = 3_600_000
ALWAYS = {"appId": "fail", "args": {"message": "always fails"}}
THROWN = 'expression {{ $error("thrown by the expression") }} failed: thrown by the expression'


def _flow_body(retry: dict[str, Any], name: str = "retries") -> dict[str, Any]:
    return {
        "name": name,
        "flowlets": [
            {"ref": "flaky", **ALWAYS, "retry": retry},
            {"ref": "after", "appId": "noop", "args": {"value": 1}},
        ],
    }


def _parked(tenant: Tenant, flow_id: str, body: Any = None) -> dict[str, Any]:
    """Start a play and wait until it parks (WAIT); returns it."""
    r = tenant.run(flow_id, body, wait=0)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 10
    while (play := tenant.play(r.json()["id"]))["state"] != "WAIT":
        assert play["state"] in ("NEW", "RUN"), play
        assert time.monotonic() < deadline, play
        time.sleep(0.02)
    return play


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _by_ref(tenant: Tenant, play_id: str) -> dict[str, dict[str, Any]]:
    return {la["ref"]: la for la in tenant.layers(play_id)}


def _count(tenant: Tenant, query: str) -> int:
    r = tenant.client.get(f"/api/plays?{query}&size=1")
    assert r.status_code == 200, r.text
    total: int = r.json()["total"]
    return total


def _assert_victim_intact(target: Target) -> None:
    victim_plays = _count(target.victim, f"flowId={target.victim_flow}")
    assert victim_plays > 0
    assert _count(target.victim, "state=DONE") == victim_plays


UNBOUNDED = {"count": 1025, "delayMs": 86_400_000, "maxDelayMs": 10**12, "backoffMultiplier": 1e9}
REFUSED = [
    {"field": "flowlets[0].retry.backoffMultiplier", "message": "must be between 1 and 10"},
    {"field": "flowlets[0].retry.count", "message": "must be between 0 and 10"},
    {"field": "flowlets[0].retry.delayMs", "message": "must be between 0 and 3600000"},
    {"field": "flowlets[0].retry.maxDelayMs", "message": "must be between 0 and 3600000"},
]


def test_an_unbounded_retry_policy_is_refused_when_the_flow_is_saved(target: Target) -> None:
    a = target.attacker
    with target.bystander():
        r = a.client.post("/api/flows", json=_flow_body(UNBOUNDED))
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "VALIDATION_FAILED"
        assert sorted(r.json()["fields"], key=lambda f: f["field"]) == REFUSED
        # One bad field at a time, each named alone.
        for retry, field, message in [
            ({"count": 11}, "count", "must be between 0 and 10"),
            ({"count": 1, "delayMs": HOUR_MS + 1}, "delayMs", "must be between 0 and 3600000"),
            ({"maxDelayMs": HOUR_MS + 1}, "maxDelayMs", "must be between 0 and 3600000"),
            ({"backoffMultiplier": 0.5}, "backoffMultiplier", "must be between 1 and 10"),
            ({"backoffMultiplier": 11}, "backoffMultiplier", "must be between 1 and 10"),
            ({"count": -1}, "count", "must be between 0 and 10"),
            ({"delayMs": 1.5}, "delayMs", "must be an integer"),
        ]:
            r = a.client.post("/api/flows", json=_flow_body(retry))
            assert r.status_code == 422, (retry, r.text)
            assert r.json()["fields"] == [
                {"field": f"flowlets[0].retry.{field}", "message": message}
            ], retry
        # An existing flow cannot be given such a policy either: not by an update, not by
        # adding a step; the stored flow stays at its first version, unchanged.
        bounded = {"count": 10, "delayMs": 0}
        r = a.client.post("/api/flows", json=_flow_body(bounded))
        assert r.status_code == 201, r.text
        flow_id = r.json()["id"]
        before = a.client.get(f"/api/flows/{flow_id}").json()
        r = a.client.put(f"/api/flows/{flow_id}", json=_flow_body(UNBOUNDED))
        assert r.status_code == 422, r.text
        assert sorted(r.json()["fields"], key=lambda f: f["field"]) == REFUSED
        r = a.client.post(
            f"/api/flows/{flow_id}/layers", json={"ref": "more", **ALWAYS, "retry": UNBOUNDED}
        )
        assert r.status_code == 422, r.text
        assert {f["message"] for f in r.json()["fields"]} == {f["message"] for f in REFUSED}
    assert a.client.get(f"/api/flows/{flow_id}").json() == before
    versions = a.client.get(f"/api/flows/{flow_id}/versions").json()
    assert versions["total"] == 1
    assert a.client.get("/api/flows?size=100").json()["total"] == 1


def test_a_policy_at_the_limits_makes_at_most_eleven_attempts(target: Target) -> None:
    """Ten retries without delay, in many plays at once: each step is attempted 11 times,
    no more, and every layer lists exactly its 11 attempts."""
    a = target.attacker
    flow = a.flow(_flow_body({"count": 10, "delayMs": 0})["flowlets"])
    throws = a.flow(
        [
            {
                "ref": "flaky",
                "appId": "transform",
                "args": {"expression": '$error("thrown by the expression")'},
                "retry": {"count": 10, "delayMs": 0},
            },
            {"ref": "after", "appId": "noop", "args": {"value": 1}},
        ]
    )
    plays = 24

    def attack(i: int) -> dict[str, Any]:
        r = a.run(flow if i % 2 else throws, {"i": i}, wait=30)
        assert r.status_code == 200, r.text
        play: dict[str, Any] = r.json()
        return play

    with target.bystander(), concurrent.futures.ThreadPoolExecutor(4) as pool:
        started = time.monotonic()
        ended = list(pool.map(attack, range(plays)))
        elapsed = time.monotonic() - started
    assert elapsed < 30, elapsed
    for play in ended:
        assert play["state"] == "FAIL", play
        layers = _by_ref(a, play["id"])
        flaky = layers["flaky"]
        error = "always fails" if play["flowId"] == flow else THROWN
        assert play["error"] == f"step 'flaky': {error}", play
        assert (flaky["state"], flaky["error"], flaky["output"]) == ("FAIL", error, None)
        attempts = flaky["attempts"]
        assert [at["number"] for at in attempts] == list(range(1, 12))
        assert all(at["error"] == error for at in attempts), attempts
        assert all(at["finishedAt"] is not None for at in attempts), attempts
        assert (layers["after"]["state"], layers["after"]["output"]) == ("SKIP", None)
    assert _count(a, "state=FAIL") == plays
    assert _count(a, "size=1") == plays
    _assert_victim_intact(target)


def test_a_long_back_off_parks_the_play_and_is_honoured(target: Target) -> None:
    """A back-off of 6 s (longer than the 5 s a play may hold its actor for) parks the play:
    WAIT with `waitReason: retry` on the step, one attempt recorded. When due it is resumed,
    the second (last) attempt is numbered 2, and the play fails with it."""
    a = target.attacker
    flow = a.flow(_flow_body({"count": 1, "delayMs": 6000})["flowlets"])
    with target.bystander():
        parked = _parked(a, flow)
        assert (parked["state"], parked["waitReason"], parked["waitRef"]) == (
            "WAIT",
            "retry",
            "flaky",
        )
        layer = _by_ref(a, parked["id"])["flaky"]
        assert layer["state"] == "WAIT"
        assert [at["number"] for at in layer["attempts"]] == [1]
        ended = a.wait_play(parked["id"], timeout=30)
    assert ended["state"] == "FAIL"
    assert ended["error"] == "step 'flaky': always fails"
    layers = _by_ref(a, parked["id"])
    attempts = layers["flaky"]["attempts"]
    assert [at["number"] for at in attempts] == [1, 2]
    assert [at["error"] for at in attempts] == ["always fails"] * 2
    waited = (_when(attempts[1]["startedAt"]) - _when(attempts[0]["finishedAt"])).total_seconds()
    assert 5.9 <= waited < 20, waited
    assert layers["flaky"]["state"] == "FAIL"
    assert layers["after"]["state"] == "SKIP"
    _assert_victim_intact(target)


def test_an_hour_long_back_off_parks_the_play_until_it_is_cancelled(target: Target) -> None:
    """The longest back-off a policy may ask for, in many plays: each parks (nothing holds
    it), and cancelling ends it at once."""
    a = target.attacker
    flow = a.flow(
        _flow_body(
            {"count": 10, "delayMs": HOUR_MS, "maxDelayMs": HOUR_MS, "backoffMultiplier": 10}
        )["flowlets"]
    )
    with target.bystander():
        parked = []
        for i in range(20):
            play = _parked(a, flow, {"i": i})
            assert (play["waitReason"], play["waitRef"]) == ("retry", "flaky"), play
            parked.append(play["id"])
        assert _count(a, "state=WAIT") == len(parked)
        for play_id in parked:
            r = a.client.post(f"/api/plays/{play_id}/cancel")
            assert r.status_code == 200, r.text
            assert (r.json()["state"], r.json()["error"]) == ("CANCEL", "cancelled")
    for play_id in parked:
        layers = _by_ref(a, play_id)
        assert (layers["flaky"]["state"], layers["flaky"]["error"]) == ("FAIL", "cancelled")
        assert [at["number"] for at in layers["flaky"]["attempts"]] == [1]
        assert a.play(play_id)["state"] == "CANCEL"
    assert _count(a, "state=CANCEL") == len(parked)
    _assert_victim_intact(target)


def test_a_cancelled_parked_step_finished_when_it_was_cancelled(target: Target) -> None:
    """Cancelling a parked play ends its waiting layer then: not at the back-off's wake time
    (an hour ahead), and not without a finish (a step waiting for approval)."""
    a = target.attacker
    retrying = a.flow(
        _flow_body({"count": 1, "delayMs": HOUR_MS, "maxDelayMs": HOUR_MS})["flowlets"]
    )
    approving = a.flow([{"ref": "flaky", "appId": "noop", "needsApproval": True}])
    with target.bystander():
        ids = []
        for flow in (retrying, approving):
            play_id = _parked(a, flow)["id"]
            ids.append(play_id)
            r = a.client.post(f"/api/plays/{play_id}/cancel")
            assert r.status_code == 200, r.text
    for play_id in ids:
        play = a.play(play_id)
        layer = _by_ref(a, play_id)["flaky"]
        assert (layer["state"], layer["error"]) == ("FAIL", "cancelled")
        assert layer["finishedAt"] is not None, layer
        assert _when(layer["finishedAt"]) <= _when(play["finishedAt"]), (layer, play)
