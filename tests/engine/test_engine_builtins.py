"""The guarded built-ins and bounded operators give the library's results, value for value.

Each replacement is held against jsonata-python's own function on small inputs, with the
piece sizes made tiny so that the pieces, the joins between them and the chunked loops are
what is exercised.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonata.datetimeutils import DateTimeUtils
from jsonata.functions import Functions
from jsonata.jsonata import Jsonata
from jsonata.regex_engine import RegexFlags
from jsonata.utils import Utils

from flow8.expressions import (
    Expression,
    ExpressionError,
    ExpressionLimits,
    _jsontext,
    to_json_value,
)
from flow8.expressions import _builtins_codec as codec
from flow8.expressions import _builtins_data as data
from flow8.expressions import _builtins_format as fmt
from flow8.expressions import _builtins_regex as rx
from flow8.expressions import _builtins_text as text
from flow8.expressions._budget import Budget, install
from flow8.expressions._expressions import _re2_engine
from flow8.expressions._jsontext import clone, jsonata_string, stringify, to_json

SETTINGS = settings(
    max_examples=int(os.environ.get("EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@contextlib.contextmanager
def evaluation(**limits: Any) -> Iterator[Budget]:
    """A budget installed on this thread, as an evaluation has (no deadline by default:
    these tests compare results, not time)."""
    limits.setdefault("timeout_ms", 10**9)
    budget = Budget(ExpressionLimits(**limits), None)
    previous = install(budget)
    try:
        yield budget
    finally:
        install(previous)


@contextlib.contextmanager
def tiny_pieces() -> Iterator[None]:
    with (
        mock.patch.object(text, "STRING_CHUNK", 7),
        mock.patch.object(codec, "STRING_CHUNK", 7),
        mock.patch.object(codec, "_URL_CHUNK", 5),
        mock.patch.object(text, "_TRIM_CHUNK", 6),
        mock.patch.object(data, "ITEM_CHUNK", 3),
        mock.patch.object(_jsontext, "STRING_CHUNK", 4),
        mock.patch.object(_jsontext, "_SMALL_NODES", 0),
        mock.patch.object(_jsontext, "_BLOCK", 3),
    ):
        yield


def same(ours: Callable[[], Any], theirs: Callable[[], Any]) -> None:
    """Both give equal values (of the same types), or both raise."""
    try:
        expected = theirs()
    except Exception as e:
        with pytest.raises(Exception):  # noqa: B017, PT011 - the library's errors vary
            ours()
        del e
        return
    got = ours()
    assert got == expected
    assert type(got) is type(expected)
    if isinstance(expected, Utils.JList):
        assert got.sequence == expected.sequence


def library(source: str, data_: Any = None) -> Any:
    """What the library itself gives (results converted as the engine converts them)."""
    try:
        raw = Jsonata(source, _re2_engine).evaluate(data_)
    except Exception as e:
        return ("error", type(e).__name__)
    try:
        return to_json_value(raw, "result")
    except TypeError:
        return ("error", "TypeError")


def sandboxed(source: str, data_: Any = None) -> Any:
    try:
        return Expression.compile(source).evaluate({}, data_)
    except ExpressionError:
        return ("error", "any")


def agree(source: str, doc: Any = None) -> None:
    """The sandbox gives the library's result for ``source`` over ``doc``, or an error
    where the library gives one."""
    expected = library(source, json.loads(json.dumps(doc)))
    got = sandboxed(source, json.loads(json.dumps(doc)))
    if isinstance(expected, tuple):
        assert isinstance(got, tuple), (source, got, expected)
    else:
        assert got == expected, source


text_ = st.text(alphabet=st.sampled_from("ab \t\n\r%éß中😀=+/-,$0\\"), max_size=40)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text_
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "é", "1"]), children, max_size=3)
    ),
    max_leaves=15,
)


# -- text of values ----------------------------------------------------------------------


@SETTINGS
@given(value=json_values, prettify=st.booleans())
def test_string_writes_what_the_library_writes(value: Any, prettify: bool) -> None:
    with evaluation() as budget, tiny_pieces():
        same(
            lambda: jsonata_string(value, prettify, budget),
            lambda: Functions.string(value, prettify),
        )


@SETTINGS
@given(value=json_values)
def test_interpolated_text_is_json_with_non_ascii_kept(value: Any) -> None:
    with evaluation() as budget, tiny_pieces():
        got = stringify(value, budget)
    assert got == stringify(value)
    if isinstance(value, list | dict):
        assert got == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_string_of_special_values() -> None:
    values = [
        [float("nan"), math.inf, -math.inf, Utils.NULL_VALUE, 1e21, -0.0],
        {"f": Jsonata.JFunction(None, None), 1.5: True, None: 1, True: 2, 3: [Utils.NULL_VALUE]},
        Utils.create_sequence([1, {"a": "é"}]),
    ]
    for value in values:
        for prettify in (False, True):
            with evaluation() as budget, tiny_pieces():
                assert jsonata_string(value, prettify, budget) == Functions.string(value, prettify)


@SETTINGS
@given(value=json_values)
def test_clone_is_a_json_round_trip(value: Any) -> None:
    if not isinstance(value, list | dict):
        return
    with evaluation() as budget:
        assert clone(value, budget) == json.loads(Functions.string(value, False))


@SETTINGS
@given(value=json_values)
def test_results_convert_as_before(value: Any) -> None:
    with evaluation() as budget:
        assert to_json(value, budget) == to_json_value(Utils.convert_nulls(value), "result")


# -- strings -----------------------------------------------------------------------------


@SETTINGS
@given(s=text_)
def test_per_character_string_functions(s: str) -> None:
    with evaluation(), tiny_pieces():
        same(lambda: text.trim(s), lambda: Functions.trim(s))
        same(lambda: text.uppercase(s), lambda: Functions.uppercase(s))
        same(lambda: text.lowercase(s), lambda: Functions.lowercase(s))
        same(lambda: codec.base64encode(s), lambda: Functions.base64encode(s))
        same(lambda: codec.encode_url(s), lambda: Functions.encode_url(s))
        same(lambda: codec.encode_url_component(s), lambda: Functions.encode_url_component(s))


@SETTINGS
@given(
    raw=st.binary(max_size=40),
    junk=st.lists(
        st.tuples(st.integers(0, 60), st.sampled_from([" ", "\n", "é", "*"])), max_size=4
    ),
    pad=st.sampled_from(["", "=", "==", "==="]),
)
def test_base64decode(raw: bytes, junk: list[tuple[int, str]], pad: str) -> None:
    encoded = base64.b64encode(raw).decode().rstrip("=") + pad
    for at, char in junk:
        encoded = encoded[:at] + char + encoded[at:]
    with evaluation(), tiny_pieces():
        same(lambda: codec.base64decode(encoded), lambda: Functions.base64decode(encoded))


@SETTINGS
@given(
    s=text_, noise=st.lists(st.sampled_from(["%", "%4", "%zz", "%C3", "%A9", "%41"]), max_size=3)
)
def test_url_decoding(s: str, noise: list[str]) -> None:
    encoded = urllib.parse.quote(s) + "".join(noise)
    with evaluation(), tiny_pieces():
        same(lambda: codec.decode_url(encoded), lambda: Functions.decode_url(encoded))
        same(
            lambda: codec.decode_url_component(encoded),
            lambda: Functions.decode_url_component(encoded),
        )


patterns = st.sampled_from(["", "a", ",", "ab", "aa", "$", "é"])
regexes = st.sampled_from(["a", "a*", "(a)(b)?", "[,;]", "(?i)A", "x*", "(é+)"])


@SETTINGS
@given(
    s=text_, sep=patterns, regex=regexes, limit=st.none() | st.integers(0, 5) | st.floats(0.5, 4.5)
)
def test_split(s: str, sep: str, regex: str, limit: Any) -> None:
    compiled = _re2_engine(regex, RegexFlags(False, False))
    with evaluation(), tiny_pieces():
        same(lambda: text.split(s, sep, limit), lambda: Functions.split(s, sep, limit))
        same(lambda: text.split(s, compiled, limit), lambda: Functions.split(s, compiled, limit))


replacements = st.sampled_from(["", "X", "$0", "$$", "$1", "[$0$0]", "$", "$12", "\\1", "é$2"])


@SETTINGS
@given(
    s=text_,
    sep=patterns,
    regex=regexes,
    rep=replacements,
    limit=st.none() | st.integers(0, 4) | st.floats(0.5, 3.5),
)
def test_replace(s: str, sep: str, regex: str, rep: str, limit: Any) -> None:
    compiled = _re2_engine(regex, RegexFlags(False, False))
    with evaluation(), tiny_pieces():
        same(
            lambda: rx.replace(s, sep, rep, limit),
            lambda: Functions.replace(s, sep, rep, limit),
        )
        same(
            lambda: rx.replace(s, compiled, rep, limit),
            lambda: Functions.replace(s, compiled, rep, limit),
        )


@SETTINGS
@given(s=text_, regex=regexes, limit=st.none() | st.integers(0, 4) | st.floats(0.5, 3.5))
def test_match_and_contains(s: str, regex: str, limit: Any) -> None:
    compiled = _re2_engine(regex, RegexFlags(False, False))
    with evaluation(), tiny_pieces():
        same(lambda: rx.match(s, compiled, limit), lambda: Functions.match_(s, compiled, limit))
        same(lambda: text.contains(s, compiled), lambda: Functions.contains(s, compiled))


@SETTINGS
@given(strs=st.lists(text_, max_size=8), sep=st.none() | patterns)
def test_join_and_pad(strs: list[str], sep: str | None) -> None:
    with evaluation(), mock.patch.object(text, "STRING_CHUNK", 7):
        same(lambda: text.join(strs, sep), lambda: Functions.join(strs, sep))
        word = "".join(strs)
        for width in (-12, -1, 0, 3, 9.7):
            same(
                lambda w=width: text.pad(word, w, sep),
                lambda w=width: Functions.pad(word, w, sep),
            )


def test_replace_with_a_function() -> None:
    for source in [
        '$replace("abcabc", /b(c)?/, function($m){ $uppercase($m.match) & $m.groups[1] })',
        '$replace("aaa", /a/, function($m){ "x" }, 2)',
        '$replace("abc", "b", function($m){ "x" })',
        '$replace("abc", /b/, function($m){ 1 })',
    ]:
        agree(source)


# -- arrays and objects ------------------------------------------------------------------

mixed_items = st.lists(
    st.sampled_from([1, 1.0, True, 0, False, 2, "1", None, "a"])
    | st.builds(dict, a=st.sampled_from([1, True, 1.0, "x"]))
    | st.lists(st.sampled_from([1, 1.0, True, "a"]), max_size=2),
    max_size=12,
)


@SETTINGS
@given(items=mixed_items, sequence=st.booleans())
def test_distinct(items: list[Any], sequence: bool) -> None:
    arr: Any = Utils.create_sequence_from_iter(items) if sequence else items
    with evaluation():
        same(lambda: data.distinct(arr), lambda: Functions.distinct(arr))


@SETTINGS
@given(value=json_values)
def test_spread_keys_lookup(value: Any) -> None:
    with evaluation():
        same(lambda: data.spread(value), lambda: Functions.spread(value))
        same(lambda: data.keys(value), lambda: Functions.keys(value))
        same(lambda: data.lookup(value, "a"), lambda: Functions.lookup(value, "a"))
        same(lambda: data.to_boolean(value), lambda: Functions.to_boolean(value))


@SETTINGS
@given(numbers=st.lists(st.integers(-(2**70), 2**70) | st.floats(-1e300, 1e300), max_size=12))
def test_reductions_in_pieces(numbers: list[Any]) -> None:
    with evaluation(), mock.patch.object(data, "ITEM_CHUNK", 3):
        for ours, theirs in [
            (data.sum_, Functions.sum),
            (data.max_, Functions.max),
            (data.min_, Functions.min),
            (data.average, Functions.average),
        ]:
            same(lambda: ours(numbers), lambda: theirs(numbers))  # noqa: B023


@SETTINGS
@given(
    objs=st.lists(st.dictionaries(st.sampled_from("abcd"), st.integers(), max_size=3), max_size=6)
)
def test_merge(objs: list[dict[str, int]]) -> None:
    with evaluation(), mock.patch.object(data, "ITEM_CHUNK", 2):
        same(lambda: data.merge(objs), lambda: Functions.merge(objs))


EXPRESSIONS = [
    "[a, b, [c], d.e, [1..3], []]",
    "*",
    "**",
    "a.*",
    "$.*[0]",
    "items{k: v}",
    "items{k: $count(v)}",
    "items{k: v, v: k}",
    "items@$i#$j{$string($j): $i.v}",
    "items#$p.{ 'p': $p, 'v': v }",
    "items^(>v).k",
    "items ~> |$|{'z': 1}, ['k']|",
    "$spread(items)",
    "$keys(items)",
    "$distinct(items.k)",
    "$lookup(items, 'v')",
    "$sift($, function($v){ $v })",
    "$each($, function($v, $k){ $k })",
    "$zip(a, b)",
    "[[a], [b]][1]",
    "$string($)",
    "$string($, true)",
    "a & b & $",
    "$clone($)",
    "$merge(items)",
    "$reverse(a)",
    "$sort(items.v)",
    '$formatNumber(1234.5, "#,##0.00")',
    '$formatInteger(1999, "I")',
    '$formatInteger(42, "w")',
    '$fromMillis(1704153600000, "[Y0001]-[M01]-[D01] [H01]:[m01]")',
    '$toMillis("2024-01-02", "[Y]-[M]-[D]")',
    '$toMillis("2024-01-02T03:04:05Z")',
    '$parseInteger("1,234", "#,##0")',
]

documents = st.fixed_dictionaries(
    {
        "a": json_values,
        "b": json_values,
        "c": json_values,
        "d": json_values,
        "items": st.lists(
            st.fixed_dictionaries({"k": st.sampled_from(["x", "y", "z"]), "v": st.integers(0, 9)}),
            max_size=8,
        ),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents)
def test_expressions_give_the_library_results(doc: dict[str, Any]) -> None:
    for source in EXPRESSIONS:
        agree(source, doc)


def test_roman_numerals_as_the_library() -> None:
    with evaluation():
        for value in [0, 1, 4, 9, 14, 40, 90, 400, 1999, 3999, 12345, -7]:
            for picture in ("I", "i"):
                assert fmt.format_integer(value, picture) == DateTimeUtils.format_integer(
                    value, picture
                )


@pytest.mark.parametrize(
    ("timestamp", "picture"),
    [
        ("2024-01-02", "[Y]-[M]-[D]"),
        ("2024-01-02 13:45", "[Y]-[M]-[D] [H]:[m]"),
        ("02/01/2024 1:05 pm", "[D]/[M]/[Y] [h]:[m] [P]"),
        ("2024-01-02T03:04:05.678+0100", "[Y]-[M]-[D]T[H]:[m]:[s].[f][Z0000]"),
        ("Tuesday 2nd January 2024", "[FNn] [D1o] [MNn] [Y]"),
        ("2024-032", "[Y]-[d]"),
        ("nope", "[Y]-[M]-[D]"),
        ("2024-01-02\n", "[Y]-[M]-[D]"),
    ],
)
def test_to_millis_matches_the_library(timestamp: str, picture: str) -> None:
    with evaluation():
        same(
            lambda: fmt.to_millis(timestamp, picture),
            lambda: Functions.datetime_to_millis(timestamp, picture),
        )
