"""Attack 3: expressions that stall every tenant.

The 250 ms budget of an expression was checked only between expression nodes, so one
built-in call ran to completion on the event loop: `$distinct([1..100000])` (quadratic)
froze the server, `/healthz` included, for 33 s; `$split` of a 10M-character string for
1.2 s; `$string()` was not under the 10M-character cap and one expression built 800M
characters (1.69 GB).

What holds now:

* every built-in is guarded: it refuses, before it runs, a result past the string cap (10M
  characters), the item cap (100,000 items, matches or replacements) or what is left of
  the evaluation's memory budget (64 MB); the super-linear ones are linear
  (`$distinct([1..100000])` answers in about 0.1 s instead of 33 s); long strings are worked
  on in pieces with the deadline checked in between;
* an evaluation runs on the event loop for at most a 20 ms slice; past it, it is run again
  from scratch in a worker thread (two at most) with its whole budget;
* a step whose expression runs out of budget fails with EXPRESSION_LIMIT, naming the step
  and the limit ("step 'x': EXPRESSION_LIMIT: ... exceeded a limit: it ran longer than
  250 ms", "... allocated more than 64 MB", ...), without retrying;
* meanwhile `/healthz` and the victim company are served within 100 ms, and the server's
  memory grows by no more than the budget plus a margin.

This holds for expressions of `transform` steps and for those in `{{ }}` arguments and in
filters alike.
"""

from __future__ import annotations

from typing import Any

from attack_kit import EXPRESSION_TIMEOUT_MS, Target

RAN_LONG = f"ran longer than {EXPRESSION_TIMEOUT_MS} ms"  # the server's budget, as it says

MB = 1024 * 1024
# What one evaluation may allocate, the worker threads that may run at once, and what the
# interpreter keeps of freed memory (arenas, the allocator's caches): the server's growth.
RSS_MARGIN = 64 * MB * 2 + 48 * MB

# (expression, what the step's error must say)
ATTACKS: list[tuple[str, str]] = [
    ('$split($pad("", 10000000, "a"), "")', "$split would build 10000000 items"),
    ('$split($pad("", 10000000, "a,"), ",")', "more than the 100000 allowed"),
    ('$pad("x", 300000000)', "longer than the 10000000 allowed"),
    ('($f := function($s){ $f($s & $s) }; $f("x"))', "longer than the 10000000 allowed"),
    (
        '($a := [1..100000].$pad("", 100, "x"); $string([[$a], [$a], [$a], [$a], [$a], [$a]]))',
        "exceeded a limit",
    ),
    ("[1..100000].[1..100000]", "allocated more than 64 MB"),
    ("$sort([1..100000], function($a, $b){ $a < $b })", RAN_LONG),
    (
        '$map([1..100000], function($v){ {"a": $v, "b": $string($v) & "xxxxxxxxxxxx"} })',
        "exceeded a limit",
    ),
    (
        '$replace($pad("", 100000, "a"), /a+/, $join($map([1..1000], function(){"$0"})))',
        "$replace would build a string of 100000000 characters",
    ),
    ("($f := function($n){ $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000))", "nested deeper than"),
    ('$formatInteger(1e15, "I")', "longer than the 10000000 allowed"),
    ('$fromMillis(0, "[Y,*-1000000000]")', "width over the 1000 allowed"),
    ('$match($pad("", 10000000, "a"), /a/)', "exceeded a limit"),
    ('$uppercase($pad("", 10000000, "ß"))', "longer than the 10000000 allowed"),
]


def _rss(target: Target) -> int:
    with open(f"/proc/{target.process.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _play(target: Target, flowlet: dict[str, Any], body: Any = None) -> dict[str, Any]:
    flow = target.attacker.flow([flowlet])
    r = target.attacker.run(flow, body, wait=30)
    assert r.status_code in (200, 202), r.text
    return target.attacker.wait_play(r.json()["id"])


def _assert_failed_on_the_limit(play: dict[str, Any], ref: str, says: str) -> None:
    assert play["state"] == "FAIL", play
    error = play["error"] or ""
    assert error.startswith(f"step {ref!r}: EXPRESSION_LIMIT: "), error
    assert "exceeded a limit" in error, error
    assert says in error, error


def test_heavy_transforms_fail_on_their_limit_while_others_are_served(target: Target) -> None:
    target.attacker.run(
        target.attacker.flow([{"ref": "warm", "appId": "set", "args": {"value": 1}}])
    )
    before = _rss(target)
    with target.bystander():
        for source, says in ATTACKS:
            play = _play(
                target, {"ref": "attack", "appId": "transform", "args": {"expression": source}}
            )
            _assert_failed_on_the_limit(play, "attack", says)
    grown = _rss(target) - before
    assert grown < RSS_MARGIN, f"the server grew by {grown / MB:.0f} MB"


def test_what_was_super_linear_is_linear_now(target: Target) -> None:
    cases = [
        ("$count($distinct([1..30000]))", 30000),
        # 1,000 pairs, 70 of them distinct. Building them is most of the cost (the library
        # spends ~50 us a call: 3,000 pairs took 150-250 ms of the 250 ms budget here).
        ("$count($distinct([1..1000].[$ % 10, $string($ % 7)]))", 70),
        (
            '$toMillis("1111111111111111111111111111111111111111x", "[f][f][f][f][f][f][f][f][f]")',
            None,
        ),
        ('($g := [1..10000]{"k": $}; $count($g.k))', 10000),
        ('$count($spread([1..5000].{"a": $}))', 5000),
    ]
    with target.bystander():
        for source, expected in cases:
            play = _play(target, {"ref": "t", "appId": "transform", "args": {"expression": source}})
            assert play["state"] == "DONE", (source, play["error"])
            assert play["out"] == expected, (source, play["out"])


def test_heavy_arguments_and_filters_fail_on_their_limit_while_others_are_served(
    target: Target,
) -> None:
    before = _rss(target)
    with target.bystander():
        for source, says in ATTACKS:
            play = _play(
                target, {"ref": "arg", "appId": "set", "args": {"value": f"{{{{ {source} }}}}"}}
            )
            _assert_failed_on_the_limit(play, "arg", says)
        big = {"big": [0] * 300_000}
        for source in ("$prev.args.big = $prev.args.big", "$prev.args.big ? 1 : 2"):
            flowlet = {"ref": "walk", "appId": "set", "args": {"value": f"{{{{ {source} }}}}"}}
            play = _play(target, flowlet, big)
            assert play["state"] in ("DONE", "FAIL"), play
            if play["state"] == "FAIL":
                _assert_failed_on_the_limit(play, "walk", RAN_LONG)
        for source, says in ATTACKS[:6]:
            flowlet = {
                "ref": "filtered",
                "appId": "set",
                "args": {"value": 1},
                "filters": [{"leftValue": f"{{{{ {source} }}}}", "operator": "not_empty"}],
            }
            _assert_failed_on_the_limit(_play(target, flowlet), "filtered", says)
    grown = _rss(target) - before
    assert grown < RSS_MARGIN, f"the server grew by {grown / MB:.0f} MB"
