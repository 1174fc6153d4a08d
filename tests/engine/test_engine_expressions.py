"""Expressions: typed results, interpolation, bindings, sandbox bounds, data never re-run."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flow8.expressions import Expression, ExpressionError, compile_value, split_template


def resolve(value: object, **bindings: object) -> object:
    return compile_value(value, "step.args").resolve(bindings)


def test_whole_value_expression_keeps_the_type() -> None:
    prev = {"args": {"n": 2, "tags": ["a", "b"], "ok": True}}
    assert resolve("{{ $prev.args.n * 3 }}", prev=prev) == 6
    assert resolve("  {{ $prev.args.tags }} ", prev=prev) == ["a", "b"]
    assert resolve("{{ $prev.args.ok }}", prev=prev) is True
    assert resolve("{{ $prev.args.missing }}", prev=prev) is None
    assert resolve('{{ {"a": {"b": 1}} }}', prev=prev) == {"a": {"b": 1}}


def test_mixed_text_interpolates() -> None:
    prev = {"args": {"n": 2, "obj": {"k": [1, 2]}, "f": 1.5, "none": None}}
    out = resolve("n={{ $prev.args.n }} o={{ $prev.args.obj }} f={{$prev.args.f}}", prev=prev)
    assert out == 'n=2 o={"k":[1,2]} f=1.5'
    assert resolve("[{{ $prev.args.none }}]", prev=prev) == "[]"


def test_nested_args_and_constants() -> None:
    value = {"a": ["{{ $playId }}", 3], "b": {"c": "{{ $flowId }}"}, "d": "plain"}
    assert resolve(value, playId="p", flowId="f") == {"a": ["p", 3], "b": {"c": "f"}, "d": "plain"}
    assert compile_value({"x": 1}, "s").constant


def test_prev_refs_and_bindings() -> None:
    prev = {"args": {}, "parse": {"items": [{"v": 1}, {"v": 2}]}}
    assert resolve("{{ $sum($prev.parse.items.v) }}", prev=prev) == 3


def test_data_is_never_evaluated_again() -> None:
    # A "{{" inside input or outputs is text: the result is the string, not its evaluation.
    prev = {"args": {"body": "{{ $prev.args.secret }}", "secret": "s3cr3t"}}
    assert resolve("{{ $prev.args.body }}", prev=prev) == "{{ $prev.args.secret }}"
    assert resolve("x {{ $prev.args.body }}", prev=prev) == "x {{ $prev.args.secret }}"


def test_parse_error_names_the_field_and_expression() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_value({"x": "{{ $prev.( }}"}, "parse.args")
    assert info.value.where == "parse.args.x"
    assert "$prev.(" in str(info.value)


def test_runtime_error_names_the_field_and_expression() -> None:
    cv = compile_value({"x": "{{ $prev.args.s + 1 }}"}, "calc.args")
    with pytest.raises(ExpressionError) as info:
        cv.resolve({"prev": {"args": {"s": "text"}}})
    assert "calc.args.x" in str(info.value)
    assert "$prev.args.s + 1" in str(info.value)


def test_unterminated_and_empty_expressions_are_errors() -> None:
    with pytest.raises(ExpressionError):
        compile_value("{{ $prev.args", "s")
    with pytest.raises(ExpressionError):
        compile_value("{{   }}", "s")


def test_split_template_balances_braces_and_quotes() -> None:
    assert split_template('a {{ "}}" & "x" }} b') == ["a ", ('"}}" & "x"',), " b"]
    assert split_template("no expressions") is None


@pytest.mark.parametrize(
    "source",
    [
        '$eval("1 + 1")',
        '$eval("$prev")',
        "$prev.constructor",
        "$prev.__class__",
        '$lookup($prev, "__class__")',
        '$lookup($prev, "__globals__")',
        "$prev.__proto__",
        "$string($prev.__init__)",
        "function($x){ $x }",
        "$sum",
    ],
)
def test_escape_corpus_reaches_nothing(source: str) -> None:
    expr = Expression.compile(source)
    try:
        result = expr.evaluate({"prev": {"args": {}}})
    except ExpressionError:
        return
    # Whatever it returns is plain JSON built from the bound data: nothing from the host.
    assert result in (None, "", {}, [])


def test_huge_ranges_are_refused_fast() -> None:
    started = time.perf_counter()
    with pytest.raises(ExpressionError, match="range"):
        Expression.compile("$sum([1..9999999])").evaluate({})
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    "source",
    [
        '$pad("x", 300000000)',
        '$pad("x", -300000000, "#")',
        '($f := function($s, $n){ $n = 0 ? $s : $f($s & $s, $n - 1) }; $f("x", 40))',
        '$replace($pad("", 5000000, "a"), "a", "aaaa")',
        '$replace($pad("", 1000, "a"), /a/, $pad("", 20000, "b"))',
        '$replace($pad("", 1000, "a"), /a/, function($m){ $pad("", 20000, "b") })',
        '$join([$pad("a", 6000000), $pad("b", 6000000)])',
    ],
)
def test_strings_cannot_grow_past_the_cap(source: str) -> None:
    # The time budget does not bound memory: each of these would allocate hundreds of MB.
    with pytest.raises(ExpressionError, match="10000000 allowed"):
        Expression.compile(source).evaluate({})


def test_capped_pad_keeps_its_meaning() -> None:
    assert Expression.compile('$pad("ab", -5, "#")').evaluate({}) == "###ab"
    assert Expression.compile('"ab" ~> $pad(4, "-")').evaluate({}) == "ab--"
    assert Expression.compile("$pad($prev, 3)").evaluate({"prev": "x"}) == "x  "
    # the context form: the signature lets the path's value stand in as the first argument
    assert Expression.compile('name.$pad(5, "-")').evaluate({}, {"name": "abc"}) == "abc--"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('$replace("a-b-c", "-", "+")', "a+b+c"),
        ('"a-b-c" ~> $replace("-", "+")', "a+b+c"),
        ('$replace("abcabc", "b", "X", 1)', "aXcabc"),
        ('$replace("abcb", /b/, "X", 1)', "aXcb"),
        ('$replace("abc", /b/, "[$0]")', "a[b]c"),
        ('$replace("John Smith", /(\\w+)\\s(\\w+)/, "$2, $1")', "Smith, John"),
        ('$replace("abc", /(b)/, function($m){ $uppercase($m.match) })', "aBc"),
        ('$join(["a", "b"], ",")', "a,b"),
        ('["x", "y"] ~> $join("-")', "x-y"),
        ("$join([])", ""),
    ],
)
def test_capped_replace_and_join_keep_their_meaning(source: str, expected: str) -> None:
    assert Expression.compile(source).evaluate({}) == expected
    assert Expression.compile('name.$replace("a", "b")').evaluate({}, {"name": "aa"}) == "bb"


def test_infinite_recursion_is_bounded() -> None:
    expr = Expression.compile("($f := function($n){ $f($n + 1) }; $f(0))")
    with pytest.raises(ExpressionError):
        expr.evaluate({})


def test_runaway_loops_hit_the_time_budget() -> None:
    expr = Expression.compile(
        "($f := function($n){ $n > 0 ? $f($n - 1) + $f($n - 1) : 1 }; $f(40))"
    )
    expr.timeout_ms = 50
    started = time.perf_counter()
    with pytest.raises(ExpressionError, match=r"longer than|deeper"):
        expr.evaluate({})
    assert time.perf_counter() - started < 2.0


def test_catastrophic_regex_runs_in_linear_time() -> None:
    expr = Expression.compile("$match($prev, /(a+)+$/)")
    started = time.perf_counter()
    expr.evaluate({"prev": "a" * 5000 + "!"})
    assert time.perf_counter() - started < 1.0


def test_functions_do_not_escape_as_values() -> None:
    with pytest.raises(ExpressionError, match="function"):
        Expression.compile("function($x){ $x }").evaluate({})


def test_compile_once_evaluate_many() -> None:
    expr = Expression.compile("$prev.n + 1")
    assert [expr.evaluate({"prev": {"n": i}}) for i in range(3)] == [1, 2, 3]


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.text(max_size=5)
    | st.floats(allow_nan=False, allow_infinity=False, width=32),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c"]), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(data=_json, path=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3))
def test_direct_path_lookup_agrees_with_jsonata(data: object, path: list[str]) -> None:
    source = "$prev." + ".".join(path)
    fast = Expression.compile(source)
    slow = Expression.compile(f"({source})")  # not a bare path: always the full evaluator
    assert fast.evaluate({"prev": data}) == slow.evaluate({"prev": data})


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=30).map(lambda t: "{{ " + t + " }}"))
def test_strings_from_data_are_never_evaluated(text: str) -> None:
    assert resolve("{{ $prev.args.v }}", prev={"args": {"v": text}}) == text
    assert resolve("<{{ $prev.args.v }}>", prev={"args": {"v": text}}) == f"<{text}>"
