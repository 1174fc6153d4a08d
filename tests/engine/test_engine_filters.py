"""Filters: every operator, casts, and/or chaining."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flow8.domain import Cast, FilterMode, FilterOperator, FilterSpec
from flow8.expressions import (
    FilterError,
    apply_operator,
    cast_value,
    compile_filters,
    filters_pass,
)

OP = FilterOperator


@pytest.mark.parametrize(
    ("op", "left", "right", "expected"),
    [
        (OP.EQ, "a", "a", True),
        (OP.EQ, 1, 1.0, True),
        (OP.EQ, 1, True, False),
        (OP.EQ, {"a": 1}, {"a": 1}, True),
        (OP.NEQ, "a", "b", True),
        (OP.NEQ, 2, 2, False),
        (OP.GT, 3, 2, True),
        (OP.GT, 2, 2, False),
        (OP.GTE, 2, 2, True),
        (OP.LT, "a", "b", True),
        (OP.LT, 3, 2, False),
        (OP.LTE, 2, 2, True),
        (OP.CONTAINS, "invoice-42", "42", True),
        (OP.CONTAINS, ["a", "b"], "b", True),
        (OP.CONTAINS, {"k": 1}, "k", True),
        (OP.CONTAINS, None, "x", False),
        (OP.NOT_CONTAINS, "abc", "z", True),
        (OP.NOT_CONTAINS, [1, 2], 2, False),
        (OP.IS_EMPTY, "", None, True),
        (OP.IS_EMPTY, [], None, True),
        (OP.IS_EMPTY, None, None, True),
        (OP.IS_EMPTY, {"a": 1}, None, False),
        (OP.NOT_EMPTY, "x", None, True),
        (OP.NOT_EMPTY, {}, None, False),
        (OP.REGEX, "INV-2024-001", r"^INV-\d{4}-\d+$", True),
        (OP.REGEX, "nope", r"^INV", False),
    ],
)
def test_operators(op: FilterOperator, left: object, right: object, expected: bool) -> None:
    assert apply_operator(op, left, right) is expected


def test_ordering_mismatched_types_is_an_error() -> None:
    with pytest.raises(FilterError, match="cannot order"):
        apply_operator(OP.GT, "10", 9)
    with pytest.raises(FilterError):
        apply_operator(OP.REGEX, "x", None)


def test_regex_is_linear_time() -> None:
    assert apply_operator(OP.REGEX, "a" * 10_000 + "!", r"(a+)+$") is False


@pytest.mark.parametrize(
    ("value", "cast", "expected"),
    [
        ("42", Cast.NUMBER, 42),
        (" 2.5 ", Cast.NUMBER, 2.5),
        (True, Cast.NUMBER, 1),
        (42, Cast.STRING, "42"),
        ({"a": 1}, Cast.STRING, '{"a":1}'),
        ("yes", Cast.BOOLEAN, True),
        ("false", Cast.BOOLEAN, False),
        (0, Cast.BOOLEAN, False),
    ],
)
def test_casts(value: object, cast: Cast, expected: object) -> None:
    assert cast_value(value, cast) == expected


def test_bad_casts_are_errors() -> None:
    with pytest.raises(FilterError, match="number"):
        cast_value("abc", Cast.NUMBER)
    with pytest.raises(FilterError, match="boolean"):
        cast_value("maybe", Cast.BOOLEAN)


def _specs(*items: tuple[object, FilterOperator, object, FilterMode]) -> tuple[FilterSpec, ...]:
    return tuple(FilterSpec(left, op, right, None, mode) for left, op, right, mode in items)


def test_and_or_chain_left_to_right() -> None:
    b = {"prev": {"args": {"kind": "invoice", "total": 5}}}
    fs = compile_filters(
        _specs(
            ("{{ $prev.args.kind }}", OP.EQ, "invoice", FilterMode.AND),
            ("{{ $prev.args.total }}", OP.GT, 10, FilterMode.AND),
        ),
        "f",
    )
    assert filters_pass(fs, b) is False
    fs = compile_filters(
        _specs(
            ("{{ $prev.args.kind }}", OP.EQ, "invoice", FilterMode.AND),
            ("{{ $prev.args.total }}", OP.GT, 10, FilterMode.OR),
        ),
        "f",
    )
    assert filters_pass(fs, b) is True


def test_cast_applies_to_both_sides() -> None:
    spec = FilterSpec("{{ $prev.args.n }}", OP.GTE, "10", Cast.NUMBER)
    fs = compile_filters((spec,), "f")
    assert filters_pass(fs, {"prev": {"args": {"n": "12"}}}) is True
    assert filters_pass(fs, {"prev": {"args": {"n": "9"}}}) is False


@settings(max_examples=150, deadline=None)
@given(a=st.integers(-1000, 1000), b=st.integers(-1000, 1000))
def test_comparisons_agree_with_python(a: int, b: int) -> None:
    assert apply_operator(OP.GT, a, b) == (a > b)
    assert apply_operator(OP.LTE, a, b) == (a <= b)
    assert apply_operator(OP.EQ, a, b) != apply_operator(OP.NEQ, a, b)
    assert cast_value(str(a), Cast.NUMBER) == a
