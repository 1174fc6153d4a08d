"""W3C trace context (https://www.w3.org/TR/trace-context/): which ``traceparent`` headers a
play takes its trace from, and the ``traceparent`` its outbound requests send."""

from __future__ import annotations

import re

import pytest

from flow8.domain import PlayTrace, parse_traceparent

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
VALID = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        (VALID, (TRACE_ID, "01")),
        (VALID.encode(), (TRACE_ID, "01")),  # as an ASGI scope or h11 hands it over
        (f" {VALID}\t", (TRACE_ID, "01")),  # optional white space around a header's value
        (f"00-{TRACE_ID}-00f067aa0ba902b7-00", (TRACE_ID, "00")),
        (f"01-{TRACE_ID}-00f067aa0ba902b7-09-what-comes-later", (TRACE_ID, "09")),
    ],
)
def test_a_valid_traceparent_gives_its_trace_id_and_flags(
    header: str | bytes, parsed: tuple[str, str]
) -> None:
    assert parse_traceparent(header) == parsed


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01",  # upper-case hex
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE_ID}-00f067aa0ba902b7-01",  # the version that is never valid
        f"00-{TRACE_ID}-00f067aa0ba902b7-01-extra",  # version 00 has nothing after the flags
        f"00-{TRACE_ID[:-1]}-00f067aa0ba902b7-01",  # a digit short
        f"00-{TRACE_ID}-00f067aa0ba902b7-1",
        f"00_{TRACE_ID}_00f067aa0ba902b7_01",
        f"0-{TRACE_ID}-00f067aa0ba902b7-01",
        f"01-{TRACE_ID}-00f067aa0ba902b7-01" + "-x" * 300,  # longer than any header needs
    ],
)
def test_anything_else_is_no_trace(header: str | None) -> None:
    assert parse_traceparent(header) is None


def test_each_outbound_traceparent_has_the_trace_and_a_span_of_its_own() -> None:
    trace = PlayTrace("req-1", TRACE_ID, "01")
    sent = [trace.traceparent() for _ in range(50)]
    spans = set()
    for header in sent:
        assert header is not None
        assert re.fullmatch(rf"00-{TRACE_ID}-[0-9a-f]{{16}}-01", header)
        assert parse_traceparent(header) == (TRACE_ID, "01")  # valid as the spec has it
        spans.add(header.split("-")[2])
    assert len(spans) == 50
    assert PlayTrace("req-1").traceparent() is None  # no trace: nothing is sent
    assert PlayTrace(trace_id=TRACE_ID).traceparent() is not None
    assert not PlayTrace()
    assert PlayTrace("req-1")
