"""Expression errors a user reads: JSONata's words, codes and JSON type names, located at
the step and the argument, never Python's (exception classes, reprs, type names)."""

from __future__ import annotations

import re

import pytest
from engine_testkit import layers_by_ref, make_flow, run

from flow8.domain import Cast, FilterOperator, FilterSpec, LayerState, PlayState
from flow8.engine import Engine
from flow8.expressions import (
    Expression,
    ExpressionError,
    FilterError,
    compile_filters,
    compile_value,
    filters_pass,
)

# What Python shows of itself in an error message.
PYTHON = re.compile(
    r"JSonataException|NoneType|could not convert|Traceback|'str'|'int'|'float'|'dict'"
    r"|'list'|\bNone\b|\bObject\b|\bb'|Error\b|Exception\b|invalid literal|codec|<class"
)
BINDINGS = {"s": "abc", "n": 5, "o": {"a": 1}, "a": [1, 2], "t": True}


def failure(source: str) -> str:
    with pytest.raises(ExpressionError) as info:
        Expression.compile(source).evaluate(BINDINGS)
    return info.value.message


@pytest.mark.parametrize(
    ("source", "says"),
    [
        # arithmetic on what is not a number
        ("$s + 1", ["left side of the + operator must evaluate to a number", "string", "T2001"]),
        ("1 - $o", ["right side of the - operator must evaluate to a number", "object", "T2002"]),
        ("null * 2", ["must evaluate to a number, not null", "T2001"]),
        ("$a / 2", ["must evaluate to a number, not an array", "T2001"]),
        ('-"x"', ["Cannot negate a non-numeric value: a string", "D1002"]),
        ("1 / 0", ["Number out of range: division by zero", "D1001"]),
        ("1 % 0", ["Number out of range", "D1001"]),
        # comparisons of mixed types
        ('1 < "a"', ["must be of the same data type", "a number and a string", "T2009"]),
        ("$o > 1", ["must evaluate to numeric or string values", "T2010"]),
        ('["a", 1]^($)', ["Type mismatch when comparing values", "T2007"]),
        # casts and built-ins given the wrong types
        ('$number("abc")', ['Unable to cast value to a number: "abc"', "D3030"]),
        ('$number("0x1G")', ["Unable to cast value to a number", "D3030"]),
        ("$number(null)", ["Argument 1 of function $number", "null", "T0410"]),
        ('$substring("abc", "x")', ["Argument 2 of function $substring", "expected a number"]),
        ("$substring($o, 1)", ["Argument 1 of function $substring", "got an object"]),
        ('$split(1, ",")', ["Argument 1 of function $split", "expected a string, got a number"]),
        ('$join(["a"], 1)', ["Argument 2 of function $join", "expected a string"]),
        ('$join([1, 2], ",")', ["Argument 1 of function $join must be an array of strings"]),
        ('$sum("abc")', ["Argument 1 of function $sum must be an array of numbers", "T0412"]),
        ('$formatNumber("a", "#")', ["Argument 1 of function $formatNumber", "a number"]),
        ("$count(1, 2)", ["Argument 2 of function $count", "at most 1 argument"]),
        ("$exists()", ["Argument 1 of function $exists", "none was given"]),
        ('function($x)<n:n>{ $x }("a")', ["Argument 1 of the function", "expected a number"]),
        # functions that do not exist, and values called as functions
        ("$foo(1)", ["Attempted to invoke a non-function: $foo is not defined", "T1006"]),
        ("$s()", ['$s is a string ("abc")', "T1006"]),
        ("$map([1], function($v){ $nope($v) })", ["$nope is not defined", "T1006"]),
        # errors inside a function a built-in applies are the function's, not the built-in's
        ("$map([1], function($v){ $v / 0 })", ["division by zero", "D1001"]),
        ('$map(["x"], $number)', ["Unable to cast value to a number", "D3030"]),
        # what built-ins refuse themselves
        ('$replace("abc", "", "x")', ["Second argument of replace function", "D3010"]),
        ('$replace("abc", /b/, "$9")', ["capture group"]),
        ('$sort([1, "a"])', ["array of strings or an array of numbers", "D3070"]),
        ("$sort($a, function($l, $r){ $l.x })", ["comparison function", "boolean"]),
        ("$power(10, 1000)", ["cannot be represented as a JSON number", "D3061"]),
        ("$sqrt(-1)", ["sqrt function cannot be applied to a negative number", "D3060"]),
        ("$formatBase(10, 99)", ["radix of the formatBase function", "D3100"]),
        ('$toMillis("not a date")', ["ISO 8601", "D3110"]),
        ('$fromMillis(1, "[Q]")', ["Unknown component specifier", "D3132"]),
        ('$formatInteger(1, "x")', ['sequence starting with "x"', "D3130"]),
        ('$decodeUrlComponent("%E0%A4%A")', ["Malformed URL passed to $decodeUrlComponent"]),
        ('$encodeUrl("\\uD800")', ["Malformed URL passed to $encodeUrl", "D3140"]),
        ("$round(1, 1000)", ["Argument 2 of function $round is out of range"]),
        ("$single([1, 2])", ["$single() function expected exactly 1", "D3138"]),
        ("{ 1: 2 }", ["Key in object structure must evaluate to a string; got: 1", "T1003"]),
        ('$o{"a": 1, "a": 2}', ['same key: "a"', "D1009"]),
        ("[1..$s]", ["right side of the range operator (..)", "T2004"]),
        ("$o ~> | a | 1 |", ["must evaluate to an object", "T2011"]),
        ("[function($x){ $x }]", ["function, not a JSON value"]),
        ('$eval("1")', ["not available"]),
    ],
)
def test_evaluation_errors_speak_jsonata(source: str, says: list[str]) -> None:
    message = failure(source)
    for words in says:
        assert words in message, (source, message)
    assert not PYTHON.search(message), (source, message)


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("1 +", ["Unexpected end of expression", "S0207"]),
        ("(1", ["Expected ) before end of expression", "S0203"]),
        ("1)", ["Syntax error: )", "position 2", "S0201"]),
        ('"abc', ["String literal must be terminated", "S0101"]),
        ("1 ++ 2", ["cannot be used as a unary operator", "S0211"]),
        ("null.x", ["The literal value null cannot be used as a step", "S0213"]),
        ("function(1){1}", ["Parameter 1 of function definition", "S0208"]),
        ("$power(2, 1e400)", ["Number out of range", "S0102"]),
        ("$match($s, /a{2,1}/)", ["Invalid regular expression", "invalid repetition size"]),
        ("function($x)<s<s>:s>{ 1 }", ["Type parameters can only be applied", "S0401"]),
    ],
)
def test_parse_errors_speak_jsonata(source: str, says: list[str]) -> None:
    with pytest.raises(ExpressionError) as info:
        Expression.compile(source)
    message = info.value.message
    assert message.startswith("does not parse: ")
    for words in says:
        assert words in message, (source, message)
    assert not PYTHON.search(message), (source, message)


def test_messages_of_the_expression_itself_are_kept_as_written() -> None:
    # $error and $assert carry the author's words: no code, nothing added.
    assert failure('$error("the order has no lines")') == "failed: the order has no lines"
    assert failure('$assert(false, "need a total")') == "failed: need a total"
    # ... on one line, of a bounded length.
    assert failure('$error("first\\nsecond")') == "failed: first"
    assert len(failure('$error($pad("", 5000, "x"))')) == len("failed: ") + 500


def test_long_values_are_described_not_quoted() -> None:
    message = failure('$number($s & "' + "x" * 200 + '")')
    assert "Unable to cast value to a number: a string" in message
    assert "xxxxxxxxxx" not in message


def test_calling_a_value_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    # The library printed "Proc not found <the value>" to stdout: data in the logs.
    failure("$s()")
    failure("$map([1], function($v){ $nope($v) })")
    assert capsys.readouterr().out == ""


def test_template_errors_name_the_argument_path() -> None:
    value = compile_value({"value": {"n": "{{ $number($prev.args.s) }}"}}, "calc.args")
    with pytest.raises(ExpressionError) as info:
        value.resolve({"prev": {"args": {"s": "abc"}}})
    text = str(info.value)
    assert text.startswith("calc.args.value.n: expression {{ $number($prev.args.s) }}")
    assert 'Unable to cast value to a number: "abc" [D3030]' in text
    assert not PYTHON.search(text)


def test_filter_errors_name_the_filter_with_json_types() -> None:
    filters = compile_filters(
        (FilterSpec("{{ $prev.args.v }}", FilterOperator.GT, 3, None),), "calc"
    )
    with pytest.raises(FilterError) as info:
        filters_pass(filters, {"prev": {"args": {"v": {"k": None}}}})
    text = str(info.value)
    assert text == "calc.filters[0] (gt): cannot order object against number " + (
        "(cast both to number or string)"
    )
    casts = compile_filters(
        (FilterSpec("{{ $prev.args.v }}", FilterOperator.GT, 3, Cast.NUMBER),), "calc"
    )
    with pytest.raises(FilterError) as info:
        filters_pass(casts, {"prev": {"args": {"v": [None]}}})
    assert "cannot cast an array ([null]) to a number" in str(info.value)
    assert not PYTHON.search(str(info.value))


async def test_a_failing_expression_names_the_step_and_the_argument(engine: Engine) -> None:
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "prep", "appId": "set", "args": {"value": 1}},
                {
                    "ref": "calc",
                    "appId": "set",
                    "args": {"value": {"n": "{{ $prev.args.s + 1 }}"}},
                },
            ]
        },
    )
    play = await run(engine, flow, {"s": "text"})
    assert play.state is PlayState.FAIL
    layer = (await layers_by_ref(engine, play))["calc"]
    assert layer.state is LayerState.FAIL
    error = layer.error or ""
    assert error.startswith("calc.args.value.n: expression {{ $prev.args.s + 1 }} failed: ")
    assert error.endswith(
        'The left side of the + operator must evaluate to a number, not a string ("text") [T2001]'
    )
    assert not PYTHON.search(error)
    assert (play.error or "").startswith("step 'calc': calc.args.value.n: ")
